"""Hostile file names, metadata.jsonl files and metadata values, met the way a user meets them.

Most tests run ``corpus validate --json`` in a subprocess (no Prefect server; it shows every
rejection and metadata issue). What only a publish shows (source_path, ids, cleaned titles,
a changed file picked up by the next run) comes from two ``corpus run``s, marked slow.
"""

from __future__ import annotations

import codecs
import datetime as dt
import itertools
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.source.listing import discover, display_path, fs_path_bytes
from flows.stages.metadata import ValidMetadata, validate_metadata
from flows.stages.types import Rejection

CORPUS = Path(sys.executable).with_name("corpus")
EN = (
    "The workers at the plant voted to continue the strike after the union leadership "
    "proposed a deal that would cut wages and extend the working week for everyone.\n"
)
# A raw byte that is not UTF-8, and a name that spells its escaped form literally.
RAW_BYTE_NAME = b"caf\xe9.txt"
LITERAL_NAME = b"caf\\xe9.txt"


def _cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    return subprocess.run(
        [str(CORPUS), *args], capture_output=True, text=True, timeout=600, check=False, env=env
    )


def _validate(source: Path) -> tuple[int, dict[str, Any] | None, str]:
    # Duplicates are not what these tests are about: several inputs share one text.
    result = _cli("validate", "--source", str(source), "--json", "--dedup", "off")
    report = json.loads(result.stdout) if result.stdout.strip() else None
    # The one line ends with where the details are logged; the message is what is checked.
    return result.returncode, report, re.sub(r" \(details: [^)]*\)\n$", "\n", result.stderr)


def _write_bytes_name(folder: Path, name: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as handle:
        handle.write(data)


def _rejections(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {r["source_path"]: (r["reason"], r["detail"]) for r in report["rejected"]}


# --- 5: file names that displayed alike -------------------------------------------------


def test_backslash_and_raw_byte_names_are_told_apart(tmp_path: Path) -> None:
    # Both empty: rejected, so `corpus validate` lists each under its displayed path.
    _write_bytes_name(tmp_path, RAW_BYTE_NAME, b"")
    _write_bytes_name(tmp_path, LITERAL_NAME, b"")
    code, report, err = _validate(tmp_path)
    assert code == 1 and report is not None, err
    paths = sorted(r["source_path"] for r in report["rejected"])
    assert paths == ["caf\\\\xe9.txt", "caf\\xe9.txt"]


def test_backslash_and_raw_byte_names_get_distinct_ids(tmp_path: Path) -> None:
    _write_bytes_name(tmp_path, RAW_BYTE_NAME, EN.encode())
    _write_bytes_name(tmp_path, LITERAL_NAME, EN.encode())
    found = discover(str(tmp_path), ["*.txt"], [], 10_000)
    assert not found.rejected
    assert len({d.source_path for d in found.documents}) == 2
    assert len({d.doc_id for d in found.documents}) == 2
    for doc in found.documents:
        assert fs_path_bytes(doc.source_path) == os.fsencode(doc.fs_relative or "")


@given(st.binary(min_size=1, max_size=40))
def test_display_path_is_reversible(name: bytes) -> None:
    shown = display_path(os.fsdecode(name))
    shown.encode("utf-8")  # valid Unicode: Parquet and the manifest can store it
    assert fs_path_bytes(shown) == name


def test_display_path_is_injective_over_every_short_tricky_name() -> None:
    # Every name of up to 4 pieces of an escape: where near-collisions live.
    pieces = [b"\\", b"x", b"e", b"9", b"\xe9", b"\xc3", b"\xa9", b"a"]
    names = {b"".join(combo) for n in range(1, 5) for combo in itertools.product(pieces, repeat=n)}
    shown = {display_path(os.fsdecode(name)) for name in names}
    assert len(shown) == len(names)


@pytest.mark.parametrize("bad", ["a\\b", "a\\x4", "a\\xZZ", "trailing\\", "\ud800"])
def test_a_string_no_file_name_displays_as_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        fs_path_bytes(bad)


# --- 6: metadata.jsonl lines silently lost ----------------------------------------------


def _shared_id_source(folder: Path, metadata: bytes) -> Path:
    """a.txt and b.txt, both given id "shared": if the metadata is read, b.txt is a duplicate."""
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text(EN)
    (folder / "b.txt").write_text(EN)
    (folder / "metadata.jsonl").write_bytes(metadata)
    return folder


def _shared_id_lines(title: str) -> str:
    lines = [
        {"file_name": "a.txt", "id": "shared", "title": title},
        {"file_name": "b.txt", "id": "shared"},
    ]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _assert_both_records_read(code: int, report: dict[str, Any] | None, err: str) -> None:
    assert report is not None, err
    assert report["metadata_issues"] == []
    assert _rejections(report) == {"b.txt": ("duplicate_id", "id 'shared' already used by 'a.txt'")}
    assert code == 1


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separator_inside_a_json_string_keeps_the_record(
    tmp_path: Path, separator: str
) -> None:
    text = _shared_id_lines(f"first{separator}second")
    assert separator in text  # raw, as json.dumps(ensure_ascii=False) writes it
    _assert_both_records_read(*_validate(_shared_id_source(tmp_path, text.encode())))


def test_crlf_line_endings_still_work(tmp_path: Path) -> None:
    text = _shared_id_lines("title").replace("\n", "\r\n")
    _assert_both_records_read(*_validate(_shared_id_source(tmp_path, text.encode())))


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", b""),  # no BOM: found by the encoding stage's detection
        ("utf-16-be", b""),
    ],
)
def test_metadata_in_any_unicode_encoding_is_read(tmp_path: Path, codec: str, bom: bytes) -> None:
    data = bom + _shared_id_lines("Café crème — “quoted”").encode(codec)
    _assert_both_records_read(*_validate(_shared_id_source(tmp_path, data)))


