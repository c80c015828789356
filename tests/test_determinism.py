"""Determinism: the same inputs publish identical rows in identical order, whatever the
task runner, the number of workers, the shard size or where the source folder lives; and
the manifest's fingerprints say so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from flows.models import RunParameters
from flows.orchestration.flow import corpus_release
from tests.test_crash import generate_source
from tests.test_hostile import MAX_FILE_BYTES, build_hostile_source

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

# Manifest entries that must match between runs (created_at and release_id differ).
FINGERPRINTS = (
    "input_fingerprint",
    "config_fingerprint",
    "counts",
    "languages",
    "rejection_reasons",
)


def _source(root: Path) -> Path:
    """The hostile battery plus 200 generated multilingual documents, under ``root``."""
    root.mkdir()
    source, _, _ = build_hostile_source(root)
    (root / "gen").mkdir()
    generated = generate_source(root / "gen", docs=200)
    shutil.move(generated, source / "generated")
    return source


def _release(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    release = Path(path)
    documents = ds.dataset(release / "documents").to_table().to_pylist()
    rejected = ds.dataset(release / "rejected").to_table().to_pylist()
    manifest = json.loads((release / "manifest.json").read_text())
    return documents, rejected, manifest


def test_same_input_same_rows_in_the_same_order(tmp_path: Path) -> None:
    first_source = _source(tmp_path / "a")
    second_source = _source(tmp_path / "b")  # same content, another absolute path
    first = corpus_release(
        RunParameters(
            source=str(first_source),
            out=str(tmp_path / "out-a"),
            max_file_bytes=MAX_FILE_BYTES,
            task_runner="process",
            workers=2,
            shard_size=7,
        )
    )
    second = corpus_release(
        RunParameters(
            source=str(second_source),
            out=str(tmp_path / "out-b"),
            max_file_bytes=MAX_FILE_BYTES,
            task_runner="thread",
            workers=1,
            shard_size=500,
        )
    )
    docs_a, rejected_a, manifest_a = _release(first.path)
    docs_b, rejected_b, manifest_b = _release(second.path)

    # A real mix, not a trivial corpus (dedup = near now folds the copies among the hostile
    # inputs and generated documents that share most of their sentences: 17 of 204).
    assert len(docs_a) > 180 and len(rejected_a) > 20
    assert [r["source_path"] for r in docs_a] == sorted(r["source_path"] for r in docs_a)
    # Row by row, every column: ids, text, language and its confidence, removed lines, ...
    for row_a, row_b in zip(docs_a, docs_b, strict=True):
        assert row_a == row_b, row_a["source_path"]
    assert rejected_a == rejected_b
    for key in FINGERPRINTS:
        assert manifest_a[key] == manifest_b[key], key
    # Different shard sizes make different part files; the rows in them are the same.
    assert len(manifest_a["files"]) != len(manifest_b["files"])
