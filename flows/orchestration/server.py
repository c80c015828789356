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

# How long a stopping process may take before it is killed. A Prefect worker turns SIGTERM
# into a SIGINT to itself and then waits for tens of seconds with nothing to finish.
STOP_GRACE_SECONDS = 5.0


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


def is_healthy(api_url: str) -> bool:
    """The server at ``api_url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def api_problem(api_url: str, timeout: float) -> str | None:
    """Why the API at ``api_url`` is not usable, or None when it answers within ``timeout``.

    Any HTTP answer below 500 counts as answering (a proxy or Prefect Cloud may want
    credentials for ``/health``; the client reports those itself); what this catches is a
    dead port, a host that never answers, and a server that is down behind a proxy.
    """
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, OSError) and reason.strerror:
            return str(reason.strerror).lower()
        return str(reason)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as error:
        return str(error.strerror or error).lower()
    return None if status < 500 else f"HTTP {status}"


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
        # A session of its own, so a terminal's Ctrl-C reaches only us and stop() can end the
        # process and everything it started; on Linux it also dies with us, even by SIGKILL.
        process = subprocess.Popen(
            [prefect_executable(), *args],
            env=self.env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        self.processes.append(process)
        return process

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.processes[0]
            if server.poll() is not None:
                raise LocalServerError(f"prefect server exited with {server.returncode}")
            if is_healthy(self.api_url):
                return
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

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every process this object started and everything they started (workers
        first, while the server still takes their last reports; the server last)."""
        for process in reversed(self.processes):
            stop_process_tree(process, grace)
        self.processes.clear()


def stop_process_tree(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to ``process``, its process group and every process below it -- also those
    in sessions of their own, like the flow runs a worker starts --, SIGKILL to whatever is
    left after ``grace`` seconds. Nothing it started outlives it."""
    import psutil

    try:
        root = psutil.Process(process.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        tree = []
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    # One SIGTERM each: a Prefect worker takes a second one as "kill me now".
    for member in tree:
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(member.pid) != process.pid:
                member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=grace)
    if alive:
        logger.info(
            "killing %s after %.0f s: %s",
            "process" if len(alive) == 1 else "processes",
            grace,
            ", ".join(str(member.pid) for member in alive),
        )
    if alive or process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=grace)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)  # reaped: no zombie left in the process table


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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: the server gets SIGTERM when the process that started it dies, even by SIGKILL,
    # so a killed `corpus run` does not leave a server behind.
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# Services a temporary server needs none of: cancellation and pause clean-up, work pools'
# and workers' health (foreman), lost-lease recovery, vacuuming, automations (their
# triggers read every event the run sends). The event persister and the task-run recorder
# stay: they record what the Prefect UI shows (task runs, events, the asset).
IDLE_SERVICES = (
    "CANCELLATION_CLEANUP",
    "CLEANUP_RECONCILER",
    "DB_VACUUM",
    "EVENT_LOGGER",
    "FOREMAN",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "TRIGGERS",
)


class TemporaryServer:
    """A throwaway Prefect API server for one ``corpus run`` without ``PREFECT_API_URL``.

    ``prefect server start`` in the foreground: Prefect's supported command, configured by
    its documented options only (no UI, scheduler, late-run service or analytics: a run of
    this CLI needs none of them). It is spawned before the CLI imports Prefect, so its boot
    overlaps the CLI's own imports. It runs in a session of its own, so a terminal's Ctrl-C
    reaches only the CLI, which then stops it; on Linux it also dies with the CLI.
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        """Spawn the server; returns at once (``wait_healthy`` waits for it)."""
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
        for service in IDLE_SERVICES:  # the user's own setting wins
            env.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    prefect_executable(),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-ui",
                    "--no-scheduler",
                    "--no-late-runs",
                    "--analytics-off",
                    "--log-level",
                    "WARNING",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )

    @property
    def exited(self) -> int | None:
        """The server's exit code once it has exited, else None."""
        return None if self.process is None else self.process.poll()

    def wait_healthy(self, timeout: float) -> None:
        """Wait for ``/health``; a server that exits early (port taken) is restarted once."""
        deadline = time.monotonic() + timeout
        restarts = 1
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                if restarts == 0:
                    raise LocalServerError(
                        f"the temporary Prefect server exited with {self.process.returncode}: "
                        f"{self.log_tail()}"
                    )
                restarts -= 1
                self.start()
                continue
            if is_healthy(self.api_url):
                return
            time.sleep(0.1)
        raise LocalServerError(
            f"the temporary Prefect server was not healthy after {timeout:.0f} s: {self.log_tail()}"
        )

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        stop_process_group(self.process, grace=grace)

    def kill(self) -> None:
        """At once, for a stop that has run out of time."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"