def test_legacy_single_byte_metadata_is_read(tmp_path: Path) -> None:
    data = _shared_id_lines("Café crème brûlée à la carte, façade, naïve").encode("cp1252")
    _assert_both_records_read(*_validate(_shared_id_source(tmp_path, data)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            codecs.BOM_UTF8 + _shared_id_lines("Caf\xe9").encode("cp1252"),
            "corpus: metadata.jsonl: starts with a utf-8 byte-order mark but the bytes at "
            "offset 55 are not utf-8; save it as UTF-8\n",
        ),
        (
            codecs.BOM_UTF16_LE + b"{\x00}",  # odd length: not UTF-16
            "corpus: metadata.jsonl: starts with a utf-16-le byte-order mark but the bytes at "
            "offset 4 are not utf-16-le; save it as UTF-8\n",
        ),
        (
            bytes(range(256)) * 8,
            "corpus: metadata.jsonl cannot be decoded (not text (looks like "
            "application/octet-stream)); save it as UTF-8\n",
        ),
    ],
)
def test_undecodable_metadata_stops_the_run_with_one_line(
    tmp_path: Path, data: bytes, message: str
) -> None:
    code, report, err = _validate(_shared_id_source(tmp_path, data))
    assert (code, report, err) == (2, None, message)


def test_metadata_that_is_mostly_not_json_stops_the_run(tmp_path: Path) -> None:
    csv = "file_name,id,title\n" + "".join(f"d{n}.txt,id-{n},Title {n}\n" for n in range(11))
    code, report, err = _validate(_shared_id_source(tmp_path, csv.encode()))
    assert (code, report) == (2, None)
    assert err == (
        "corpus: metadata.jsonl: 12 of 12 lines are not JSON objects (first: line 1: "
        "Expecting value: line 1 column 1 (char 0)); fix the file or remove it\n"
    )


def test_a_minority_of_bad_lines_is_listed_not_fatal(tmp_path: Path) -> None:
    # 1 bad line of 3 (a truncated last line): under the threshold, the run goes on.
    text = _shared_id_lines("title") + '{"file_name": "c.txt", "id": "tr'
    code, report, err = _validate(_shared_id_source(tmp_path, text.encode()))
    assert code == 1 and report is not None, err
    assert [i["problem"] for i in report["metadata_issues"]] == ["not_json"]
    assert _rejections(report)["b.txt"][0] == "duplicate_id"


# --- 10: metadata values that break consumers --------------------------------------------

