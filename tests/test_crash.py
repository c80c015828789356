"""Crash tests for real: ``corpus run`` in a subprocess, SIGKILLed while it processes shards
and while it publishes. ``current`` must stay on a complete release whose manifest and
checksums verify, no partial release may be visible, and the next run must succeed and
clean up. The subprocesses report to the session's test Prefect server (a real server,
started once) instead of starting their own; each is its own process group, and the whole
group (CLI and its ProcessPool workers) is killed, so no test leaves a process behind."""

from __future__ import annotations

import contextlib
import json
import os
import random
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

DOCS = 300
SHARD_SIZE = 25
SHARDS = DOCS // SHARD_SIZE
# CORPUS_CRASH_SEED replays a failing run's kill points; otherwise they are random.
SEED = int(os.environ.get("CORPUS_CRASH_SEED", str(time.time_ns() % 1_000_000)))

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
    """Poll every millisecond until ``condition`` holds; False if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.001)
    raise AssertionError(f"condition not reached within {timeout} s")


def staging_dirs(out: Path) -> list[Path]:
    return list((out / RELEASES).glob(".staging-*"))


def part_files(out: Path) -> int:
    """Part files of the two tables written so far (one per table and shard)."""
    return sum(
        len(list((s / table).glob("*.parquet")))
        for s in staging_dirs(out)
        for table in ("documents", "rejected")
    )


def visible_releases(out: Path) -> set[str]:
    return {p.name for p in (out / RELEASES).iterdir() if not p.name.startswith(".")}


@dataclass
class Kill:
    phase: str
    delay: float
    landed: str  # where the kill landed, read off the output folder afterwards


def _landed(out: Path, before: set[str], previous: Path) -> str:
    if current_release(out) != previous:
        return "after the switch of current"
    if visible_releases(out) - before:
        return "after the rename, before the switch"
    if any((s / "manifest.json").exists() for s in staging_dirs(out)):
        return "while finalizing the staging folder"
    return "before finalize"


def kill_once(
    command: list[str],
    out: Path,
    logs: Path,
    phase: str,
    trigger: Callable[[], bool],
    delay: float,
) -> Kill:
    previous = current_release(out)
    before = visible_releases(out)
    with corpus_run(command, logs) as proc:
        reached = wait_for(trigger, proc, timeout=300)
        if reached and delay:
            time.sleep(delay)
        finished = proc.poll() is not None
        kill_group(proc)
        proc.wait(timeout=30)
    if finished:  # the run outran the kill: still a valid outcome, but say so
        landed = f"run had finished (exit {proc.returncode})"
    else:
        assert proc.returncode == -signal.SIGKILL
        landed = _landed(out, before, previous)
    now = assert_consistent(out)
    if landed != "after the switch of current" and not landed.startswith("run had"):
        assert now == previous, landed  # killed before the switch: the previous release
    return Kill(phase, delay, landed)


def test_sigkill_during_processing_and_publishing_never_breaks_current(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    source = generate_source(tmp_path)
    out = tmp_path / "out"
    baseline = corpus_release(
        RunParameters(source=str(source), out=str(out), task_runner="thread", shard_size=SHARD_SIZE)
    )
    baseline_rows = documents_of(Path(baseline.path))
    assert len(baseline_rows) == DOCS - DOCS // 10

    def processing_started() -> bool:
        return part_files(out) >= 1

    def finalizing() -> bool:
        return any((s / "manifest.json").exists() for s in staging_dirs(out)) or bool(
            visible_releases(out) - {baseline.release_id}
        )

    # The process runner once, to prove its pool workers die with the run; then threads,
    # because each spawned worker costs seconds of imports and the kill points are the same.
    # Another language seed changes the configuration: with the baseline's, every shard is
    # unchanged and copied in a blink, and there would be no processing to kill.
    process_run = corpus_command(source, out, "--language-seed", "1")
    thread_run = corpus_command(source, out, "--task-runner", "thread")
    # A kill before finalize leaves a staging folder without a manifest wherever it lands
    # (in a shard, in the checksums of publish): one kill stands for that whole window. The
    # second lands in finalize: manifest written, release renamed, current switched.
    kills = [
        kill_once(
            process_run, out, tmp_path / "k1", "processing", processing_started, rng.uniform(0, 0.3)
        ),
        kill_once(
            thread_run, out, tmp_path / "k2", "publishing", finalizing, rng.uniform(0, 0.005)
        ),
    ]
    report = f"seed {SEED}: " + "; ".join(f"{k.phase}+{k.delay:.3f}s: {k.landed}" for k in kills)
    assert kills[0].landed == "before finalize", report
    (tmp_path / "kills.json").write_text(json.dumps([k.__dict__ for k in kills]))

    # The next run succeeds, removes what the killed runs left, and publishes the same rows.
    with corpus_run(thread_run, tmp_path / "final") as proc:
        assert proc.wait(timeout=300) == 0, (tmp_path / "final" / "stderr").read_text()[-3000:]
    final = assert_consistent(out)
    assert staging_dirs(out) == [], report
    assert not list(out.glob(".current-*"))
    assert documents_of(final) == baseline_rows, report
