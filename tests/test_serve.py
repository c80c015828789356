"""`corpus serve` as a supervisor runs it: SIGTERM or Ctrl-C stop the Prefect server and the
worker it started within seconds, nothing survives, and its hint works in a fresh shell."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from flows.orchestration.server import LocalPrefect, free_port
from tests.conftest import REPO
from tests.test_hostile_cli import assert_none_survive

pytestmark = [pytest.mark.slow, pytest.mark.server]

START_TIMEOUT = 240.0
# SIGTERM to the worker, up to 5 s before it is killed; then the server, up to 5 s more.
STOP_BOUND = 15.0


class Serve:
    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.stdout_path = home / "serve.stdout"
        self.stderr_path = home / "serve.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            # The CLI itself, not `uv run` (which would forward the signal itself).
            self.process = subprocess.Popen(
                [
                    str(Path(REPO / ".venv" / "bin" / "corpus")),
                    "serve",
                    "--port",
                    str(port),
                    "--home",
                    str(home),
                    "--project",
                    str(REPO),
                ],
                cwd=REPO,
                env={k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while "Run now" not in self.stdout:
            assert self.process.poll() is None, f"serve ended early:\n{self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"serve not ready:\n{self.stderr[-3000:]}"
            time.sleep(0.2)

    def family(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    (tmp_path / "home").mkdir()
    running = Serve(tmp_path / "home", free_port())
    try:
        yield running
    finally:
        try:
            seen = running.family()
        except psutil.Error:
            seen = []
        for process in seen:
            with contextlib.suppress(psutil.Error):
                process.kill()
        running.process.wait(timeout=30)


def _stop(serve: Serve, signum: int) -> tuple[int, float, list[psutil.Process]]:
    family = serve.family()
    commands = [" ".join(p.cmdline()) for p in family]
    assert any("prefect server start" in c for c in commands), commands
    assert any("prefect worker start" in c for c in commands), commands
    started = time.monotonic()
    serve.process.send_signal(signum)
    code = serve.process.wait(timeout=STOP_BOUND + 30)
    return code, time.monotonic() - started, family


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_server_and_the_worker(serve: Serve, signum: int) -> None:
    serve.wait_ready()
    code, seconds, family = _stop(serve, signum)
    assert code == 0, serve.stderr[-3000:]
    assert seconds < STOP_BOUND, f"stopping took {seconds:.1f} s"
    assert_none_survive(family, timeout=2)
    name = signal.Signals(signum).name
    lines = serve.stderr.splitlines()
    assert f"corpus serve: {name}: stopping the worker and the Prefect server" in lines
    assert f"corpus serve: stopped ({name}); the worker and the Prefect server are stopped" in (
        lines
    )
    assert "corpus run" not in serve.stderr
    assert "Traceback" not in serve.stderr


def test_the_run_now_hint_works_in_a_fresh_shell(serve: Serve, tmp_path: Path) -> None:
    serve.wait_ready()
    hint = next(
        line.strip() for line in serve.stdout.splitlines() if "prefect deployment run" in line
    )
    # The worker must not run it (it would publish seeds/ into the repository's dist/).
    stack = LocalPrefect(home=serve.home, port=serve.port, log=open(os.devnull, "wb"))  # noqa: SIM115
    stack.prefect("work-pool", "pause", "corpus-pool")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    # A fresh login shell elsewhere: no virtual environment, no PREFECT_* variables.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p)
    assert shutil.which("prefect", path=path) is None or ".venv" not in str(
        shutil.which("prefect", path=path)
    )
    result = subprocess.run(
        ["bash", "-c", hint],
        cwd=fresh,
        env={"PATH": path, "HOME": os.environ.get("HOME", str(fresh))},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Created flow run '[\w-]+'", result.stdout), result.stdout
    code, seconds, family = _stop(serve, signal.SIGTERM)
    assert code == 0 and seconds < STOP_BOUND
    assert_none_survive(family, timeout=2)


def test_stop_process_tree_ends_children_in_other_sessions_and_stubborn_ones(
    tmp_path: Path,
) -> None:
    """What a worker leaves when it stops: a flow run in a session of its own (a group
    SIGTERM does not reach it), and a process that ignores SIGTERM."""
    from flows.orchestration.server import stop_process_tree

    ready = tmp_path / "ready"
    child = (
        "import signal, subprocess, sys, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
        " start_new_session=True)\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", child], start_new_session=True)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    assert len(family) == 2
    assert os.getsid(family[1].pid) != os.getsid(process.pid)
    started = time.monotonic()
    stop_process_tree(process, grace=1.0)
    assert time.monotonic() - started < 5
    assert process.poll() is not None
    assert_none_survive(family, timeout=2)
