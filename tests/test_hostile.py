"""A battery of hostile inputs through the real flow: each one ends as a published row or a
rejected row with a stable reason, nothing is read outside the source, nothing is written
inside it. One flow run covers the whole battery (each run costs seconds); it also serves
tests/test_determinism.py, which publishes the same inputs again in another way."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from flows.models import Manifest, RunParameters
from flows.orchestration.flow import ReleaseResult, corpus_release

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

EN = (
    "The workers at the plant voted to continue the strike after the union leadership "
    "proposed a deal that would cut wages and extend the working week for everyone. "
)
DE = "Die Beschäftigten im Werk in Köln stimmten dafür, den Streik fortzusetzen, obwohl die Gewerkschaft einen Vertrag vorschlug. "
JA = "日本の労働者は賃金の引き下げに反対してストライキを続けた。"
MARKER = "OUTSIDE-SECRET-7f3a91"  # text of files outside the root: must appear nowhere
MAX_FILE_BYTES = 4 * 1024 * 1024
ONE_LINE_CHARS = 3 * 1024 * 1024  # a single 3 MiB line, under the limit


@dataclass(frozen=True)
class Expect:
    """How one input must end: published (with an optional check of its row) or rejected."""

    kind: str
    outcome: str  # "published" or "stage/reason"
    check: Callable[[dict[str, Any]], bool] | None = None
    alternatives: tuple[str, ...] = ()  # other acceptable outcomes (known, reported issues)


def _text_is(expected: str) -> Callable[[dict[str, Any]], bool]:
    return lambda row: row["text"] == expected


def build_hostile_source(root: Path) -> tuple[Path, Path, dict[str, Expect]]:  # noqa: PLR0915
    """The source folder, a folder outside it, and the expected end of every input."""
    source, outside = root / "source", root / "outside"
    source.mkdir()
    outside.mkdir()
    expect: dict[str, Expect] = {}

    def put(name: str, data: bytes, want: Expect) -> None:
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[name] = want

    en = EN * 3
    put("empty.txt", b"", Expect("empty file", "encoding/empty"))
    put("whitespace.txt", b" \n\t\r\n  \n", Expect("whitespace only", "encoding/empty"))
    put("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, Expect("PNG", "encoding/binary"))
    put("archive.txt", b"PK\x03\x04" + bytes(range(256)) * 8, Expect("ZIP", "encoding/binary"))
    put(
        "packed.txt",
        b"\x1f\x8b\x08\x00" + bytes(range(255, -1, -1)) * 8,
        Expect("gzip", "encoding/binary"),
    )
    put(
        "nul-inside.txt",
        en.encode()[:100] + b"\x00" + en.encode()[100:],
        Expect("NUL inside text", "encoding/binary"),
    )
    mostly_good = (DE * 12).encode() + b"\xff\xfe" + DE.encode() + b"\xc3"
    put(
        "invalid-bytes-in-utf8.txt",
        mostly_good,
        Expect(
            "invalid bytes in good UTF-8",
            "published",
            lambda row: row["encoding_method"] == "utf-8-replaced" and "\ufffd" in row["text"],
        ),
    )
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        bom = {
            "utf-16-le": codecs.BOM_UTF16_LE,
            "utf-16-be": codecs.BOM_UTF16_BE,
            "utf-32-le": codecs.BOM_UTF32_LE,
            "utf-32-be": codecs.BOM_UTF32_BE,
        }[codec]
        put(
            f"{codec}-bom.txt",
            bom + en.encode(codec),
            Expect(f"{codec} with BOM", "published", _text_is(en.strip())),
        )
        put(
            f"{codec}-no-bom.txt",
            en.encode(codec),
            Expect(f"{codec} without BOM", "published", _text_is(en.strip())),
        )
    put(
        "utf-32-le-no-bom-japanese.txt",
        (JA * 6).encode("utf-32-le"),
        Expect("utf-32-le without BOM, Japanese", "published", _text_is(JA * 6)),
    )
    # chardet calls BOM-less UTF-16 CJK text binary (it has no NUL bytes); the encoding
    # stage recognises it by the scripts it decodes to.
    put(
        "utf-16-le-no-bom-japanese.txt",
        (JA * 6).encode("utf-16-le"),
        Expect("utf-16-le without BOM, Japanese", "published", _text_is(JA * 6)),
    )
    put(
        "one-line-3mib.txt",
        ("word " * (ONE_LINE_CHARS // 5)).encode(),
        Expect("a single 3 MiB line", "published", lambda row: row["text_chars"] > 3_000_000),
    )
    with open(source / "too-large.txt", "wb") as handle:  # sparse: costs no disk
        handle.truncate(64 * 1024 * 1024)
    expect["too-large.txt"] = Expect("64 MiB over the limit", "discover/too_large")
    put(
        "only-boilerplate.txt",
        b"Advertisement\nShare this article\nRead more\nLoading\n",
        Expect("only boilerplate", "boilerplate/only_boilerplate"),
    )
    put("short.txt", b"Hi", Expect("very short", "published", lambda row: row["language"] == "und"))
    put("one-char.txt", b"Q", Expect("one character", "published", _text_is("Q")))
    odd = {
        "with space.txt": "spaces",
        "ümlaut 日本 ñ.txt": "non-ASCII",
        "new\nline.txt": "newline",
        "tab\tand 'quote\".txt": "tab and quotes",
        "a/b c/d\ne/deep.txt": "nested, with space and newline in folders",
        "1/2/3/4/5/6/7/8/nested.txt": "deeply nested",
    }
    for name, kind in odd.items():
        put(name, f"{EN} ({kind})".encode(), Expect(f"file name: {kind}", "published"))
    # A file name that is not valid UTF-8: published under its \xNN spelling.
    with open(os.fsencode(source) + b"/latin1-name-\xe9.txt", "wb") as handle:
        handle.write(EN.encode())
    expect["latin1-name-\\xe9.txt"] = Expect("file name: not UTF-8", "published")

    # Links and special files. Outside targets hold the marker; the FIFOs have no writer,
    # so opening one for reading would block the run.
    (outside / "secret.txt").write_text(f"{MARKER} {EN}")
    os.mkfifo(outside / "fifo.txt")
    (outside / "folder").mkdir()
    (outside / "folder" / "inner.txt").write_text(f"{MARKER} {EN}")
    os.mkfifo(outside / "folder" / "trap.txt")
    os.symlink(outside / "secret.txt", source / "link-to-outside-file.txt")
    os.symlink(outside / "fifo.txt", source / "link-to-outside-fifo.txt")
    os.symlink(outside / "folder", source / "link-to-outside-folder")
    os.symlink("../outside/secret.txt", source / "relative-escape.txt")
    for name in (
        "link-to-outside-file.txt",
        "link-to-outside-fifo.txt",
        "link-to-outside-folder",
        "relative-escape.txt",
    ):
        expect[name] = Expect(f"symlink leaving the root: {name}", "discover/symlink_outside_root")
    os.symlink("with space.txt", source / "alias-inside.txt")
    expect["alias-inside.txt"] = Expect("symlink to a file inside", "published")
    os.symlink("does-not-exist.txt", source / "broken-link.txt")
    expect["broken-link.txt"] = Expect("broken symlink", "discover/unreadable")
    os.mkfifo(source / "pipe.txt")
    expect["pipe.txt"] = Expect("FIFO inside the root", "discover/not_a_regular_file")
    (source / "notes.md").write_text("not matched by include: skipped, counted")

    # metadata.jsonl: good, broken and malicious lines.
    for name in ("meta-ok.txt", "meta-types.txt", "meta-dup-a.txt", "meta-dup-b.txt"):
        put(name, f"{EN} {name}".encode(), Expect("", "published"))
    put(
        "meta-repeat.txt",
        EN.encode(),
        Expect("metadata repeats a file", "discover/duplicate_metadata"),
    )
    put(
        "meta-surrogate.txt",
        EN.encode(),
        Expect("metadata with a lone surrogate", "metadata/metadata_invalid"),
    )
    expect["meta-ok.txt"] = Expect(
        "valid metadata", "published", lambda row: row["id"] == "ok-1" and row["license"] == "MIT"
    )
    expect["meta-types.txt"] = Expect("metadata with wrong types", "metadata/metadata_invalid")
    expect["meta-dup-a.txt"] = Expect(
        "first holder of an id", "published", lambda row: row["id"] == "same-id"
    )
    expect["meta-dup-b.txt"] = Expect("duplicate id", "discover/duplicate_id")
    lines = [
        json.dumps({"file_name": "meta-ok.txt", "id": "ok-1", "license": "MIT"}),
        "{this is not json",
        json.dumps({"file_name": "meta-types.txt", "authors": "one string", "published": 5}),
        json.dumps({"file_name": "missing.txt", "id": "ghost"}),
        json.dumps({"file_name": "../outside/secret.txt", "id": "escape"}),
        json.dumps({"file_name": str(outside / "secret.txt"), "id": "absolute"}),
        json.dumps({"file_name": "meta-repeat.txt", "id": "r1"}),
        json.dumps({"file_name": "meta-repeat.txt", "id": "r2"}),
        json.dumps({"file_name": "meta-dup-a.txt", "id": "same-id"}),
        json.dumps({"file_name": "meta-dup-b.txt", "id": "same-id"}),
        '{"file_name": "meta-surrogate.txt", "crawl": "\\ud800"}',
        json.dumps([1, 2, 3]),
    ]
    (source / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source, outside, expect


GENERATED = 80  # plain multilingual documents beside the hostile ones: a real mix


def build_battery_source(root: Path) -> tuple[Path, Path, dict[str, Expect]]:
    """The hostile inputs plus :data:`GENERATED` generated documents under ``generated/``
    (every tenth empty), under ``root``."""
    from tests.test_crash import generate_source

    root.mkdir(parents=True, exist_ok=True)
    source, outside, expect = build_hostile_source(root)
    (root / "gen").mkdir()
    shutil.move(generate_source(root / "gen", docs=GENERATED), source / "generated")
    for path in sorted((source / "generated").rglob("*.txt")):
        name = path.relative_to(source).as_posix()
        empty = path.stat().st_size == 0
        expect[name] = Expect("generated", "encoding/empty" if empty else "published")
    return source, outside, expect


# The battery's run: threads, two workers, small shards (test_determinism.py publishes the
# same inputs with the process runner and other shards, and compares).
BATTERY_PARAMETERS: dict[str, Any] = {
    "max_file_bytes": MAX_FILE_BYTES,
    "task_runner": "thread",
    "workers": 2,
    "shard_size": 5,
    # The battery is one text in many encodings and under many names: each input's own
    # fate is checked here, so duplicates are not folded (tests/test_dedup.py does that).
    "dedup": "off",
}


def run_parameters(source: Path, out: Path, **changes: Any) -> RunParameters:
    """The battery's parameters for ``source`` and ``out``, with ``changes``."""
    values = {**BATTERY_PARAMETERS, "source": str(source), "out": str(out), **changes}
    return RunParameters.model_validate(values)


