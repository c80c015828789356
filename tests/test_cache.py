"""Incremental runs: a document is processed again only when its bytes, metadata,
configuration or the pipeline changed (flows.cache, flows.shard; no Prefect needed)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pyarrow.dataset as ds

from flows.cache import load_index, processing_key
from flows.models import RunParameters
from flows.process import SourceDocument
from flows.settings import config_fingerprint, load_rules, stage_config
from flows.shard import copy_unchanged_shard, plan_shards, run_shard
from flows.source.listing import discover
from tests.conftest import SEEDS


def _release(
    source: Path, staging: Path, params: RunParameters, previous: Path | None
) -> tuple[int, int, int]:
    """Run every shard into ``staging`` (a release folder) as the flow does: copied whole
    when unchanged, else processed with row-by-row reuse. Returns (processed, reused,
    shards copied)."""
    rules, digest = load_rules(params)
    found = discover(str(source), params.include, params.exclude, params.max_file_bytes)
    jobs = plan_shards(
        found,
        stage_config(params, rules),
        str(staging),
        params.shard_size,
        params.max_file_bytes,
        config_fingerprint(params, digest),
        str(previous) if previous else None,
        load_index(previous),
    )
    copied = [copy_unchanged_shard(job) for job in jobs]
    results = [c or run_shard(job) for c, job in zip(copied, jobs, strict=True)]
    return (
        sum(r.processed for r in results),
        sum(r.reused for r in results),
        sum(c is not None for c in copied),
    )


def _rows(release: Path) -> list[dict[str, object]]:
    return ds.dataset(release / "documents").to_table().to_pylist()  # type: ignore[no-any-return]


def test_unchanged_inputs_are_reused_changed_ones_processed(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(SEEDS, source)
    for i in range(5):
        (source / f"extra-{i}.txt").write_text(
            f"Document number {i} talks about the strike at length, in English.\n"
        )
    (source / "empty.txt").write_bytes(b"")
    params = RunParameters(shard_size=3)

    first = tmp_path / "r1"
    assert _release(source, first, params, None) == (8, 0, 0)
    second = tmp_path / "r2"
    # Nothing changed: all three shards are copied as they are.
    assert _release(source, second, params, first) == (0, 8, 3)
    assert _rows(second) == _rows(first)
    assert (
        ds.dataset(second / "rejected").to_table().to_pylist()
        == ds.dataset(first / "rejected").to_table().to_pylist()
    )
    assert load_index(second) == load_index(first)

    (source / "extra-3.txt").write_text(
        "A changed document, also long enough to have a language of its own.\n"
    )
    third = tmp_path / "r3"
    # Shards [seeds, empty], [extra-0..2], [extra-3, extra-4]: the last one is redone, with
    # extra-4 reused row by row; the other two are copied.
    assert _release(source, third, params, second) == (1, 7, 2)
    changed = {r["source_path"]: str(r["text"]) for r in _rows(third)}
    assert changed["extra-3.txt"].startswith("A changed document")

    # A new file shifts the shards: none is copied whole, every other document is reused.
    (source / "aaa-new.txt").write_text(
        "A brand new document at the start of the sort order, in English.\n"
    )
    fourth = tmp_path / "r4"
    assert _release(source, fourth, params, third) == (1, 8, 0)


def test_a_deleted_input_is_not_copied_back_with_its_shard(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        (source / f"doc-{i}.txt").write_text(f"Document {i} is a short English text about work.\n")
    params = RunParameters(shard_size=2)
    first = tmp_path / "r1"
    assert _release(source, first, params, None) == (4, 0, 0)
    (source / "doc-3.txt").unlink()
    second = tmp_path / "r2"
    # Shard 1 is now [doc-2] alone while its old parts also hold doc-3: rebuilt, not copied.
    assert _release(source, second, params, first) == (0, 3, 1)
    assert sorted(str(r["source_path"]) for r in _rows(second)) == [
        "doc-0.txt",
        "doc-1.txt",
        "doc-2.txt",
    ]
    assert set(load_index(second)) == {"doc-0.txt", "doc-1.txt", "doc-2.txt"}


def test_configuration_change_reprocesses_everything(tmp_path: Path) -> None:
    first = tmp_path / "r1"
    assert _release(SEEDS, first, RunParameters(), None) == (2, 0, 0)
    second = tmp_path / "r2"
    changed = RunParameters(language_min_confidence=0.9)
    assert _release(SEEDS, second, changed, first) == (2, 0, 0)
    # Execution-only parameters (shards, workers, output) do not invalidate anything; with
    # other shard boundaries the rows are reused one by one.
    third = tmp_path / "r3"
    assert _release(SEEDS, third, changed.model_copy(update={"shard_size": 1}), second) == (
        0,
        2,
        0,
    )


def test_key_covers_bytes_metadata_id_and_config() -> None:
    doc = SourceDocument(
        source_path="a.txt", doc_id="a", size=1, metadata={"file_name": "a.txt"}, metadata_line=1
    )
    base = processing_key(doc, "0" * 64, "cfg")
    assert processing_key(doc, "0" * 64, "cfg") == base
    assert processing_key(doc, "1" * 64, "cfg") != base
    assert processing_key(doc, "0" * 64, "cfg2") != base
    assert processing_key(dataclasses.replace(doc, doc_id="b"), "0" * 64, "cfg") != base
    assert (
        processing_key(
            dataclasses.replace(doc, metadata={"file_name": "a.txt", "title": "T"}), "0" * 64, "cfg"
        )
        != base
    )


def test_damaged_index_only_costs_speed(tmp_path: Path) -> None:
    first = tmp_path / "r1"
    _release(SEEDS, first, RunParameters(), None)
    for part in (first / "index").iterdir():
        part.write_bytes(b"not parquet")
    assert load_index(first) == {}
