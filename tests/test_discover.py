"""Discovery: globs, symbolic links, sizes, metadata.jsonl problems, duplicate ids."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.discover import Discovery, check_out_not_in_source, discover, matches, read_input
from flows.errors import ConfigError, SourceError
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
