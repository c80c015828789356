"""Publishing: explicit schema, atomic switch, locking, pruning, Parquet round trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.contracts import (
    DOCUMENT_SCHEMA,
    DocumentRow,
    RejectedRow,
    SourceDocument,
    documents_table,
    rejected_table,
)
from flows.errors import OutputError, OutputLockedError
from flows.models import Manifest
from flows.output.release import (
    RELEASES,
    ensure_output,
    ensure_tables,
    new_staging,
    output_lock,
    prune,
    write_parts,
)
from flows.stages.boilerplate import RemovedLine
from flows.stages.compose import StageConfig, process_document
from flows.stages.quality import quality_signals


def _row(**changes: object) -> DocumentRow:
    base: dict[str, object] = {
        "id": "a",
        "text": "t",
        "title": None,
        "language": "en",
        "language_confidence": 0.9,
        "language_declared": None,
        "language_mismatch": False,
        "language_share": None,
        "language_mixed": False,
        "source_path": "a.txt",
        "source_bytes": 1,
        "source_encoding": "utf-8",
        "encoding_confidence": 1.0,
        "encoding_method": "utf-8",
        "encoding_low_confidence": False,
        "text_repairs": ("sloppy-windows-1252>utf-8",),
        "source_sha256": "0" * 64,
        "text_sha256": "1" * 64,
        "text_chars": 1,
        "removed": (RemovedLine("r", "x", 1),),
        "quality": quality_signals("t"),
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
    for name in (
        "20240101T000000Z-0000000a",
        "20240102T000000Z-0000000b",
        "20240103T000000Z-0000000c",
    ):
        _fake_release(out, name, files=0)
    os.symlink(f"{RELEASES}/20240101T000000Z-0000000a", out / "current")
    removed = prune(out, keep=1)
    assert removed == ["20240102T000000Z-0000000b"]
    assert sorted(p.name for p in (out / RELEASES).iterdir() if not p.name.startswith(".")) == [
        "20240101T000000Z-0000000a",
        "20240103T000000Z-0000000c",
    ]


# Text without control characters (a few of those make a file binary), alone or after a
# sentence of prose: most of these are published, so most examples reach the column checks
# (the tests count them); the rest are rejected rows, which must round-trip too.
_PROSE = st.sampled_from(
    [
        "The workers at the plant voted to continue the strike for a third week.",
        "Die Beschäftigten im Werk streiken seit drei Wochen gegen die Lohnkürzungen.",
        "組合は三週間の交渉の後、スタジオとの話し合いを打ち切りました。",
    ]
)
_CHARS = st.characters(exclude_categories=["Cc", "Cs"], include_characters="\n\t")
_TEXTS = st.text(_CHARS, min_size=1, max_size=400) | st.tuples(
    _PROSE, st.text(_CHARS, max_size=200)
).map("\n".join)


def _round_trip(row: DocumentRow | RejectedRow, staging: Path) -> dict[str, Any]:
    """Write ``row`` as a one-row part of its table and read it back."""
    if isinstance(row, DocumentRow):
        table = "documents"
        write_parts(str(staging), 0, [(table, documents_table([row]))])
    else:
        table = "rejected"
        write_parts(str(staging), 0, [(table, rejected_table([row]))])
    (back,) = pq.read_table(staging / table / "part-00000.parquet").to_pylist()
    return cast(dict[str, Any], back)


def _assert_rejected_round_trips(row: RejectedRow, back: dict[str, Any]) -> None:
    assert back == {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    assert row.detail.strip()


def test_accepted_documents_round_trip_through_parquet(
    default_config: StageConfig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reached: Counter[str] = Counter()

    @settings(max_examples=25, deadline=None)
    @given(_TEXTS)
    def check(text: str) -> None:
        doc = SourceDocument(source_path="p/ä b\n.txt", doc_id="id-1", size=0)
        row = process_document(doc, text.encode("utf-8"), default_config)
        back = _round_trip(row, tmp_path_factory.mktemp("rt"))
        reached[type(row).__name__] += 1
        if isinstance(row, RejectedRow):
            _assert_rejected_round_trips(row, back)
            return
        assert back["text"] == row.text
        assert back["source_path"] == row.source_path
        assert back["removed"] == [
            {"rule": r.rule, "text": r.text, "line": r.line} for r in row.removed
        ]
        assert (back["language"], back["language_confidence"]) == (
            row.language,
            row.language_confidence,
        )

    check()
    assert reached["DocumentRow"] >= 0.8 * reached.total(), reached


def _fake_release(out: Path, name: str, files: int = 3) -> Path:
    release = out / RELEASES / name
    (release / "documents").mkdir(parents=True)
    for i in range(files):
        (release / "documents" / f"part-{i:05d}.parquet").write_bytes(b"x" * 100)
    (release / "manifest.json").write_text(fake_manifest(name).model_dump_json())
    return release


def fake_manifest(name: str) -> Manifest:
    """A valid manifest of release ``name``: what prune needs to call a folder a release."""
    return Manifest(
        release_id=name,
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        pipeline_version="v",
        document_schema_version=2,
        rejected_schema_version=1,
        input_fingerprint="0" * 64,
        config_fingerprint="0" * 64,
        counts={},
        languages={},
        rejection_reasons={},
        files=[],
        metadata_issues=[],
        parameters={},
    )


def _visible(out: Path) -> list[str]:
    return sorted(p.name for p in (out / RELEASES).iterdir() if not p.name.startswith("."))


_CRASHING_PRUNE = """
import os, shutil, signal, sys
from pathlib import Path
from flows.output import release as publish

