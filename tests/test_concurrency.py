"""Two ``corpus run`` on the same ``--out`` at once, as two real subprocesses: the second
fails at once with a message naming the first, and neither corrupts the other.

To make the overlap certain rather than a race the test might lose, the first run is frozen
(SIGSTOP of its process group) once it holds the output lock, and thawed after the second
one has given up: a very slow run, as far as the second can tell."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_crash import (
    assert_consistent,
    corpus_command,
    corpus_run,
    documents_of,
    generate_source,
    staged,
    staging_dirs,
    visible_releases,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@contextlib.contextmanager
def frozen(pgid: int) -> Iterator[None]:
    kill_group_signal(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        kill_group_signal(pgid, signal.SIGCONT)


def kill_group_signal(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def test_second_run_on_the_same_out_fails_clearly_and_harms_nothing(tmp_path: Path) -> None:
    source = generate_source(tmp_path, docs=30)
    out = tmp_path / "out"
    command = corpus_command(source, out, "--task-runner", "thread")
    lock = out / ".lock"
    go_first, go_second = tmp_path / "go-first", tmp_path / "go-second"

    # Both start now (the second imports while the first runs) and run on their "go".
    with (
        corpus_run(staged(command, go_first), tmp_path / "first") as first,
        corpus_run(staged(command, go_second), tmp_path / "second") as second,
    ):

        def first_holds_lock() -> bool:
            # The lock file names its holder; the staging folder is made under the lock.
            holder = lock.read_text() if lock.exists() else ""
            return holder.startswith(f"pid {first.pid} since") and bool(staging_dirs(out))

        go_first.touch()
        assert wait_for(first_holds_lock, first, timeout=300), "first run ended too early"
        (first_staging,) = staging_dirs(out)
        with frozen(first.pid):
            go_second.touch()
            code = second.wait(timeout=300)
            stderr = (tmp_path / "second" / "stderr").read_text()
            assert code == 3, stderr[-3000:]
            assert f"another corpus run (pid {first.pid} since" in stderr
            assert str(out.resolve()) in stderr
            # The loser touched nothing of the winner's: its staging folder is still there.
            assert staging_dirs(out) == [first_staging]
            assert not (out / "current").exists()
            assert first.poll() is None
        assert first.wait(timeout=300) == 0, (tmp_path / "first" / "stderr").read_text()[-3000:]

    release = assert_consistent(out)
    assert len(visible_releases(out)) == 1
    assert staging_dirs(out) == []
    assert len(documents_of(release)) == 27  # 30 inputs, every tenth empty