HOSTILE_IDS = {
    "traversal.txt": "../../etc/passwd",
    "slash.txt": "a/b",
    "backslash.txt": "a\\b",
    "dot.txt": ".hidden",
    "dotdot.txt": "..",
    "zero-width.txt": "doc\u200b1",
    "word-joiner.txt": "doc\u20601",
    "bom.txt": "\ufeffdoc",
    "bidi-override.txt": "doc\u202etxt.exe",
    "bidi-isolate.txt": "doc\u2066x",
    "rlm.txt": "doc\u200fx",
    "arabic-mark.txt": "doc\u061cx",
    "nbsp.txt": "doc\u00a0x",
    "line-sep.txt": "doc\u2028x",
    "nul.txt": "doc\x00x",
    "c1.txt": "doc\x85x",
    "nfd.txt": unicodedata.normalize("NFD", "café"),
}
HOSTILE_DATES = {
    "year-one.txt": "0001-01-01T00:00:00+01:00",
    "year-9999.txt": "9999-12-31T23:59:59-01:00",
}


def test_hostile_ids_and_dates_are_metadata_invalid(tmp_path: Path) -> None:
    lines = []
    for name, value in HOSTILE_IDS.items():
        (tmp_path / name).write_text(EN)
        lines.append({"file_name": name, "id": value})
    for name, value in HOSTILE_DATES.items():
        (tmp_path / name).write_text(EN)
        lines.append({"file_name": name, "published": value})
    (tmp_path / "metadata.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8"
    )
    code, report, err = _validate(tmp_path)
    assert code == 1 and report is not None, err
    assert report["metadata_issues"] == []
    found = _rejections(report)
    assert set(found) == set(HOSTILE_IDS) | set(HOSTILE_DATES)
    for name in HOSTILE_IDS:
        reason, detail = found[name]
        assert reason == "metadata_invalid", (name, found[name])
        assert ": id: " in detail, (name, detail)
    for name in HOSTILE_DATES:
        reason, detail = found[name]
        assert reason == "metadata_invalid", (name, found[name])
        assert "published: Value error, out of range once converted to UTC" in detail