EXPECTED_METADATA_ISSUES = {
    (2, "not_json"),
    (4, "no_such_document"),
    (5, "outside_root"),
    (6, "outside_root"),
    (8, "duplicate_file_name"),
    (12, "not_an_object"),
}


def snapshot(folder: Path) -> list[tuple[str, int, int, int]]:
    """Every entry under ``folder`` (links not followed): path, mode, size, mtime."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            info = os.lstat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), folder)
            entries.append((rel, info.st_mode, info.st_size, info.st_mtime_ns))
    return sorted(entries)


def _age_atime(path: Path) -> float:
    """Set atime two days back: with relatime, any read of the file moves it to now."""
    old = time.time() - 2 * 86400
    os.utime(path, (old, old))
    return os.stat(path).st_atime


@dataclass
class Battery:
    source: Path
    outside: Path
    expect: dict[str, Expect]
    result: ReleaseResult
    documents: dict[str, dict[str, Any]]
    rejected: dict[str, dict[str, Any]]
    manifest: Manifest
    source_before: list[tuple[str, int, int, int]]
    source_after: list[tuple[str, int, int, int]]
    outside_atime_moved: bool
    atime_works: bool
    release: Path  # out/current, resolved


def run_battery(root: Path) -> Battery:
    """Build the battery under ``root``, publish it once, and record what tests look at."""
    source, outside, expect = build_battery_source(root)
    control = root / "control.txt"
    control.write_text("read me")
    control_atime = _age_atime(control)
    secret_atime = _age_atime(outside / "secret.txt")
    inner_atime = _age_atime(outside / "folder" / "inner.txt")
    before = snapshot(source)
    result = corpus_release(run_parameters(source, root / "out"))
    after = snapshot(source)
    control.read_bytes()
    current = (root / "out" / "current").resolve()
    documents = ds.dataset(current / "documents").to_table().to_pylist()
    rejected = ds.dataset(current / "rejected").to_table().to_pylist()
    return Battery(
        source=source,
        outside=outside,
        expect=expect,
        result=result,
        documents={row["source_path"]: row for row in documents},
        rejected={row["source_path"]: row for row in rejected},
        manifest=Manifest.model_validate_json((current / "manifest.json").read_text()),
        source_before=before,
        source_after=after,
        outside_atime_moved=(
            os.stat(outside / "secret.txt").st_atime != secret_atime
            or os.stat(outside / "folder" / "inner.txt").st_atime != inner_atime
        ),
        atime_works=os.stat(control).st_atime != control_atime,
        release=current,
    )


@pytest.fixture
def battery(hostile_battery: Battery) -> Battery:
    """The session's one run of the battery (tests/conftest.py)."""
    return hostile_battery


