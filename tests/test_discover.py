"""Discovery: globs, symbolic links, sizes, metadata.jsonl problems, duplicate ids."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from flows.errors import ConfigError, SourceError
from flows.source import reading
from flows.source.listing import Discovery, check_out_not_in_source, discover, matches
from flows.source.metadata_file import decode_metadata, parse_metadata
from flows.source.reading import read_input
from flows.stages.types import Reason, Rejection


def _run(source: Path, **kwargs: object) -> Discovery:
    include = kwargs.get("include", ["*.txt"])
    return discover(str(source), include, kwargs.get("exclude", []), kwargs.get("max_bytes", 1000))  # type: ignore[arg-type]


def _reasons(found: Discovery) -> dict[str, str]:
    return {d.source_path: d.rejection.reason.value for d in found.rejected if d.rejection}


def test_recursive_sorted_and_globbed(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "notes.md").write_text("m")
    (tmp_path / "with space é.txt").write_text("s")
    found = _run(tmp_path)
    assert [d.source_path for d in found.documents] == ["a.txt", "b/z.txt", "with space é.txt"]
    assert found.skipped == 1
    assert _run(tmp_path, include=["*.txt", "*.md"], exclude=["b/*"]).skipped == 1


def test_glob_semantics() -> None:
    assert matches("deep/dir/x.txt", ["*.txt"])
    assert matches("deep/x.txt", ["deep/*.txt"])
    assert not matches("other/x.txt", ["deep/*.txt"])


def test_symlinks_outside_the_root_are_rejected_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    source = tmp_path / "src"
    source.mkdir()
    (source / "real.txt").write_text("real")
    os.symlink(outside / "secret.txt", source / "leak.txt")
    os.symlink(outside, source / "leakdir")
    os.symlink(source / "real.txt", source / "alias.txt")
    os.symlink(source / "missing.txt", source / "broken.txt")
    found = _run(source)
    assert [d.source_path for d in found.documents] == ["alias.txt", "real.txt"]
    assert _reasons(found) == {
        "broken.txt": "unreadable",
        "leak.txt": "symlink_outside_root",
        "leakdir": "symlink_outside_root",
    }


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    found = _run(tmp_path)
    assert _reasons(found) == {"pipe.txt": "not_a_regular_file"}


def test_too_large_is_rejected_without_reading(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 2000)
    found = _run(tmp_path, max_bytes=1000)
    assert _reasons(found) == {"big.txt": "too_large"}


def test_metadata_lines(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.txt", "d.txt"):
        (tmp_path / name).write_text(name)
    lines = [
        json.dumps({"file_name": "a.txt", "id": "A"}),
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"file_name": "../escape.txt"}),
        json.dumps({"file_name": "/abs.txt"}),
        json.dumps({"file_name": "missing.txt"}),
        json.dumps({"id": "no-file-name"}),
        json.dumps({"file_name": "b.txt"}),
        json.dumps({"file_name": "./b.txt", "title": "again"}),
        json.dumps({"file_name": "c.txt", "id": "A"}),
        "",
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines), encoding="utf-8")
    found = _run(tmp_path)
    problems = {(i.line, i.problem) for i in found.metadata_issues}
    assert problems == {
        (2, "not_json"),
        (3, "not_an_object"),
        (4, "outside_root"),
        (5, "outside_root"),
        (6, "no_such_document"),
        (7, "no_file_name"),
        (9, "duplicate_file_name"),
    }
    assert _reasons(found) == {"b.txt": "duplicate_metadata", "c.txt": "duplicate_id"}
    by_path = {d.source_path: d for d in found.documents}
    assert by_path["a.txt"].doc_id == "A"
    assert by_path["a.txt"].metadata_line == 1
    assert by_path["d.txt"].metadata is None
    assert found.inputs == 4  # metadata.jsonl itself is not a document


def test_undecodable_file_name(tmp_path: Path) -> None:
    name = os.fsencode(str(tmp_path)) + b"/bad-\xff.txt"
    with open(name, "wb") as handle:
        handle.write(b"text")
    found = _run(tmp_path)
    (doc,) = found.documents
    assert doc.source_path == "bad-\\xff.txt"
    assert read_input(found.root, doc, 100) == b"text"


def test_read_input_bounds_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    found = _run(tmp_path)
    (doc,) = found.documents
    (tmp_path / "a.txt").write_text("grew past the limit")
    result = read_input(found.root, doc, 10)
    assert isinstance(result, Rejection)
    assert result.reason == Reason.TOO_LARGE
    (tmp_path / "a.txt").unlink()
    gone = read_input(found.root, doc, 10)
    assert isinstance(gone, Rejection)
    assert gone.reason == Reason.UNREADABLE


def test_bad_source_and_output_inside_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        _run(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="not a folder"):
        _run(tmp_path / "file")
    with pytest.raises(ConfigError, match="inside the source"):
        check_out_not_in_source(tmp_path.resolve(), str(tmp_path / "dist"))


# --- hostile inputs at the discovery level (cheap; the end-to-end battery is test_hostile) ---


def test_hostile_names_and_nesting(tmp_path: Path) -> None:
    names = ["with space.txt", "ümlaut-日本.txt", "new\nline.txt", "tab\tname.txt", " lead.txt"]
    for name in names:
        (tmp_path / name).write_text(name)
    deep = tmp_path / "a" / "b c" / "d\ne"
    deep.mkdir(parents=True)
    (deep / "x.txt").write_text("x")
    found = _run(tmp_path)
    paths = [d.source_path for d in found.documents]
    assert sorted(paths) == sorted([*names, "a/b c/d\ne/x.txt"])
    for doc in found.documents:
        data = read_input(found.root, doc, 1000)
        assert isinstance(data, bytes) and data  # every odd name is read back


def test_link_to_outside_fifo_is_never_opened(tmp_path: Path) -> None:
    # If discovery or reading opened the target, a FIFO with no writer would block the test.
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "trap.txt")
    os.mkfifo(outside / "trap-in-folder.txt")
    source = tmp_path / "src"
    source.mkdir()
    os.symlink(outside / "trap.txt", source / "leak.txt")
    os.symlink(outside, source / "leakdir")
    found = _run(source)
    assert _reasons(found) == {
        "leak.txt": "symlink_outside_root",
        "leakdir": "symlink_outside_root",
    }
    assert found.documents == ()


def test_sparse_too_large_file_is_not_read(tmp_path: Path) -> None:
    # 1 GiB sparse: reading it whole would take seconds and a gigabyte of memory.
    with open(tmp_path / "huge.txt", "wb") as handle:
        handle.truncate(1 << 30)
    found = _run(tmp_path, max_bytes=1 << 20)
    (doc,) = found.rejected
    assert doc.rejection is not None and doc.rejection.reason == Reason.TOO_LARGE
    assert doc.size == 1 << 30


def test_unlistable_folder_is_rejected_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root here, where chmod cannot deny a listing: inject the OS error instead.
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "hidden.txt").write_text("x")
    (tmp_path / "ok.txt").write_text("x")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = _run(tmp_path)
    assert [d.source_path for d in found.documents] == ["ok.txt"]
    assert _reasons(found) == {"locked": "unreadable"}
    (locked,) = found.rejected
    assert locked.rejection is not None and "Permission denied" in locked.rejection.detail


def test_metadata_wrong_types_and_odd_paths(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
        (tmp_path / name).write_text(name)
    lines = [
        json.dumps({"file_name": 5}),
        json.dumps({"file_name": None}),
        json.dumps({"file_name": ""}),
        json.dumps({"file_name": "a/../../etc/passwd"}),
        json.dumps({"file_name": "C:\\windows\\a.txt"}),
        json.dumps({"file_name": "a.txt", "id": 7, "authors": "not a list"}),
        json.dumps("just a string"),
        json.dumps({"file_name": ".\\b.txt", "id": "B"}),
        # JSON may spell an unpaired surrogate; UTF-8 (Parquet, the manifest) cannot hold it.
        '{"file_name": "c.txt", "extra": "bad \\ud800 surrogate"}',
        '{"file_name": "d.txt", "title": "\\udfff"}',
        '{"file_name": "e.txt", "nested": {"k": ["ok", "\\udc80"]}}',
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines), encoding="utf-8")
    found = _run(tmp_path)
    assert {(i.line, i.problem) for i in found.metadata_issues} == {
        (1, "no_file_name"),
        (2, "no_file_name"),
        (3, "outside_root"),
        (4, "outside_root"),
        (5, "outside_root"),
        (7, "not_an_object"),
    }
    by_path = {d.source_path: d for d in (*found.documents, *found.rejected)}
    assert by_path["b.txt"].doc_id == "B"  # backslashes and ./ are normalised
    assert by_path["a.txt"].metadata_line == 6  # wrong types reach the metadata stage
    assert _reasons(found) == {
        "c.txt": "metadata_invalid",
        "d.txt": "metadata_invalid",
        "e.txt": "metadata_invalid",
    }
    details = {d.source_path: d.rejection.detail for d in found.rejected if d.rejection}
    assert "line 9: extra" in details["c.txt"]
    assert "line 11: nested.k[1]" in details["e.txt"]


def test_metadata_file_is_held_to_the_same_rules(tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps({"file_name": "a.txt", "id": "stolen"}))
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    os.symlink(outside, source / "metadata.jsonl")
    found = _run(source)
    assert [(i.line, i.problem) for i in found.metadata_issues] == [(1, "symlink_outside_root")]
    assert found.documents[0].metadata is None

    (source / "metadata.jsonl").unlink()
    os.mkfifo(source / "metadata.jsonl")  # opening it for reading would block without O_NONBLOCK
    found = _run(source)
    assert [(i.line, i.problem) for i in found.metadata_issues] == [(1, "not_a_regular_file")]


def test_unreadable_metadata_stops_the_run_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "metadata.jsonl").write_text("{}")
    _fail_opens(monkeypatch, "metadata.jsonl", [errno.EACCES])
    with pytest.raises(SourceError, match=r"metadata\.jsonl cannot be read: .*Permission denied"):
        _run(tmp_path)


# --- transient IO errors: fault injection of the OS call, the reader itself is real ---


def _fail_opens(monkeypatch: pytest.MonkeyPatch, suffix: str, errnos: list[int]) -> list[str]:
    """Make os.open of paths ending in ``suffix`` fail with ``errnos`` in turn, then work."""
    real_open = os.open
    calls: list[str] = []
    pending = list(errnos)

    def flaky_open(path: str, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if os.fspath(path).endswith(suffix):
            calls.append(os.fspath(path))
            if pending:
                code = pending.pop(0)
                raise OSError(code, os.strerror(code), os.fspath(path))
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", flaky_open)
    monkeypatch.setattr(reading, "READ_RETRY_DELAYS", (0.0, 0.0))
    return calls


@pytest.mark.parametrize("code", [errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE])
def test_transient_errors_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (doc,) = _run(tmp_path).documents
    calls = _fail_opens(monkeypatch, "a.txt", [code, code])
    assert read_input(str(tmp_path.resolve()), doc, 100) == b"hello"
    assert len(calls) == 3


def test_transient_errors_give_up_after_bounded_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (doc,) = _run(tmp_path).documents
    calls = _fail_opens(monkeypatch, "a.txt", [errno.EIO] * 10)
    result = read_input(str(tmp_path.resolve()), doc, 100)
    assert isinstance(result, Rejection) and result.reason == Reason.UNREADABLE
    assert "Input/output error" in result.detail
    assert len(calls) == len(reading.READ_RETRY_DELAYS) + 1


@pytest.mark.parametrize("code", [errno.ENOENT, errno.EACCES, errno.EISDIR])
def test_permanent_errors_are_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (doc,) = _run(tmp_path).documents
    calls = _fail_opens(monkeypatch, "a.txt", [code])
    result = read_input(str(tmp_path.resolve()), doc, 100)
    assert isinstance(result, Rejection) and result.reason == Reason.UNREADABLE
    assert len(calls) == 1


def test_retry_waits_with_backoff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    delays = reading.READ_RETRY_DELAYS
    assert list(delays) == sorted(delays) and sum(delays) < 1.0  # growing, bounded
    (tmp_path / "a.txt").write_text("hello")
    _fail_opens(monkeypatch, "a.txt", [errno.EIO, errno.EIO])
    monkeypatch.setattr(reading, "READ_RETRY_DELAYS", delays)
    slept: list[float] = []
    path = str(tmp_path / "a.txt")
    assert reading.read_bounded(path, 100, sleep=slept.append) == b"hello"
    assert slept == list(delays)


def test_file_swapped_for_a_fifo_after_discovery_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    (doc,) = _run(tmp_path).documents
    (tmp_path / "a.txt").unlink()
    os.mkfifo(tmp_path / "a.txt")  # no writer: a blocking open would hang here
    result = read_input(str(tmp_path.resolve()), doc, 100)
    assert isinstance(result, Rejection) and result.reason == Reason.NOT_A_REGULAR_FILE


def test_file_swapped_for_an_escaping_link_after_discovery_is_not_read(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("inside")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the root")
    found = discover(str(source), ["*.txt"], [], 1000)
    (doc,) = found.documents
    (source / "a.txt").unlink()
    (source / "a.txt").symlink_to(secret)
    result = read_input(found.root, doc, 1000)
    assert isinstance(result, Rejection)
    assert result.reason == Reason.SYMLINK_OUTSIDE_ROOT


def test_link_inside_the_root_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("real")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    found = discover(str(tmp_path), ["*.txt"], [], 1000)
    assert [read_input(found.root, d, 1000) for d in found.documents] == [b"real", b"real"]


def test_metadata_lines_split_on_newline_only() -> None:
    text = '{"file_name": "a.txt", "title": "one\u2028two\u2029three\x85four"}\r\n\n{"file_name": "b.txt"}'
    records, issues = parse_metadata(text)
    assert issues == []
    assert [(n, r["file_name"]) for n, r in records] == [(1, "a.txt"), (3, "b.txt")]
    assert records[0][1]["title"] == "one\u2028two\u2029three\x85four"


@pytest.mark.parametrize(
    ("good", "bad", "stops"),
    [(1, 1, False), (0, 1, False), (2, 2, False), (1, 2, True), (0, 2, True), (3, 4, True)],
)
def test_metadata_mostly_not_json_stops_the_run(good: int, bad: int, stops: bool) -> None:
    lines = ['{"file_name": "a.txt"}'] * good + ["not json"] * bad + ["", "  "]
    text = "\n".join(lines)
    if stops:
        with pytest.raises(SourceError, match=rf"^metadata\.jsonl: {bad} of {good + bad} lines"):
            parse_metadata(text)
    else:
        records, issues = parse_metadata(text)
        assert (len(records), len(issues)) == (good, bad)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("é\u2028".encode("utf-8-sig"), "é\u2028"),
        ("é\u2028".encode("utf-16"), "é\u2028"),
        ("é\u2028".encode("utf-32"), "é\u2028"),
        ("é\u2028".encode(), "é\u2028"),
        ('{"a": "é"}\n'.encode("utf-16-le") * 4, '{"a": "é"}\n' * 4),
    ],
)
def test_metadata_decoding_keeps_the_raw_text(data: bytes, text: str) -> None:
    assert decode_metadata(data) == text


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf\xe9", b"\xff\xfe{", bytes(range(256)) * 8, b'{"a": "\xc3\xa9' * 40 + b"\xff"],
)
def test_undecodable_metadata_is_a_source_error(data: bytes) -> None:
    with pytest.raises(SourceError, match=r"^metadata\.jsonl"):
        decode_metadata(data)