def test_nfc_and_nfkc_twin_ids_do_not_both_publish(tmp_path: Path) -> None:
    nfc, nfd = "café-1", unicodedata.normalize("NFD", "café-1")
    lines = [
        # a.txt comes first in path order with the NFD spelling: invalid, so it must not
        # take the id from b.txt, whose NFC spelling is valid.
        {"file_name": "a.txt", "id": nfd},
        {"file_name": "b.txt", "id": nfc},
        {"file_name": "c.txt", "id": "ｄｏｃ１"},
        {"file_name": "d.txt", "id": "doc1"},
        {"file_name": "e.txt", "id": "Doc1"},  # case differs: a different id
    ]
    for line in lines:
        (tmp_path / line["file_name"]).write_text(EN)
    (tmp_path / "metadata.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )
    code, report, err = _validate(tmp_path)
    assert code == 1 and report is not None, err
    found = _rejections(report)
    assert set(found) == {"a.txt", "d.txt"}
    assert found["a.txt"][0] == "metadata_invalid" and "NFC" in found["a.txt"][1]
    assert found["d.txt"] == (
        "duplicate_id",
        "id 'doc1' already used by 'c.txt' as 'ｄｏｃ１' (equal after NFKC)",
    )
    assert report["would_publish"] == 3


HOSTILE_TEXT = {
    "nul": ("Strike\x00 vote", "Strike vote"),
    "escape sequence": ("\x1b[31mStrike\x1b[0m vote", "Strike vote"),
    "osc title": ("\x1b]0;pwned\x07Strike vote", "Strike vote"),
    "bell": ("Strike\x07 vote", "Strike vote"),
    "bidi override": ("Strike \u202evote\u202c", "Strike vote"),
    "bidi isolate": ("\u2067Strike vote\u2069", "Strike vote"),
    "marks": ("Strike\u200e vote\u200f\u061c", "Strike vote"),
    "bom": ("\ufeffStrike vote", "Strike vote"),
    "line breaks": ("Strike\nvote\r\n\u2028again", "Strike vote again"),
    "nfd": (unicodedata.normalize("NFD", "Grève générale"), "Grève générale"),
    "c1 control": ("Strike\x9b31m vote", "Strike31m vote"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TEXT))
@pytest.mark.parametrize("field", ["title", "source", "license", "authors"])
def test_free_text_fields_are_cleaned(case: str, field: str) -> None:
    raw, clean = HOSTILE_TEXT[case]
    value: Any = [raw, "Ann"] if field == "authors" else raw
    result = validate_metadata({"file_name": "a.txt", field: value}, 1)
    assert isinstance(result, ValidMetadata), result
    got = getattr(result.model, field)
    assert (got[0] if field == "authors" else got) == clean


@pytest.mark.parametrize("raw", ["\x00", "\x1b[0m", "\u202e\u202c", " \x07 "])
def test_free_text_that_is_only_controls_is_invalid(raw: str) -> None:
    result = validate_metadata({"file_name": "a.txt", "title": raw}, 4)
    assert isinstance(result, Rejection)
    assert result.detail.startswith("metadata.jsonl line 4: title: ")


def test_unknown_fields_hold_no_raw_controls_and_round_trip() -> None:
    extra = {"note": "a\u202eb\x85c\u2028d\x00e\x7f", "list": ["\u2066x"]}
    result = validate_metadata({"file_name": "a.txt", **extra}, 1)
    assert isinstance(result, ValidMetadata) and result.extra_json is not None
    assert not re.search(
        "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", result.extra_json
    )
    assert json.loads(result.extra_json) == extra


# --- one publish: what only a release shows ----------------------------------------------


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """Two `corpus run`s; between them the file named with a literal backslash changes."""
    root = tmp_path_factory.mktemp("hostile-input")
    source, out = root / "source", root / "out"
    source.mkdir()
    _write_bytes_name(source, RAW_BYTE_NAME, ("raw byte. " + EN).encode())
    _write_bytes_name(source, LITERAL_NAME, ("literal backslash. " + EN).encode())
    (source / "titled.txt").write_text(EN)
    record = {
        "file_name": "titled.txt",
        "title": "\x1b[1mStrike\x1b[0m\x00 vote\x07 \u202eetov\u202c",
        "authors": ["Ann\u2066 Lee\u2069"],
        "source": "wsws\x9b.org",
        "license": "CC-BY-4.0\r\n",
        "published": "2024-05-01T23:30:00-01:00",
        "tracking": "x\u202ey",
    }
    (source / "metadata.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    tables = []
    for run in range(2):
        if run == 1:
            _write_bytes_name(source, LITERAL_NAME, ("changed. " + EN).encode())
        # --dedup off: the three texts differ by a prefix only, near duplicates of one another.
        result = _cli(
            "run", "--source", str(source), "--out", str(out), "--dedup", "off", home=root / "home"
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        tables.append(ds.dataset(out / "current" / "documents").to_table().to_pylist())
    yield tables[0], tables[1]


@pytest.mark.slow
def test_published_paths_and_ids_are_distinct_and_changes_are_seen(
    two_releases: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    first, second = two_releases
    by_path = {row["source_path"]: row for row in first}
    assert set(by_path) == {"caf\\xe9.txt", "caf\\\\xe9.txt", "titled.txt"}
    assert len({row["id"] for row in first}) == 3
    assert by_path["caf\\xe9.txt"]["text"].startswith("raw byte.")
    assert by_path["caf\\\\xe9.txt"]["text"].startswith("literal backslash.")
    assert fs_path_bytes("caf\\\\xe9.txt") == LITERAL_NAME
    assert fs_path_bytes("caf\\xe9.txt") == RAW_BYTE_NAME
    changed = {row["source_path"]: row["text"] for row in second}
    assert changed["caf\\\\xe9.txt"].startswith("changed.")
    assert changed["caf\\xe9.txt"].startswith("raw byte.")


@pytest.mark.slow
def test_published_metadata_strings_are_clean(
    two_releases: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    row = next(r for r in two_releases[0] if r["source_path"] == "titled.txt")
    assert row["title"] == "Strike vote etov"
    assert row["authors"] == ["Ann Lee"]
    assert row["source"] == "wsws.org"
    assert row["license"] == "CC-BY-4.0"
    assert row["published"] == dt.datetime(2024, 5, 2, 0, 30, tzinfo=dt.UTC)
    assert row["metadata_extra"] == '{"tracking": "x\\u202ey"}'