def outcome_of(battery: Battery, path: str) -> str:
    if path in battery.documents:
        return "published"
    row = battery.rejected[path]
    return f"{row['stage']}/{row['reason']}"


def test_every_input_ends_exactly_once(battery: Battery) -> None:
    published, rejected = set(battery.documents), set(battery.rejected)
    assert not published & rejected
    assert published | rejected == set(battery.expect)
    assert battery.result.inputs == len(battery.expect)
    assert battery.manifest.counts["inputs"] == len(battery.expect)
    assert battery.result.skipped == 1  # notes.md


def test_each_input_kind_ends_as_expected(battery: Battery) -> None:
    # One assertion per input kind, all reported together so one regression shows them all.
    wrong = []
    for name, want in sorted(battery.expect.items()):
        got = outcome_of(battery, name)
        if got != want.outcome and got not in want.alternatives:
            wrong.append(f"{name!r} ({want.kind}): expected {want.outcome}, got {got}")
        elif got == "published" and want.check and not want.check(battery.documents[name]):
            wrong.append(f"{name!r} ({want.kind}): published row fails its check")
    assert not wrong, "\n".join(wrong)


def test_rejections_say_why(battery: Battery) -> None:
    for path, row in battery.rejected.items():
        assert row["detail"].strip(), path
        if row["stage"] == "discover":
            assert row["source_sha256"] is None, f"{path} was read at discovery"
    assert battery.rejected["too-large.txt"]["source_bytes"] == 64 * 1024 * 1024
    assert "line 3" in battery.rejected["meta-types.txt"]["detail"]
    assert "same-id" in battery.rejected["meta-dup-b.txt"]["detail"]
    assert "crawl" in battery.rejected["meta-surrogate.txt"]["detail"]


def test_metadata_problems_are_listed_not_fatal(battery: Battery) -> None:
    issues = {(i.line, i.problem) for i in battery.manifest.metadata_issues}
    assert issues == EXPECTED_METADATA_ISSUES


def test_nothing_outside_the_root_is_read(battery: Battery) -> None:
    for row in [*battery.documents.values(), *battery.rejected.values()]:
        assert not row["source_path"].startswith("link-to-outside-folder/")
        assert MARKER not in row.get("text", "")
    if battery.atime_works:  # the control file proves reads move atime on this file system
        assert not battery.outside_atime_moved


def test_source_is_never_written(battery: Battery) -> None:
    assert battery.source_after == battery.source_before


def test_odd_names_round_trip_unchanged(battery: Battery) -> None:
    for name in (
        "new\nline.txt",
        "a/b c/d\ne/deep.txt",
        "ümlaut 日本 ñ.txt",
        "latin1-name-\\xe9.txt",
    ):
        row = battery.documents[name]
        assert row["source_path"] == name
        assert row["text"].startswith(EN.strip()[:40])
    assert (
        battery.documents["alias-inside.txt"]["text"] == battery.documents["with space.txt"]["text"]
    )
