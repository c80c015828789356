"""The contracts are declared once: row types, Arrow schemas, README tables and stage
defaults cannot drift apart."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pyarrow as pa
import pytest

from flows.contracts import (
    DOCUMENT_SCHEMA,
    REJECTED_SCHEMA,
    TABLES,
    DocumentRow,
    _arrow_schema,
    documents_table,
)
from flows.engine.summary import SUMMARY_COLUMNS
from flows.models import RunParameters
from flows.settings import load_rules, stage_config
from flows.stages.boilerplate import RemovedLine
from flows.stages.encoding import EncodingSettings
from flows.stages.language import LanguageSettings
from flows.stages.quality import quality_signals
from tests.conftest import REPO


def _readme_columns(heading: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    columns: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            columns += re.findall(r"`([a-z_0-9]+)`", line.split("|")[1])
    return columns


def test_every_table_has_a_column_per_row_field_in_order() -> None:
    for folder, (schema, row) in TABLES.items():
        assert schema.names == [f.name for f in dataclasses.fields(row)], folder
        assert schema.metadata[b"schema"] == f"corpus.{folder}".encode()


def test_nullable_exactly_where_the_row_field_may_be_none() -> None:
    assert not DOCUMENT_SCHEMA.field("id").nullable
    assert DOCUMENT_SCHEMA.field("title").nullable
    assert DOCUMENT_SCHEMA.field("published").type == pa.timestamp("us", tz="UTC")
    assert REJECTED_SCHEMA.field("source_sha256").nullable
    assert not REJECTED_SCHEMA.field("reason").nullable


def test_a_field_without_an_arrow_type_fails_at_import_not_at_write() -> None:
    @dataclasses.dataclass
    class Row:
        id: str
        payload: complex

    with pytest.raises(TypeError, match=r"Row\.payload"):
        _arrow_schema(Row, "bad", 1, {})


def test_readme_documents_every_column_of_both_tables() -> None:
    assert _readme_columns("### `documents` schema") == DOCUMENT_SCHEMA.names
    text = (REPO / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("### `rejected` schema", 1)[1].split("\n\n", 2)[1]
    # The paragraph names each column once, in order, with examples in parentheses.
    named = re.findall(r"`([a-z_0-9]+)`", re.sub(r"\([^)]*\)", "", paragraph))
    assert named == REJECTED_SCHEMA.names


def test_summary_reads_only_columns_that_exist() -> None:
    for folder, columns in SUMMARY_COLUMNS.items():
        schema = TABLES[folder][0]
        assert set(columns) <= set(schema.names), folder


def test_stage_defaults_are_the_run_parameters_defaults() -> None:
    params = RunParameters()
    cfg = stage_config(params, load_rules(params)[0])
    assert cfg.encoding == EncodingSettings()
    assert cfg.language == LanguageSettings()


def test_a_row_round_trips_through_its_table() -> None:
    row = DocumentRow(
        id="a",
        text="Text",
        title=None,
        language="en",
        language_confidence=1.0,
        language_declared=None,
        language_mismatch=False,
        language_share=None,
        language_mixed=False,
        source_path="a.txt",
        source_bytes=4,
        source_encoding="utf-8",
        encoding_confidence=1.0,
        encoding_method="utf-8",
        encoding_low_confidence=False,
        text_repairs=("x>y",),
        source_sha256="0" * 64,
        text_sha256="1" * 64,
        text_chars=4,
        removed=(RemovedLine("rule", "Loading", 2),),
        quality=quality_signals("Text"),
        url=None,
        published=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        authors=("A",),
        license=None,
        source=None,
        metadata_extra=None,
        pipeline_version="v",
    )
    table = documents_table([row])
    assert table.schema.equals(DOCUMENT_SCHEMA, check_metadata=True)
    back = table.to_pylist()[0]
    assert back["removed"] == [{"rule": "rule", "text": "Loading", "line": 2}]
    assert back["published"] == row.published
    assert back["text_repairs"] == ["x>y"]
    assert back["quality"]["word_count"] == 1
    assert back["quality"]["mean_word_length"] == 4.0


def test_readme_documents_every_column_of_the_pairs_tables() -> None:
    from flows.contracts import BITEXT_SCHEMA, PAIRS_SCHEMA

    assert _readme_columns("### `pairs` schema") == PAIRS_SCHEMA.names
    assert _readme_columns("### `bitext` schema") == BITEXT_SCHEMA.names
