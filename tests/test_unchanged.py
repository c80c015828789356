"""An unchanged source and configuration publish no new release; any change to either does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from flows.engine.plan import prepare
from flows.engine.unchanged import source_fingerprint, unchanged_release
from flows.models import Manifest, RunParameters
from tests.conftest import SEEDS, run_release


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path, str]:
    source = tmp_path / "source"
    shutil.copytree(SEEDS, source)
    out = tmp_path / "out"
    result = run_release(source, out)
    assert result.release_id is not None
    return source, out, result.release_id


def _check(source: Path, out: Path, **changes: Any) -> Manifest | None:
    params = RunParameters(source=str(source), out=str(out), **changes)
    return unchanged_release(prepare(params))


def test_the_recorded_fingerprint_is_what_the_check_computes(
    published: tuple[Path, Path, str],
) -> None:
    source, out, release = published
    manifest = _check(source, out)
    assert manifest is not None and manifest.release_id == release
    plan = prepare(RunParameters(source=str(source), out=str(out)))
    assert source_fingerprint(plan) == manifest.source_fingerprint
    # Execution-only parameters do not make a release different.
    assert _check(source, out, shard_size=1, workers=1, keep_releases=2) is not None


def _first_text(source: Path) -> Path:
    return sorted(source.rglob("*.txt"))[0]


def _same_size_edit(source: Path) -> None:
    """One byte changed, size and modification time kept (what ``cp -p`` or ``rsync -a``
    of an edited file can look like): a stat-based check would miss it."""
    path = _first_text(source)
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[0] = ord("X") if data[0] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _metadata_edit(source: Path) -> None:
    name = _first_text(source).relative_to(source).as_posix()
    with (source / "metadata.jsonl").open("a", encoding="utf-8") as file:
        file.write(json.dumps({"file_name": name, "license": "CC0-1.0"}) + "\n")


CHANGES: dict[str, Callable[[Path], object]] = {
    "same-size edit": _same_size_edit,
    "added input": lambda source: (source / "new.txt").write_text("A new document.\n" * 20),
    "removed input": lambda source: _first_text(source).unlink(),
    "renamed input": lambda source: _first_text(source).rename(source / "renamed.txt"),
    "metadata line": _metadata_edit,
    "skipped file added": lambda source: (source / "notes.md").write_text("not a document"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_source_change_is_seen(published: tuple[Path, Path, str], change: str) -> None:
    source, out, _ = published
    if change == "metadata line" and not (source / "metadata.jsonl").exists():
        (source / "metadata.jsonl").write_text("")
    CHANGES[change](source)
    assert _check(source, out) is None


def test_configuration_and_force_make_a_new_release(published: tuple[Path, Path, str]) -> None:
    source, out, release = published
    assert _check(source, out, language_min_letters=31) is None
    assert _check(source, out, dedup="off") is None
    assert _check(source, out, force_release=True) is None
    result = run_release(source, out, force_release=True)
    assert result.release_id != release
    # The forced release records the same fingerprint: the next run is unchanged again.
    again = _check(source, out)
    assert again is not None and again.release_id == result.release_id


@pytest.mark.parametrize("folder", ["shards/documents", "documents"])
@pytest.mark.parametrize("damage", ["appended byte", "flipped byte"])
def test_a_damaged_current_release_is_published_again(
    published: tuple[Path, Path, str], damage: str, folder: str
) -> None:
    source, out, _ = published
    part = sorted((out / "current" / folder).glob("*.parquet"))[0]
    part.chmod(0o644)
    data = bytearray(part.read_bytes())
    if damage == "appended byte":
        data += b"\0"
    else:  # same size: only the hash tells
        data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    assert _check(source, out) is None
    repaired = run_release(source, out)
    if folder.startswith("shards/"):
        assert repaired.processed > 0  # the damaged shard part's rows were made again
    # Either way the new release's files hash to its manifest (a consumer file is packed
    # again from the shard parts), and the next run finds nothing to do.
    assert repaired.release is not None
    manifest = Manifest.model_validate_json((repaired.release / "manifest.json").read_bytes())
    for entry in manifest.files:
        digest = hashlib.sha256((repaired.release / entry.path).read_bytes()).hexdigest()
        assert digest == entry.sha256, entry.path
    assert _check(source, out) is not None


def test_corpus_run_says_unchanged_and_starts_no_server(
    published: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source, out, release = published
    before = sorted(p.name for p in (out / "releases").iterdir())
    # No Prefect server can be reached at this address: an attempt to start or reach one
    # would fail the run, so exit 0 shows that none was needed.
    os.environ["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    try:
        code = main(["run", "--source", str(source), "--out", str(out)])
    finally:
        del os.environ["PREFECT_API_URL"]
    assert code == 0
    assert capsys.readouterr().out.strip() == f"unchanged: current is {release}"
    assert sorted(p.name for p in (out / "releases").iterdir()) == before


def test_the_streamed_input_fingerprint_is_that_of_the_published_rows(tmp_path: Path) -> None:
    """The manifest's input_fingerprint is hashed as inputs are read (no list per input);
    computed again from the release's own rows -- every input once, with its bytes hash or
    ``size:N`` -- it is the same, on the hostile battery (unreadable files, links, FIFOs,
    duplicate ids, files too large, undecodable bytes)."""
    import pyarrow.dataset as ds

    from flows.engine.summary import input_fingerprint
    from tests.test_hostile import build_battery_source, run_parameters

    source, _, _ = build_battery_source(tmp_path / "battery")
    params = run_parameters(source, tmp_path / "out", task_runner="thread")
    from flows.engine.run import InlineRunner, execute

    result = execute(prepare(params), InlineRunner())
    assert result.release is not None and result.manifest is not None
    documents = ds.dataset(result.release / "documents").to_table().to_pylist()
    rejected = ds.dataset(result.release / "rejected").to_table().to_pylist()
    assert len(rejected) > 20
    pairs = [(row["source_path"], row["source_sha256"]) for row in documents]
    pairs += [
        (row["source_path"], row["source_sha256"] or f"size:{row['source_bytes']}")
        for row in rejected
    ]
    assert result.manifest.input_fingerprint == input_fingerprint(pairs)


def test_new_code_publishes_once(
    published: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgraded code (a new table, a fix without a PIPELINE_VERSION bump) publishes a new
    release once; its rows are reused, and the run after it is unchanged again."""
    from flows.engine import unchanged

    source, out, release = published
    monkeypatch.setattr(unchanged, "code_digest", lambda: "0" * 64)
    assert _check(source, out) is None
    result = run_release(source, out)
    assert result.release_id != release and result.processed == 0
    again = _check(source, out)
    assert again is not None and again.release_id == result.release_id


def test_a_changed_source_is_read_only_up_to_its_first_changed_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.engine import unchanged

    source = tmp_path / "source"
    source.mkdir()
    for number in range(6):
        (source / f"doc-{number}.txt").write_text(f"Document number {number} of six.\n" * 5)
    out = tmp_path / "out"
    run_release(source, out, shard_size=2)
    reads: list[int] = []
    from flows.engine.shard import read_inputs as real

    def counted(*args: Any) -> Any:
        reads.append(1)
        return real(*args)

    monkeypatch.setattr(unchanged, "read_inputs", counted)
    assert _check(source, out, shard_size=2) is not None
    assert len(reads) == 3  # unchanged: every shard read
    reads.clear()
    (source / "doc-2.txt").write_text("Changed in the second shard.\n" * 5)
    assert _check(source, out, shard_size=2) is None
    assert len(reads) == 2  # stopped at the second of three shards
    reads.clear()
    # Other shard boundaries: the per-shard digests do not apply; the whole is compared.
    assert _check(source, out, shard_size=3) is None
    assert len(reads) == 2  # both shards of 3
