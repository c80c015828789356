"""Crash tests for real: ``corpus run`` in a subprocess, SIGKILLed while it processes shards
and while it publishes. ``current`` must stay on a complete release whose manifest and
checksums verify, no partial release may be visible, and the next run must succeed and
clean up. The subprocesses report to the session's test Prefect server (a real server,
started once) instead of starting their own; each is its own process group, and the whole
group (CLI and its ProcessPool workers) is killed, so no test leaves a process behind.

Every kill lands at a known point, so each has one definite outcome: the processing kill is
sent as soon as the first part file exists (a dozen shards are left to process), and the
publishing kills come from inside the run (a SIGKILL of its own group at an exact step of
finalize: before the rename of the staging folder, and before the switch of ``current``).
The runs are started ahead of their turn (:func:`staged`): their imports overlap."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from flows.models import Manifest, RunParameters
from flows.orchestration.flow import corpus_release
from flows.output.release import CURRENT, RELEASES, sha256_file
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DOCS = 120
SHARD_SIZE = 10
SHARDS = DOCS // SHARD_SIZE

_TOPICS = [
    "The workers at the {n} plant voted to continue the strike for a {k} week.",
    "Rents in the city rose by {n} percent while wages stayed flat for {k} years.",
    "Die Beschäftigten im Werk {n} streiken seit {k} Wochen gegen die Lohnkürzungen.",
    "Les enseignants de l'académie {n} ont manifesté pendant {k} jours contre la réforme.",
]


def generate_source(root: Path, docs: int = DOCS) -> Path:
    """``docs`` inputs; every tenth is empty, so every shard writes both tables."""
    source = root / "source"
    source.mkdir()
    for i in range(docs):
        folder = source / f"batch-{i % 7}"
        folder.mkdir(exist_ok=True)
        if i % 10 == 0:
            (folder / f"doc-{i:04d}.txt").write_bytes(b"")
            continue
        sentence = _TOPICS[i % len(_TOPICS)]
        body = " ".join(sentence.format(n=i + j, k=j + 2) for j in range(12))
        (folder / f"doc-{i:04d}.txt").write_text(f"Report {i}\n\n{body}\n\nShare\n")
    return source


def verify_release(release: Path) -> Manifest:
    """A complete release: its manifest lists exactly its Parquet files, rows and checksums."""
    manifest = Manifest.model_validate_json((release / "manifest.json").read_text())
    assert manifest.release_id == release.name
    listed = {entry.path for entry in manifest.files}
    present = {p.relative_to(release).as_posix() for p in release.rglob("*.parquet")}
    assert listed == present, f"{release.name}: manifest and files differ"
    for entry in manifest.files:
        path = release / entry.path
        assert sha256_file(path) == entry.sha256, f"{entry.path} checksum"
        assert pq.ParquetFile(path).metadata.num_rows == entry.rows
    assert (release / "README.md").is_file()
    return manifest


def current_release(out: Path) -> Path:
    link = out / CURRENT
    assert link.is_symlink(), "current must be a symbolic link"
    target = os.readlink(link)
    assert target.startswith(f"{RELEASES}/") and "/" not in target[len(RELEASES) + 1 :]
    return out / target


def assert_consistent(out: Path) -> Path:
    """What any reader of OUT may rely on at any moment, even right after a SIGKILL."""
    release = current_release(out)
    verify_release(release)
    for entry in (out / RELEASES).iterdir():
        if entry.name.startswith("."):
            assert entry.name.startswith((".staging-", ".deleting-", ".probe-")), entry.name
        else:
            verify_release(entry)  # a visible release is always complete
    return release


def documents_of(release: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = ds.dataset(release / "documents").to_table().to_pylist()
    return rows


def api_env() -> dict[str, str]:
    """The environment of a ``corpus run`` subprocess: report to the test server."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "the prefect_harness fixture sets the API URL"
    env = dict(os.environ)
    env["PREFECT_API_URL"] = url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def corpus_command(source: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "--source",
        str(source),
        "--out",
        str(out),
        "--shard-size",
        str(SHARD_SIZE),
        "--workers",
        "2",
        *extra,
    ]


