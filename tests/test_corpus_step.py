"""The corpus step: decisions across documents from the shard pass's facts, applied to the
parts they touch, and made again from scratch by every run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from flows.engine.corpus import read_facts
from flows.models import Manifest
from tests.conftest import SEEDS, run_release

ORIGINAL = "001_f6e449bcd0ea5a8d.txt"


def _table(out: Path, name: str) -> list[dict[str, Any]]:
    rows = ds.dataset(out / "current" / name).to_table().to_pylist()
    return sorted(rows, key=lambda r: str(r["source_path"]))


def _source_with_a_utf16_copy(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(SEEDS, source)
    text = (SEEDS / ORIGINAL).read_text(encoding="utf-8")
    (source / "zz-copy.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    return source


def test_an_exact_copy_is_rejected_and_names_the_kept_document(tmp_path: Path) -> None:
    source, out = _source_with_a_utf16_copy(tmp_path), tmp_path / "out"
    result = run_release(source, out, dedup="exact", shard_size=2)
    published = [r["source_path"] for r in _table(out, "documents")]
    assert published == ["000_f191ddaece1908f0.txt", ORIGINAL]
    (rejected,) = _table(out, "rejected")
    kept = next(r for r in _table(out, "documents") if r["source_path"] == ORIGINAL)
    assert (rejected["source_path"], rejected["stage"], rejected["reason"]) == (
        "zz-copy.txt",
        "dedup",
        "exact_duplicate",
    )
    assert kept["id"] in rejected["detail"]
    assert result.summary.published == 2 and result.summary.rejected == 1
    manifest = Manifest.model_validate_json((out / "current" / "manifest.json").read_bytes())
    assert manifest.corpus == {"exact_duplicate": 1}
    assert manifest.counts["published"] == 2
    # The facts keep every document as the shard pass saw it: the next run decides again.
    facts = (
        read_facts(out / "current" / "shards", ["source_path"]).column("source_path").to_pylist()
    )
    assert sorted(facts) == sorted([*published, "zz-copy.txt"])


def test_translations_and_distinct_texts_are_not_duplicates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_release(SEEDS, out, dedup="exact")
    assert len(_table(out, "documents")) == 2


def test_dedup_off_publishes_every_copy(tmp_path: Path) -> None:
    source, out = _source_with_a_utf16_copy(tmp_path), tmp_path / "out"
    run_release(source, out, dedup="off")
    assert len(_table(out, "documents")) == 3 and _table(out, "rejected") == []


def test_when_the_kept_document_goes_its_copy_is_published(tmp_path: Path) -> None:
    source, out = _source_with_a_utf16_copy(tmp_path), tmp_path / "out"
    run_release(source, out, dedup="exact", shard_size=2)
    # Unchanged rerun: the decided copy is read and processed again (its row was taken
    # out of documents), everything else is reused, and the decision is the same.
    again = run_release(source, out, dedup="exact", shard_size=2)
    assert again.processed == 1
    assert [r["reason"] for r in _table(out, "rejected")] == ["exact_duplicate"]
    (source / ORIGINAL).unlink()
    run_release(source, out, dedup="exact", shard_size=2)
    assert [r["source_path"] for r in _table(out, "documents")] == [
        "000_f191ddaece1908f0.txt",
        "zz-copy.txt",
    ]
    assert _table(out, "rejected") == []


def test_a_corpus_with_nothing_published_runs_the_corpus_step(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    (source / "empty.txt").write_bytes(b"")
    result = run_release(source, out, dedup="near")
    assert result.summary.published == 0 and result.summary.rejected == 1
