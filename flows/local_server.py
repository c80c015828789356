"""A real local Prefect stack: server, work pool, deployments from prefect.yaml, worker.

Used by ``corpus serve`` (one command for a newcomer) and by the integration tests, so the
path users take is the path that is tested. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flows.errors import CorpusError

logger = logging.getLogger(__name__)

POOL = "corpus-pool"


class LocalServerError(CorpusError):
    """The local Prefect server, a deployment step or the worker failed."""


def prefect_executable() -> str:
    """The ``prefect`` CLI of this environment (next to the running interpreter)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPrefect:
    """A running server and the processes started next to it."""

    home: Path
    port: int
    log: IO[bytes]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            # No telemetry: the machine may have no route out, and it is nobody's business.
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_CLI_PROMPT="false",
        )
        return env

    def prefect(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a ``prefect`` CLI command against this server and return its output."""
        result = subprocess.run(
            [prefect_executable(), *args],
            env=self.env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise LocalServerError(
                f"`prefect {' '.join(args)}` failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result

    def spawn(self, args: Sequence[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        # A session of its own, so stop() can end the process and everything it started.
        process = subprocess.Popen(
            [prefect_executable(), *args],
            env=self.env,
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.processes[0]
            if server.poll() is not None:
                raise LocalServerError(f"prefect server exited with {server.returncode}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise LocalServerError(
            f"prefect server not healthy on {self.api_url} after {timeout:.0f} s"
        )

    def create_pool(self, name: str = POOL) -> None:
        """Create the process work pool; an existing pool of that name is kept as it is."""
        result = self.prefect("work-pool", "create", name, "--type", "process", check=False)
        if result.returncode != 0 and "already exists" not in result.stdout + result.stderr:
            raise LocalServerError(
                f"cannot create work pool {name!r}: {result.stdout}{result.stderr}"
            )

    def deploy_all(self, project: Path) -> None:
        """``prefect deploy --all`` from the project folder (prefect.yaml lives there)."""
        self.prefect("--no-prompt", "deploy", "--all", cwd=project)

    def start_worker(
        self, project: Path, pool: str = POOL, run_once: bool = False
    ) -> subprocess.Popen[bytes]:
        args = ["worker", "start", "--pool", pool, "--type", "process"]
        return self.spawn([*args, "--run-once"] if run_once else args, cwd=project)

    def stop(self) -> None:
        """Stop every process this object started (workers first, the server last)."""
        for process in reversed(self.processes):
            stop_process_group(process)
        self.processes.clear()


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


@contextlib.contextmanager
def local_prefect(home: Path, port: int | None = None, ui: bool = True) -> Iterator[LocalPrefect]:
    """Start ``prefect server start`` (SQLite under ``home``) on 127.0.0.1 and stop it after."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "corpus-server.log").open("ab") as log:
        stack = LocalPrefect(home=home, port=port or free_port(), log=log)
        args = ["server", "start", "--host", "127.0.0.1", "--port", str(stack.port)]
        if not ui:
            args.append("--no-ui")
        stack.spawn(args)
        try:
            stack.wait_healthy()
            logger.info("Prefect server on %s (home %s)", stack.api_url, home)
            yield stack
        finally:
            stack.stop()