def _group_alive(pgid: int) -> list[int]:
    """Processes of a group that still run (zombies awaiting a reaper do not count)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            alive.append(int(entry))
    return alive


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def assert_group_gone(pgid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_alive(pgid) == [], f"processes of group {pgid} survived"


@contextlib.contextmanager
def corpus_run(command: list[str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``corpus run`` as its own process group; whatever happens, none of it survives."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "stdout").open("wb") as stdout, (logs / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=api_env(),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own group: killpg reaches the pool workers too
        )
        try:
            yield proc
        finally:
            kill_group(proc)
            proc.wait(timeout=30)
            assert_group_gone(proc.pid)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll every 5 ms until ``condition`` holds; False if the run ended first. (Polling
    faster takes CPU from the run it waits for.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.005)
    raise AssertionError(f"condition not reached within {timeout} s")


def staging_dirs(out: Path) -> list[Path]:
    # Folders only: ``.staging-<uuid>.published`` is the marker finalize writes beside one.
    return [path for path in (out / RELEASES).glob(".staging-*") if path.is_dir()]


def part_files(out: Path) -> int:
    """Part files of the two tables written so far (one per table and shard)."""
    return sum(
        len(list((s / table).glob("*.parquet")))
        for s in staging_dirs(out)
        for table in ("documents", "rejected")
    )


def visible_releases(out: Path) -> set[str]:
    return {p.name for p in (out / RELEASES).iterdir() if not p.name.startswith(".")}


# ``corpus run`` (argv[3:]) started ahead of its turn: it imports what ``corpus run``
# imports, then waits for the file argv[1] to exist, so that its start-up overlaps the test's
# other work. argv[2] is "-", or a step of finalize at which it SIGKILLs its own process
# group: "rename" (the staging folder's rename into releases/) or "switch" (the replace of
# ``current``).
_STAGED = """
import logging, os, signal, sys, time

go, point, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
real_rename, real_replace = os.rename, os.replace

def die():
    os.killpg(os.getpgrp(), signal.SIGKILL)

def rename(src, dst, *args, **kwargs):
    name, target = os.path.basename(os.fspath(src)), os.path.basename(os.fspath(dst))
    if point == "rename" and name.startswith(".staging-") and not target.startswith("."):
        die()
    return real_rename(src, dst, *args, **kwargs)

def replace(src, dst, *args, **kwargs):
    if point == "switch" and os.path.basename(os.fspath(dst)) == "current":
        die()
    return real_replace(src, dst, *args, **kwargs)

if point != "-":
    os.rename, os.replace = rename, replace
from flows.cli import main

# What main() does first, then what `corpus run` imports; then wait for the turn.
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
import flows.orchestration.flow
while not os.path.exists(go):
    time.sleep(0.002)
