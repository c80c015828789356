"""Metadata stage: validation with field paths, derived title and id, UTC dates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from flows.stages.metadata import (
    ValidMetadata,
    derive_id,
    derive_title,
    published_utc,
    validate_id,
    validate_metadata,
)
from flows.stages.types import Reason, Rejection

GOOD: dict[str, Any] = {
    "file_name": "news/a.txt",
    "id": "wsws-2024-001",
    "title": "KI in der Unterhaltungsindustrie",
    "url": "https://www.wsws.org/de/articles/2024/05/01/ki.html",
    "published": "2024-05-01",
    "authors": ["David Walsh"],
    "license": "CC-BY-4.0",
    "source": "wsws.org",
    "language": "de",
}


def test_valid_record() -> None:
    result = validate_metadata(GOOD, 1)
    assert isinstance(result, ValidMetadata)
    assert result.model.published == dt.date(2024, 5, 1)
    assert result.extra_json is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.org/x"}, "url"),
        ({"published": "yesterday"}, "published"),
        ({"published": "2024-05-01T10:00:00"}, "published"),  # no offset: ambiguous
        ({"authors": "David Walsh"}, "authors"),
        ({"authors": ["ok", ""]}, "authors.1"),
        ({"language": "german!"}, "language"),
        ({"id": "has space"}, "id"),
        ({"id": 42}, "id"),
        ({"file_name": "../outside.txt"}, "file_name"),
        ({"file_name": "/etc/passwd"}, "file_name"),
        ({"title": ""}, "title"),
    ],
)
def test_invalid_field_is_named_in_the_rejection(change: dict[str, Any], field: str) -> None:
    result = validate_metadata({**GOOD, **change}, 7)
    assert isinstance(result, Rejection)
    assert result.reason == Reason.METADATA_INVALID
    assert result.detail.startswith(f"metadata.jsonl line 7: {field}")
    assert result.detail[len(f"metadata.jsonl line 7: {field}")] in ":."


def test_unknown_fields_kept_as_sorted_json_or_rejected() -> None:
    record = {**GOOD, "zeta": 1, "alpha": {"nested": True}}
    kept = validate_metadata(record, 1)
    assert isinstance(kept, ValidMetadata)
    assert kept.extra_json is not None
    assert json.loads(kept.extra_json) == {"alpha": {"nested": True}, "zeta": 1}
    assert kept.extra_json.index("alpha") < kept.extra_json.index("zeta")
    rejected = validate_metadata(record, 3, unknown="reject")
    assert isinstance(rejected, Rejection)
    assert "alpha, zeta" in rejected.detail


def test_aware_datetime_becomes_utc() -> None:
    result = validate_metadata({**GOOD, "published": "2024-05-01T10:00:00+02:00"}, 1)
    assert isinstance(result, ValidMetadata)
    assert published_utc(result.model.published) == dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
    assert published_utc(dt.date(2024, 5, 1)) == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert published_utc(None) is None


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (
            "KI in der Unterhaltungsindustrie\n\nErster Absatz des Artikels.",
            "KI in der Unterhaltungsindustrie",
        ),
        ("A headline\nThe body follows right away.", "A headline"),
        ("This is a sentence.\n\nAnother one.", None),
        ("Only one line", None),
        (
            "It is enough to ask such a question to answer at once: no.—Leon Trotsky (1927)\nBody.",
            None,
        ),
        ("x" * 250 + "\n\nBody.", None),
        ("2024\n\nBody.", None),
    ],
)
def test_derive_title(text: str, title: str | None) -> None:
    assert derive_title(text) == title


def test_derived_id_is_stable_and_path_specific() -> None:
    assert derive_id("a.txt") == derive_id("a.txt")
    assert derive_id("a.txt") != derive_id("b.txt")
    assert derive_id("a.txt").startswith("doc-")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_date_times_that_leave_the_calendar_in_utc_are_invalid(value: str) -> None:
    result = validate_metadata({**GOOD, "published": value}, 2)
    assert isinstance(result, Rejection)
    assert result.detail.startswith("metadata.jsonl line 2: published: Value error, out of range")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"])
def test_date_times_at_the_calendar_edge_that_stay_in_it_are_valid(value: str) -> None:
    result = validate_metadata({**GOOD, "published": value}, 2)
    assert isinstance(result, ValidMetadata)
    assert published_utc(result.model.published) is not None


@pytest.mark.parametrize(
    "value",
    ["../../etc/passwd", "a/b", "a\\b", ".x", "..", "a\u200bb", "a\u202eb", "a\u00a0b", "e\u0301"],
)
def test_hostile_ids_are_invalid_in_the_model_and_in_discovery(value: str) -> None:
    result = validate_metadata({**GOOD, "id": value}, 5)
    assert isinstance(result, Rejection)
    assert result.detail.startswith("metadata.jsonl line 5: id: ")
    early = validate_id(value, 5)
    assert early is not None and early.detail == result.detail


@pytest.mark.parametrize("value", ["wsws-2024-001", "ÄÖÜ_ß", "日本-1", "a.b..c", "x:y", "Doc1"])
def test_ordinary_ids_are_valid(value: str) -> None:
    assert validate_id(value, 1) is None
