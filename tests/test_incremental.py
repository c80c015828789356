"""Incremental runs through the engine (no Prefect): a document is processed again only when
its bytes, metadata, configuration or the pipeline changed; each input is read and hashed
once a run; nothing reused from the previous release is trusted without verification."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import flows.engine.shard as shard_module
from flows.contracts import SourceDocument
from flows.engine.plan import prepare
from flows.engine.run import InlineRunner, RunResult, execute
from flows.models import Manifest, RunParameters
from flows.output.previous import processing_key
from flows.source.reading import read_input
from tests.conftest import SEEDS, run_release


def _counts(result: RunResult) -> tuple[int, int, int]:
    return result.processed, result.summary.reused, result.copied_shards


def _rows(out: Path, table: str = "documents") -> list[dict[str, object]]:
    rows = ds.dataset(out / "current" / table).to_table().to_pylist()
    return sorted(rows, key=lambda r: str(r["source_path"]))


def _manifest(out: Path) -> Manifest:
    return Manifest.model_validate_json((out / "current" / "manifest.json").read_bytes())


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(SEEDS, source)
    for i in range(5):
        (source / f"extra-{i}.txt").write_text(
            f"Document number {i} talks about the strike at length, in English.\n"
        )
    (source / "empty.txt").write_bytes(b"")
    return source


def test_unchanged_inputs_are_reused_changed_ones_processed(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _counts(run_release(corpus, out, shard_size=3)) == (8, 0, 0)
    first_docs, first_rejected = _rows(out), _rows(out, "rejected")
    # Nothing changed: all three shards are copied whole (the empty input's rejected row too).
    assert _counts(run_release(corpus, out, shard_size=3)) == (0, 8, 3)
    assert _rows(out) == first_docs
    assert _rows(out, "rejected") == first_rejected

    (corpus / "extra-3.txt").write_text(
        "A changed document, also long enough to have a language of its own.\n"
    )
    # Shards [seeds, empty], [extra-0..2], [extra-3, extra-4]: the last one is redone, with
    # extra-4 reused row by row; the other two are copied.
    assert _counts(run_release(corpus, out, shard_size=3)) == (1, 7, 2)
    changed = {str(r["source_path"]): str(r["text"]) for r in _rows(out)}
    assert changed["extra-3.txt"].startswith("A changed document")

    # A new file shifts the shards: none is copied whole, every other document is reused.
    (corpus / "aaa-new.txt").write_text(
        "A brand new document at the start of the sort order, in English.\n"
    )
    assert _counts(run_release(corpus, out, shard_size=3)) == (1, 8, 0)


def test_a_deleted_input_is_not_copied_back_with_its_shard(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        (source / f"doc-{i}.txt").write_text(f"Document {i} is a short English text about work.\n")
    out = tmp_path / "out"
    assert _counts(run_release(source, out, shard_size=2)) == (4, 0, 0)
    (source / "doc-3.txt").unlink()
    # Shard 1 is now [doc-2] alone while its old parts also hold doc-3: rebuilt, not copied.
    assert _counts(run_release(source, out, shard_size=2)) == (0, 3, 1)
    assert [r["source_path"] for r in _rows(out)] == ["doc-0.txt", "doc-1.txt", "doc-2.txt"]
    index = (
        ds.dataset(out / "current" / "shards" / "index")
        .to_table()
        .column("source_path")
        .to_pylist()
    )
    assert sorted(index) == ["doc-0.txt", "doc-1.txt", "doc-2.txt"]


def test_configuration_change_reprocesses_everything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _counts(run_release(SEEDS, out)) == (2, 0, 0)
    assert _counts(run_release(SEEDS, out, language_min_confidence=0.9)) == (2, 0, 0)
    # Execution-only parameters (shards, workers, output) do not invalidate anything; with
    # other shard boundaries the rows are reused one by one.
    assert _counts(run_release(SEEDS, out, language_min_confidence=0.9, shard_size=1)) == (0, 2, 0)
    # What only the corpus step reads does not change a document's row either.
    assert _counts(run_release(SEEDS, out, language_min_confidence=0.9, dedup="exact")) == (0, 2, 0)


def test_key_covers_bytes_metadata_id_and_config() -> None:
    doc = SourceDocument(
        source_path="a.txt", doc_id="a", size=1, metadata={"file_name": "a.txt"}, metadata_line=1
    )
    base = processing_key(doc, "0" * 64, "cfg")
    assert processing_key(doc, "1" * 64, "cfg") != base
    assert processing_key(doc, "0" * 64, "cfg2") != base
    assert processing_key(dataclasses.replace(doc, doc_id="b"), "0" * 64, "cfg") != base
    assert processing_key(dataclasses.replace(doc, source_path="b.txt"), "0" * 64, "cfg") != base
    assert (
        processing_key(
            dataclasses.replace(doc, metadata={"file_name": "a.txt", "title": "T"}), "0" * 64, "cfg"
        )
        != base
    )


def test_each_input_is_read_once_and_hashed_once_perrun_release(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: Counter[str] = Counter()
    hashes: Counter[str] = Counter()
    real_read, real_digest = read_input, shard_module.source_digest

    def counting_read(root: str, doc: SourceDocument, max_bytes: int) -> object:
        reads[doc.source_path] += 1
        return real_read(root, doc, max_bytes)

    def counting_digest(data: bytes) -> str:
        digest = real_digest(data)
        hashes[digest] += 1  # the test's inputs all differ
        return digest

    monkeypatch.setattr("flows.engine.shard.read_input", counting_read)
    monkeypatch.setattr(shard_module, "source_digest", counting_digest)
    out = tmp_path / "out"
    inputs = len(list(corpus.glob("*.txt")))
    for change in (None, "extra-1.txt", None):  # cold, one changed, unchanged
        if change:
            (corpus / change).write_text("Changed again: a sentence long enough for a language.\n")
        reads.clear()
        hashes.clear()
        run_release(corpus, out, shard_size=3)
        assert len(reads) == inputs
        assert set(reads.values()) == {1}
        assert set(hashes.values()) == {1}
        assert sum(hashes.values()) == inputs


def _rewrite_part(out: Path, name: str, table: pa.Table, update_manifest: bool) -> None:
    """Replace a part of the current release; optionally make the manifest agree with it,
    as a careful forger would."""
    release = (out / "current").resolve()
    pq.write_table(table, release / name)
    if update_manifest:
        manifest = json.loads((release / "manifest.json").read_text())
        for entry in manifest["files"]:
            if entry["path"] == name:
                data = (release / name).read_bytes()
                entry.update(
                    sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), rows=table.num_rows
                )
        (release / "manifest.json").write_text(json.dumps(manifest))


def _two_shards(tmp_path: Path) -> tuple[Path, Path, list[dict[str, object]]]:
    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        (source / f"doc-{i}.txt").write_text(
            f"Document {i} is a short English text about the workers and their strike.\n"
        )
    out = tmp_path / "out"
    run_release(source, out, shard_size=2)
    return source, out, _rows(out)


def test_flipped_bytes_in_a_part_are_not_copied_forward(tmp_path: Path) -> None:
    source, out, expected = _two_shards(tmp_path)
    part = (out / "current").resolve() / "shards" / "documents" / "part-00000.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    result = run_release(source, out, shard_size=2)
    assert result.processed == 2 and result.copied_shards == 1
    assert _rows(out) == expected
    assert any("documents/part-00000.parquet" in w for w in _manifest(out).warnings)


def test_injected_text_is_never_published(tmp_path: Path) -> None:
    source, out, expected = _two_shards(tmp_path)
    name = "shards/documents/part-00000.parquet"
    release = (out / "current").resolve()
    table = pq.read_table(release / name)
    texts = table.column("text").to_pylist()
    forged = table.set_column(
        table.schema.get_field_index("text"), "text", pa.array(["INJECTED " + t for t in texts])
    )
    # Manifest left alone: the part no longer hashes to it.
    _rewrite_part(out, name, forged, update_manifest=False)
    run_release(source, out, shard_size=2)
    assert _rows(out) == expected
    # Manifest forged too: the rows' own text_sha256 gives them away.
    _rewrite_part(out, name, forged, update_manifest=True)
    result = run_release(source, out, shard_size=2)
    assert _rows(out) == expected and result.processed == 2
    for row in _rows(out):
        assert row["text_sha256"] == hashlib.sha256(str(row["text"]).encode()).hexdigest()


def test_a_deleted_row_does_not_make_its_input_vanish(tmp_path: Path) -> None:
    source, out, expected = _two_shards(tmp_path)
    name = "shards/documents/part-00001.parquet"
    table = pq.read_table((out / "current").resolve() / name)
    _rewrite_part(out, name, table.slice(0, 1), update_manifest=True)
    result = run_release(source, out, shard_size=2)
    assert _rows(out) == expected
    assert result.summary.published == 4 and result.processed == 1


@pytest.mark.parametrize("damage", ["truncated part", "truncated index", "no manifest"])
def test_a_damaged_previous_release_never_blocks_a_new_one(tmp_path: Path, damage: str) -> None:
    source, out, expected = _two_shards(tmp_path)
    release = (out / "current").resolve()
    if damage == "no manifest":
        (release / "manifest.json").write_text("{not json")
    else:
        folder = "documents" if damage == "truncated part" else "index"
        part = release / "shards" / folder / "part-00001.parquet"
        part.write_bytes(part.read_bytes()[:100])
    result = run_release(source, out, shard_size=2)
    assert _rows(out) == expected
    assert result.processed == (4 if damage == "no manifest" else 2)


@pytest.mark.parametrize("swap", ["folder", "fifo", "deleted"])
def test_an_input_swapped_after_discovery_is_rejected_not_lost(tmp_path: Path, swap: str) -> None:
    """Hostile battery: between discovery and the single read the file becomes a folder, a
    FIFO (opening it must not block), or vanishes; the input still ends as one row."""
    source = tmp_path / "src"
    shutil.copytree(SEEDS, source)
    victim = source / "000_f191ddaece1908f0.txt"
    plan = prepare(RunParameters(source=str(source), out=str(tmp_path / "out")))
    victim.unlink()
    if swap == "folder":
        victim.mkdir()
    elif swap == "fifo":
        os.mkfifo(victim)
    execute(plan, InlineRunner())
    (row,) = _rows(tmp_path / "out", "rejected")
    assert row["source_path"] == victim.name
    expected = {
        "folder": "unreadable",
        "fifo": "not_a_regular_file",
        "deleted": "unreadable",
    }
    assert (row["stage"], row["reason"]) == ("discover", expected[swap])
    if swap == "folder":
        assert "IsADirectoryError" in str(row["detail"])
    assert len(_rows(tmp_path / "out")) == 1
