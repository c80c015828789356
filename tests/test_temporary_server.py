"""``corpus run`` without PREFECT_API_URL: one temporary server, and none left behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.orchestration.server import is_healthy
from tests.conftest import SEEDS

pytestmark = pytest.mark.slow

SERVER_LINE = re.compile(r"temporary Prefect server on (http://127\.0\.0\.1:\d+/api)")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(home), PYTHONUNBUFFERED="1")
    return env


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "flows.cli", "run", "--source", str(SEEDS), "--out", str(out)]


def test_one_temporary_server_for_the_cli_and_its_workers(tmp_path: Path) -> None:
    result = subprocess.run(
        _command(tmp_path / "out"),
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "published 2 of 2 inputs" in output
    found = SERVER_LINE.search(output)
    assert found, output[-3000:]
    # Prefect's own "Starting temporary server" would mean a worker (or a thread of the CLI)
    # did not see our server and started a second one.
    assert "Starting temporary server" not in output, output[-3000:]
    assert not is_healthy(found.group(1)), "the temporary server outlived the run"


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_killing_the_cli_alone_stops_its_temporary_server(tmp_path: Path) -> None:
    process = subprocess.Popen(
        _command(tmp_path / "out"),
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    api_url = None
    try:
        for line in process.stdout:
            found = SERVER_LINE.search(line)
            if found:
                api_url = found.group(1)
                break
        assert api_url, "the CLI never reported its server"
        assert is_healthy(api_url)
        # The CLI only, not its process group: what an OOM killer or `kill -9 <pid>` does.
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while is_healthy(api_url) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not is_healthy(api_url), "the server outlived the CLI that started it"
    finally:
        # Whatever is left of the run (pool workers) goes with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
