"""Determinism: the same inputs publish identical rows in identical order, whatever the
task runner, the number of workers, the shard size or where the source folder lives; and
the manifest's fingerprints say so.

The first run is the hostile battery's (tests/test_hostile.py: threads, two workers, shards
of 5); this module publishes the same inputs, built again under another path, with the
process runner (a spawned worker: another hash seed, its own language profiles), one worker
and shards of 40, and compares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from flows.orchestration.flow import corpus_release
from tests.test_hostile import (
    BATTERY_PARAMETERS,
    GENERATED,
    Battery,
    build_battery_source,
    run_parameters,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

# Manifest entries that must match between runs (created_at and release_id differ).
FINGERPRINTS = (
    "input_fingerprint",
    "config_fingerprint",
    "counts",
    "languages",
    "rejection_reasons",
)


def _release(release: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    documents = ds.dataset(release / "documents").to_table().to_pylist()
    rejected = ds.dataset(release / "rejected").to_table().to_pylist()
    manifest = json.loads((release / "manifest.json").read_text())
    return documents, rejected, manifest


def test_same_input_same_rows_in_the_same_order(hostile_battery: Battery, tmp_path: Path) -> None:
    source, _, _ = build_battery_source(tmp_path / "elsewhere")  # same content, another path
    assert source != hostile_battery.source
    params = run_parameters(
        source, tmp_path / "out", task_runner="process", workers=1, shard_size=40
    )
    assert params.shard_size != BATTERY_PARAMETERS["shard_size"]
    assert BATTERY_PARAMETERS["task_runner"] == "thread"
    second = corpus_release(params)
    docs_a, rejected_a, manifest_a = _release(hostile_battery.release)
    docs_b, rejected_b, manifest_b = _release(Path(second.path))

    # A real mix, not a trivial corpus.
    assert len(docs_a) > GENERATED and len(rejected_a) > 20
    assert [r["source_path"] for r in docs_a] == sorted(r["source_path"] for r in docs_a)
    # Row by row, every column: ids, text, language and its confidence, removed lines, ...
    for row_a, row_b in zip(docs_a, docs_b, strict=True):
        assert row_a == row_b, row_a["source_path"]
    assert rejected_a == rejected_b
    for key in FINGERPRINTS:
        assert manifest_a[key] == manifest_b[key], key
    # Different shard sizes make different part files; the rows in them are the same.
    assert len(manifest_a["files"]) != len(manifest_b["files"])