sys.exit(main(argv))
"""


def staged(command: list[str], go: Path, kill_at: str = "-") -> list[str]:
    """``command`` (a :func:`corpus_command`) started now, run once ``go`` exists."""
    assert command[1:3] == ["-m", "flows.cli"]
    return [sys.executable, "-c", _STAGED, str(go), kill_at, *command[3:]]


@dataclass
class Killed:
    """The output folder right after a killed run."""

    previous: Path  # current before the run
    current: Path  # current after it
    new_releases: set[str]  # visible releases the run added
    new_staging: list[Path]  # staging folders it left
    current_links: list[Path]  # temporary links to be renamed onto current


def run_killed(proc: subprocess.Popen[bytes], go: Path, out: Path, logs: Path) -> Killed:
    """Let a staged run that kills itself go; what any reader may rely on must still hold."""
    previous = current_release(out)
    releases, staging = visible_releases(out), set(staging_dirs(out))
    go.touch()
    code = proc.wait(timeout=300)
    stderr = (logs / "stderr").read_text()[-3000:]
    assert code == -signal.SIGKILL, f"the kill point was never reached (exit {code}): {stderr}"
    return Killed(
        previous=previous,
        current=assert_consistent(out),
        new_releases=visible_releases(out) - releases,
        new_staging=sorted(set(staging_dirs(out)) - staging),
        current_links=sorted(out.glob(".current-*")),
    )


def test_sigkill_during_processing_and_publishing_never_breaks_current(tmp_path: Path) -> None:
    source = generate_source(tmp_path)
    out = tmp_path / "out"
    # The process runner once (its pool workers must die with the run). Another language
    # seed changes the configuration: with the baseline's, every shard is unchanged and
    # copied in a blink, and there would be no processing to kill. The publishing kills and
    # the final run use the baseline's configuration: shards are copied, finalize comes fast.
    # One pool worker is enough to show that the group's kill reaches it.
    process_run = corpus_command(source, out, "--language-seed", "1", "--workers", "1")
    # The same configuration as the baseline: published again only when forced.
    thread_run = corpus_command(source, out, "--task-runner", "thread", "--force-release")
    go = {name: tmp_path / f"go-{name}" for name in ("k1", "k2", "k3", "final")}
    with contextlib.ExitStack() as runs:
        # All four start now and import while the baseline runs; each runs on its "go".
        k1 = runs.enter_context(corpus_run(staged(process_run, go["k1"]), tmp_path / "k1"))
        k2 = runs.enter_context(corpus_run(staged(thread_run, go["k2"], "rename"), tmp_path / "k2"))
        k3 = runs.enter_context(corpus_run(staged(thread_run, go["k3"], "switch"), tmp_path / "k3"))
        final = runs.enter_context(corpus_run(staged(thread_run, go["final"]), tmp_path / "final"))

        baseline = corpus_release(
            RunParameters(
                source=str(source), out=str(out), task_runner="thread", shard_size=SHARD_SIZE
            )
        )
        baseline_rows = documents_of(Path(baseline.path))
        assert len(baseline_rows) == DOCS - DOCS // 10

        # 1. Processing: killed from outside as soon as the first part file exists, with
        # 11 of 12 shards still to process.
        go["k1"].touch()
        assert wait_for(lambda: part_files(out) >= 1, k1, timeout=300), "run ended first"
        kill_group(k1)
        assert k1.wait(timeout=30) == -signal.SIGKILL
        assert_group_gone(k1.pid)
        assert current_release(out) == Path(baseline.path)
        assert assert_consistent(out) == Path(baseline.path)
        assert visible_releases(out) == {baseline.release_id}
        (processing_staging,) = staging_dirs(out)
        assert not (processing_staging / "manifest.json").exists()
        assert part_files(out) < 2 * SHARDS

        # 2. Manifest and card written, staging folder not yet renamed: nothing visible
        # changed.
        before_rename = run_killed(k2, go["k2"], out, tmp_path / "k2")
        assert before_rename.current == before_rename.previous == Path(baseline.path)
        assert before_rename.new_releases == set()
        (staging,) = before_rename.new_staging
        assert (staging / "manifest.json").is_file() and (staging / "README.md").is_file()
        assert before_rename.current_links == []

        # 3. Release renamed into place (complete, verified by run_killed), current not
        # switched.
        before_switch = run_killed(k3, go["k3"], out, tmp_path / "k3")
        assert before_switch.current == before_switch.previous == Path(baseline.path)
        (renamed,) = before_switch.new_releases
        assert before_switch.new_staging == []
        (link,) = before_switch.current_links
        assert os.readlink(link) == f"{RELEASES}/{renamed}"
        assert documents_of(out / RELEASES / renamed) == baseline_rows

        # The next run succeeds, removes what the killed runs left, and publishes the same
        # rows.
        go["final"].touch()
        assert final.wait(timeout=300) == 0, (tmp_path / "final" / "stderr").read_text()[-3000:]
    final_release = assert_consistent(out)
    assert final_release not in (Path(baseline.path), out / RELEASES / renamed)
    assert staging_dirs(out) == []
    assert not list(out.glob(".current-*"))
    assert documents_of(final_release) == baseline_rows