def crash_midway(path, *args, **kwargs):
    # Delete one file of the doomed release, then die as a killed process would.
    first = sorted(Path(path).rglob("*.parquet"))[0]
    first.unlink()
    os.kill(os.getpid(), signal.SIGKILL)

shutil.rmtree = crash_midway
publish.prune(Path(sys.argv[1]), keep=int(sys.argv[2]))
"""


def test_crash_mid_prune_leaves_only_a_hidden_deleting_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = ensure_output(str(tmp_path))
    for name in (
        "20240101T000000Z-0000000a",
        "20240102T000000Z-0000000b",
        "20240103T000000Z-0000000c",
    ):
        _fake_release(out, name)
    os.symlink(f"{RELEASES}/20240103T000000Z-0000000c", out / "current")
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHING_PRUNE, str(out), "1"], check=False, timeout=60
    )
    assert crashed.returncode == -9  # really killed mid-delete
    # The half-deleted release is hidden under a dot name; the others are whole.
    assert _visible(out) == ["20240102T000000Z-0000000b", "20240103T000000Z-0000000c"]
    (doomed,) = (out / RELEASES).glob(".deleting-*")
    assert doomed.name == ".deleting-20240101T000000Z-0000000a"
    assert len(list(doomed.rglob("*.parquet"))) == 2
    assert (out / "current" / "manifest.json").is_file()

    assert prune(out, keep=1) == ["20240102T000000Z-0000000b"]
    assert sorted(p.name for p in (out / RELEASES).iterdir()) == ["20240103T000000Z-0000000c"]


def test_prune_keeps_exactly_keep_and_orders_collisions_numerically(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path))
    names = [f"20240101T000000Z-0000abcd{'' if n == 1 else f'.{n}'}" for n in range(1, 12)]
    for name in names:
        _fake_release(out, name, files=1)
    os.symlink(f"{RELEASES}/{names[-1]}", out / "current")  # ".11", the newest
    removed = prune(out, keep=3)
    assert removed == names[:8]
    assert _visible(out) == sorted(names[8:])
    assert prune(out, keep=3) == []  # idempotent


def test_prune_never_removes_current_even_when_oldest(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path))
    for name in (
        "20240101T000000Z-0000000a",
        "20240102T000000Z-0000000b",
        "20240103T000000Z-0000000c",
    ):
        _fake_release(out, name)
    os.symlink(f"{RELEASES}/20240101T000000Z-0000000a", out / "current")
    prune(out, keep=1)
    assert (out / "current").resolve().name == "20240101T000000Z-0000000a"
    assert (out / "current" / "manifest.json").is_file()


def test_new_staging_clears_every_leftover_of_a_killed_run(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path))
    _fake_release(out, "20240101T000000Z-0000000a")
    os.symlink(f"{RELEASES}/20240101T000000Z-0000000a", out / "current")
    stale_staging = out / RELEASES / ".staging-dead"
    (stale_staging / "documents").mkdir(parents=True)
    os.symlink(
        f"{RELEASES}/20240101T000000Z-0000000a", out / ".current-dead"
    )  # killed before rename
    (out / RELEASES / ".probe-dead").write_bytes(b"")
    staging = new_staging(out)
    assert sorted(p.name for p in (out / RELEASES).iterdir()) == sorted(
        ["20240101T000000Z-0000000a", staging.name]
    )
    assert sorted(p.name for p in out.iterdir()) == ["current", "releases"]
    assert (out / "current" / "manifest.json").is_file()


# --- rows that cannot be written must cost one document, never the shard ---


def test_unencodable_row_is_rejected_not_written(default_config: StageConfig) -> None:
    from flows.stages.compose import process_many

    doc = SourceDocument(
        source_path="a.txt",
        doc_id="a",
        size=0,
        metadata={"file_name": "a.txt", "extra": "lone \ud800 surrogate"},
        metadata_line=1,
    )
    good = SourceDocument(source_path="b.txt", doc_id="b", size=0)
    text = b"The strike went on for a third week at the plant near the river."
    outcome = process_many([(doc, text), (good, text)], default_config)
    assert [r.source_path for r in outcome.documents] == ["b.txt"]
    (rejected,) = outcome.rejected
    assert (rejected.reason, rejected.stage) == ("internal_error", "pipeline")
    assert "metadata_extra" in rejected.detail
    assert rejected.source_sha256 is not None


def test_a_crashing_document_never_fails_its_shard(
    default_config: StageConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.stages.boilerplate import clean as real_clean
    from flows.stages.compose import process_many

    def clean_that_fails_on_marker(text: str, rules: object) -> object:
        if "EXPLODE" in text:
            raise RuntimeError("boom \udc80 with a surrogate in the message")
        return real_clean(text, rules)  # type: ignore[arg-type]

    # Fault injection inside the stage chain: a bug met by one document.
    monkeypatch.setattr("flows.stages.compose.clean", clean_that_fails_on_marker)
    docs = [SourceDocument(source_path=f"{i}.txt", doc_id=str(i), size=0) for i in range(3)]
    texts = [b"First fine paragraph of text.", b"EXPLODE here", b"Third fine paragraph."]
    outcome = process_many(list(zip(docs, texts, strict=True)), default_config)
    assert [r.source_path for r in outcome.documents] == ["0.txt", "2.txt"]
    (rejected,) = outcome.rejected
    assert (rejected.source_path, rejected.reason) == ("1.txt", "internal_error")
    assert "RuntimeError: boom" in rejected.detail
    tables = [
        ("documents", documents_table(outcome.documents)),
        ("rejected", rejected_table(outcome.rejected)),
    ]
    write_parts(str(tmp_path), 0, tables)  # the detail is writable
    back = pq.read_table(tmp_path / "rejected" / "part-00000.parquet").to_pylist()
    assert back[0]["detail"] == "RuntimeError: boom \\udc80 with a surrogate in the message"


_NAMES = st.lists(
    st.text(
        st.characters(codec="utf-8", exclude_characters="/\x00"),
        min_size=1,
        max_size=20,
    ),
    min_size=1,
    max_size=4,
).map("/".join)


def test_every_column_of_an_accepted_row_round_trips(
    default_config: StageConfig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reached: Counter[str] = Counter()

    @settings(max_examples=45, deadline=None)
    @given(
        name=_NAMES,
        text=_TEXTS,
        title=st.text(min_size=1, max_size=40).filter(str.strip),
        authors=st.lists(st.text(min_size=1, max_size=10).filter(str.strip), max_size=3),
        extra=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
    )
    def check(name: str, text: str, title: str, authors: list[str], extra: dict[str, str]) -> None:
        metadata = {**extra, "file_name": name, "title": title, "authors": authors}
        metadata.update(published="2024-05-01T12:00:00+02:00", url="https://example.org/a b")
        doc = SourceDocument(
            source_path=name, doc_id="id-1", size=0, metadata=metadata, metadata_line=1
        )
        row = process_document(doc, text.encode("utf-8"), default_config)
        back = _round_trip(row, tmp_path_factory.mktemp("rt"))
        reached[type(row).__name__] += 1
        if isinstance(row, RejectedRow):
            _assert_rejected_round_trips(row, back)
            assert back["source_path"] == name
            return
        for column in DOCUMENT_SCHEMA.names:  # every column equals the row's own value
            value = getattr(row, column)
            if column == "removed":
                value = [{"rule": r.rule, "text": r.text, "line": r.line} for r in value]
            elif column == "quality":
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            assert back[column] == value, column
        assert back["source_path"] == name and back["text"] == row.text
        assert back["published"] == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)

    check()
    assert reached["DocumentRow"] >= 0.8 * reached.total(), reached


# --- publishing is idempotent; pruning is housekeeping of our own releases only ---


def _published(out: Path, name: str) -> tuple[Path, Manifest]:
    from flows.output.release import finalize

    staging = new_staging(out)
    write_parts(str(staging), 0, [("documents", documents_table([_row()]))])
    ensure_tables(staging)
    manifest = fake_manifest(name)
    return finalize(staging, manifest, "card", out), manifest


def test_finalize_again_after_it_succeeded_publishes_nothing_new(tmp_path: Path) -> None:
    from flows.output.release import finalize

    out = ensure_output(str(tmp_path))
    final, manifest = _published(out, "20240101T000000Z-0000000a")
    (marker,) = (out / RELEASES).glob(".staging-*.published")
    staging = marker.with_name(marker.name.removesuffix(".published"))
    before = sorted((out / RELEASES).iterdir())
    # What a retried publish task does: tables (the staging folder is gone), then finalize
    # with a fresh manifest and id.
    ensure_tables(staging)
    retry = fake_manifest("20240101T000001Z-0000000a")
    assert finalize(staging, retry, "card", out) == final
    assert not staging.exists()
    assert sorted((out / RELEASES).iterdir()) == before
    assert os.readlink(out / "current") == f"{RELEASES}/{final.name}"
    assert retry == manifest  # the caller reports what was published


def test_finalize_of_a_staging_folder_that_vanished_unpublished_fails_clearly(
    tmp_path: Path,
) -> None:
    from flows.output.release import finalize

    out = ensure_output(str(tmp_path))
    staging = new_staging(out)
    staging.rmdir()
    with pytest.raises(OutputError, match="is gone and no release was published from it"):
        finalize(staging, fake_manifest("20240101T000000Z-0000000a"), "card", out)
    assert not (out / "current").exists()
    assert _visible(out) == []


def test_a_failed_run_removes_its_staging_folder_at_once(tmp_path: Path) -> None:
    from flows.output.release import staging_folder

    out = ensure_output(str(tmp_path))
    with pytest.raises(RuntimeError), output_lock(out), staging_folder(out) as staging:
        write_parts(str(staging), 0, [("documents", documents_table([_row()]))])
        raise RuntimeError("a shard failed")
    assert list((out / RELEASES).iterdir()) == []
    # Without staging_folder, the lock clears it on the way out of a failed run.
    with pytest.raises(RuntimeError), output_lock(out):
        new_staging(out)
        raise RuntimeError("failed")
    assert list((out / RELEASES).iterdir()) == []


def test_a_failure_after_finalize_removes_nothing_published(tmp_path: Path) -> None:
    from flows.output.release import finalize, staging_folder

    out = ensure_output(str(tmp_path))
    with pytest.raises(RuntimeError), output_lock(out), staging_folder(out) as staging:
        ensure_tables(staging)
        finalize(staging, fake_manifest("20240101T000000Z-0000000a"), "card", out)
        raise RuntimeError("the report failed")
    assert _visible(out) == ["20240101T000000Z-0000000a"]
    assert list((out / RELEASES).glob(".*")) == []  # nor its bookkeeping left behind
    assert (out / "current" / "manifest.json").is_file()


def test_prune_touches_only_releases_this_tool_wrote(tmp_path: Path) -> None:
    out = ensure_output(str(tmp_path))
    ours = [f"2024010{d}T000000Z-0000000a" for d in (1, 2, 3)]
    for name in ours:
        _fake_release(out, name, files=1)
    os.symlink(f"{RELEASES}/{ours[-1]}", out / "current")
    foreign = {
        "v1": None,  # a user's folder
        "19990101T000000Z-deadbeef": None,  # a release's name, no manifest
        "19990102T000000Z-deadbeef": "{}",  # a manifest that is not one
        "19990103T000000Z-deadbeef": fake_manifest(ours[0]).model_dump_json(),  # another id
        "20240101T000000Z-a": fake_manifest("20240101T000000Z-a").model_dump_json(),  # bad id
        ".deleting-notes": None,  # hidden, not a name prune gives
    }
    for name, manifest in foreign.items():
        (out / RELEASES / name).mkdir()
        (out / RELEASES / name / "keep.txt").write_text("mine")
        if manifest is not None:
            (out / RELEASES / name / "manifest.json").write_text(manifest)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    _fake_release(elsewhere, "19990104T000000Z-deadbeef")
    os.symlink(
        elsewhere / RELEASES / "19990104T000000Z-deadbeef",
        out / RELEASES / "19990104T000000Z-deadbeef",
    )
    assert prune(out, keep=1) == ours[:2]
    for name in foreign:
        assert (out / RELEASES / name / "keep.txt").read_text() == "mine", name
    assert (elsewhere / RELEASES / "19990104T000000Z-deadbeef" / "manifest.json").is_file()


def test_prune_that_cannot_delete_logs_and_leaves_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = ensure_output(str(tmp_path))
    names = [f"2024010{d}T000000Z-0000000a" for d in (1, 2, 3)]
    for name in names:
        _fake_release(out, name)
    os.symlink(f"{RELEASES}/{names[-1]}", out / "current")
    real_rename, real_unlink = os.rename, os.unlink

    def rename(source: object, target: object, *args: object, **kwargs: object) -> None:
        if str(source).endswith(names[0]):
            raise PermissionError(1, "Operation not permitted", str(source))
        real_rename(source, target, *args, **kwargs)  # type: ignore[arg-type]

    def unlink(path: object, *args: object, **kwargs: object) -> None:
        if "part-00001" in str(path):
            raise PermissionError(1, "Operation not permitted", str(path))
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "unlink", unlink)
    assert prune(out, keep=1) == [names[1]]
    assert f"could not prune release {names[0]} (left in place)" in caplog.text
    assert f"could not finish deleting .deleting-{names[1]}" in caplog.text
    assert _visible(out) == [names[0], names[2]]
    assert (out / RELEASES / f".deleting-{names[1]}").is_dir()  # hidden, never half-visible
    assert os.readlink(out / "current") == f"{RELEASES}/{names[2]}"
    monkeypatch.undo()
    assert prune(out, keep=1) == [names[0]]  # the next run finishes both
    assert sorted(p.name for p in (out / RELEASES).iterdir()) == [names[2]]


def test_a_read_only_release_is_kept_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """chmod 555 (for a user) or chattr +i (for root too): left in place, whole and visible,
    instead of renamed and half deleted. Root ignores chmod, so access(2) stands in here;
    tests/test_hostile_release.py uses a real chattr +i."""
    out = ensure_output(str(tmp_path))
    names = [f"2024010{d}T000000Z-0000000a" for d in (1, 2)]
    for name in names:
        _fake_release(out, name)
    os.symlink(f"{RELEASES}/{names[-1]}", out / "current")
    documents = out / RELEASES / names[0] / "documents"
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != documents and real_access(path, mode)
    )
    assert prune(out, keep=1) == []
    assert f"could not prune release {names[0]} (left in place): {documents} is read-only" in (
        caplog.text
    )
    assert len(list(documents.iterdir())) == 3
    assert list((out / RELEASES).glob(".deleting-*")) == []
