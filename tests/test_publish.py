"""Publishing: explicit schema, atomic switch, locking, pruning, Parquet round trip."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.arrow_schema import DOCUMENT_SCHEMA
from flows.errors import OutputError, OutputLockedError
from flows.process import DocumentRow, SourceDocument, StageConfig, process_document
from flows.publish import (
    RELEASES,
    documents_table,
    ensure_output,
    ensure_tables,
    new_staging,
    output_lock,
    prune,
    write_shard,
)
from flows.stages.boilerplate import RemovedLine


def _row(**changes: object) -> DocumentRow:
    base: dict[str, object] = {
        "id": "a",
        "text": "t",
        "title": None,
        "language": "en",
        "language_confidence": 0.9,
        "language_declared": None,
        "language_mismatch": False,
        "source_path": "a.txt",
        "source_bytes": 1,
        "source_encoding": "utf-8",
        "encoding_confidence": 1.0,
        "encoding_method": "utf-8",
        "source_sha256": "0" * 64,
        "text_sha256": "1" * 64,
        "text_chars": 1,
        "removed": (RemovedLine("r", "x", 1),),
        "url": None,
        "published": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "authors": ("A",),
        "license": None,
        "source": None,
        "metadata_extra": None,
        "pipeline_version": "v",
    }
    base.update(changes)
    return DocumentRow(**base)  # type: ignore[arg-type]


def test_table_has_exactly_the_declared_schema() -> None:
    table = documents_table([_row(), _row(id="b", removed=(), authors=())])
    assert table.schema.equals(DOCUMENT_SCHEMA, check_metadata=True)
    assert table.column("removed").to_pylist()[0] == [{"rule": "r", "text": "x", "line": 1}]


def test_empty_release_still_has_readable_tables(tmp_path: Path) -> None:
    ensure_tables(tmp_path)
    table = pq.read_table(tmp_path / "documents" / "part-00000.parquet")
    assert table.num_rows == 0
    assert table.schema.equals(DOCUMENT_SCHEMA, check_metadata=False)


def test_lock_is_exclusive(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path / "out"))
    with (
        output_lock(out),
        pytest.raises(OutputLockedError, match=f"pid {os.getpid()}"),
        output_lock(out),
    ):
        pass
    with output_lock(out):  # released
        pass


def test_output_must_be_writable_and_current_a_link(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        ensure_output(str(tmp_path / "file" / "out"))
    (tmp_path / "out2" / "current").mkdir(parents=True)
    with pytest.raises(OutputError, match="not a symbolic link"):
        ensure_output(str(tmp_path / "out2"))


def test_staging_leftovers_are_removed(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path))
    old = new_staging(out)
    (old / "junk").write_text("x")
    new = new_staging(out)
    assert not old.exists() and new.exists()


def test_prune_keeps_newest_and_current(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path))
    for name in ("20240101T000000Z-a", "20240102T000000Z-b", "20240103T000000Z-c"):
        (out / RELEASES / name).mkdir()
    os.symlink(f"{RELEASES}/20240101T000000Z-a", out / "current")
    removed = prune(out, keep=1)
    assert removed == ["20240102T000000Z-b"]
    assert sorted(p.name for p in (out / RELEASES).iterdir() if not p.name.startswith(".")) == [
        "20240101T000000Z-a",
        "20240103T000000Z-c",
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=400))
def test_accepted_documents_round_trip_through_parquet(
    default_config: StageConfig, tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    doc = SourceDocument(source_path="p/ä b\n.txt", doc_id="id-1", size=0)
    row = process_document(doc, text.encode("utf-8"), default_config)
    if not isinstance(row, DocumentRow):
        return
    staging = tmp_path_factory.mktemp("rt")
    write_shard(str(staging), 0, [row], [])
    (back,) = pq.read_table(staging / "documents" / "part-00000.parquet").to_pylist()
    assert back["text"] == row.text
    assert back["source_path"] == row.source_path
    assert back["removed"] == [
        {"rule": r.rule, "text": r.text, "line": r.line} for r in row.removed
    ]
    assert (back["language"], back["language_confidence"]) == (
        row.language,
        row.language_confidence,
    )
