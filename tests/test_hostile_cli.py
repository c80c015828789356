"""``corpus run`` against a hostile world, for real: signals, a dead or silent Prefect API, a
server that dies mid-run, a full disk, a FIFO where the lock file should be.

Every run is a real ``uv run corpus run`` subprocess in a session of its own (like a shell
job), signalled with ``os.kill``/``os.killpg``. What must hold each time: the run ends
within seconds with a documented exit code and exactly one ``corpus:`` line on stderr (no
traceback), ``current`` stays on the previous release, no staging folder is left, and no
process the run started survives it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from flows.orchestration.server import is_healthy
from flows.output.release import CURRENT, RELEASES
from tests.conftest import REPO, tmpfs

pytestmark = pytest.mark.slow

DOCS = 400
SHARD_SIZE = 50  # 8 shards on 2 workers: several seconds of processing after the first
# Bounds: a loaded CI machine needs most of a minute to reach the first shard; once there,
# a stop has to be quick.
START_TIMEOUT = 300.0
STOP_BOUND = 20.0

_PARAGRAPHS = [
    "The workers at the {n} plant voted to continue the strike for a {k} week.",
    "Rents in the city rose by {n} percent while wages stayed flat for {k} years.",
    "Die Beschäftigten im Werk {n} streiken seit {k} Wochen gegen die Lohnkürzungen.",
    "Les enseignants de l'académie {n} ont manifesté pendant {k} jours contre la réforme.",
]


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DOCS documents of ~3.5 kB each."""
    source = tmp_path_factory.mktemp("hostile") / "source"
    source.mkdir()
    for i in range(DOCS):
        sentence = _PARAGRAPHS[i % len(_PARAGRAPHS)]
        body = "\n\n".join(
            " ".join(sentence.format(n=i + j + p, k=j + 2) for j in range(8)) for p in range(6)
        )
        (source / f"doc-{i:04d}.txt").write_text(f"Report {i}\n\n{body}\n\nShare\n")
    return source


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def _previous_release(out: Path) -> Path:
    """A release for ``current`` to point at, so the test can see that it stays current."""
    release = out / RELEASES / "20200101T000000Z-00000000"
    release.mkdir(parents=True)
    (release / "README.md").write_text("previous\n")
    os.symlink(f"{RELEASES}/{release.name}", out / CURRENT)
    return release


def _command(source: Path, out: Path) -> list[str]:
    # --no-sync: the test's environment is synced already; a sync would print on stderr.
    return [
        "uv",
        "run",
        "--no-sync",
        "corpus",
        "run",
        "--source",
        str(source),
        "--out",
        str(out),
        "--shard-size",
        str(SHARD_SIZE),
        "--workers",
        "2",
    ]


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    stderr_path: Path
    out: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert self.process.poll() is None, f"the run ended early:\n{self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s"
            time.sleep(0.05)

    def family(self) -> list[psutil.Process]:
        """uv, the CLI and everything they started (server, pool workers, tracker)."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def cli(self) -> psutil.Process:
        return next(p for p in self.family() if p.name() == "corpus")

    def finish(self, started: float, bound: float) -> tuple[int, float]:
        code = self.process.wait(timeout=bound + 60)
        return code, time.monotonic() - started


@contextlib.contextmanager
def corpus_run(source: Path, out: Path, env: dict[str, str], logs: Path) -> Iterator[Run]:
    """Start ``corpus run`` in a session of its own; whatever happens, none of it survives."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "stdout").open("wb") as stdout, (logs / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            _command(source, out),
            cwd=REPO,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        run = Run(process, logs / "stderr", out)
        seen: list[psutil.Process] = []
        try:
            yield run
        finally:
            with contextlib.suppress(psutil.Error):
                seen = run.family()
            for proc in seen:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            process.kill()
            process.wait(timeout=30)


def assert_none_survive(processes: list[psutil.Process], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    alive = processes
    while time.monotonic() < deadline:
        alive = [p for p in processes if _alive(p)]
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes survived the run: {[(p.pid, p.cmdline()) for p in alive]}")


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def one_corpus_line(stderr: str) -> str:
    """The failure was said in exactly one line, and no traceback reached the terminal."""
    assert "Traceback" not in stderr, stderr[-5000:]
    assert "leaked semaphore" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("corpus:")]
    assert len(lines) == 1, stderr[-5000:]
    return lines[0]


def assert_previous_still_current(out: Path, previous: Path) -> None:
    assert os.readlink(out / CURRENT) == f"{RELEASES}/{previous.name}"
    assert not list((out / RELEASES).glob(".staging-*")), "a staging folder was left"


def _server_url(stderr: str) -> str:
    marker = "temporary Prefect server on "
    return stderr.split(marker, 1)[1].split(maxsplit=1)[0]


def _log_file(line: str) -> Path:
    assert "(details: " in line, line
    path = Path(line.rsplit("(details: ", 1)[1].rstrip(")"))
    assert path.is_file(), path
    return path


# -- 7. signals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected"),
    [("SIGINT to the CLI", 130), ("SIGTERM to the CLI", 143), ("Ctrl-C to the group", 130)],
)
def test_a_signal_mid_run_stops_everything_within_seconds(
    how: str, expected: int, big_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    previous = _previous_release(out)
    with corpus_run(big_source, out, _env(tmp_path / "home"), tmp_path / "logs") as run:
        run.wait_for("progress: 1/")  # the pool is busy with the remaining shards
        family = run.family()
        assert any("multiprocessing" in " ".join(p.cmdline()) for p in family), "no pool"
        url = _server_url(run.stderr)
        started = time.monotonic()
        if how == "Ctrl-C to the group":
            os.killpg(run.process.pid, signal.SIGINT)  # what a terminal does
        else:
            sig = signal.SIGINT if how.startswith("SIGINT") else signal.SIGTERM
            os.kill(run.cli().pid, sig)
        code, took = run.finish(started, STOP_BOUND)
        assert code == expected, run.stderr[-3000:]
        assert took < STOP_BOUND, f"{how}: the run took {took:.1f} s to stop"
        line = one_corpus_line(run.stderr)
        assert "previous release is still current" in line
        assert_previous_still_current(out, previous)
        assert_none_survive(family)
        assert not is_healthy(url)
        # Best effort, but it is done: the flow run is not left Running.
        assert "Finished in state Crashed" in _log_file(line).read_text()


# -- 8. the Prefect API -------------------------------------------------------------------


def test_a_dead_api_is_one_line_and_exit_2(seed_source: Path, tmp_path: Path) -> None:
    api = "http://127.0.0.1:9/api"
    started = time.monotonic()
    result = subprocess.run(
        _command(seed_source, tmp_path / "out"),
        cwd=REPO,
        env=_env(tmp_path / "home", PREFECT_API_URL=api),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert time.monotonic() - started < 60
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"corpus: the Prefect API at {api} is not answering (connection refused); "
        "start it or unset PREFECT_API_URL"
    ], result.stderr[-3000:]


@contextlib.contextmanager
def silent_server(lifetime: float = 120.0) -> Iterator[str]:
    """A loopback socket that accepts connections and never answers; it stops by itself."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        deadline = time.monotonic() + lifetime
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


def test_an_api_that_never_answers_is_one_line_within_the_timeout(
    seed_source: Path, tmp_path: Path
) -> None:
    with silent_server() as api:
        started = time.monotonic()
        result = subprocess.run(
            _command(seed_source, tmp_path / "out"),
            cwd=REPO,
            env=_env(tmp_path / "home", PREFECT_API_URL=api, CORPUS_API_TIMEOUT_SECONDS="3"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        took = time.monotonic() - started
    assert result.returncode == 2, result.stderr[-3000:]
    assert took < 60
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        f"corpus: the Prefect API at {api} is not answering (no answer within 3 s); "
        "start it or unset PREFECT_API_URL"
    ], result.stderr[-3000:]


def test_the_temporary_server_dying_mid_run_ends_the_run(big_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    previous = _previous_release(out)
    with corpus_run(big_source, out, _env(tmp_path / "home"), tmp_path / "logs") as run:
        run.wait_for("progress: 1/")
        family = run.family()
        server = next(p for p in family if "server" in p.cmdline() and "start" in p.cmdline())
        started = time.monotonic()
        server.kill()
        code, took = run.finish(started, 60)
        assert code == 2, run.stderr[-3000:]
        assert took < 60, f"the run took {took:.1f} s to notice"
        line = one_corpus_line(run.stderr)
        assert "temporary Prefect server exited" in line
        assert_previous_still_current(out, previous)
        assert_none_survive(family)


# -- 9. one line, a log file, documented codes ---------------------------------------------


def test_a_fifo_lock_file_is_one_line_and_exit_2(seed_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / RELEASES).mkdir(parents=True)
    os.mkfifo(out / ".lock")
    result = subprocess.run(
        _command(seed_source, out),
        cwd=REPO,
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == (
        f"corpus: {out / '.lock'} is a FIFO (named pipe), not a regular file; remove it"
    )


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("mount") is None, reason="tmpfs")
def test_a_full_disk_is_one_line_and_exit_2(big_source: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "120k") as disk:
        out = disk / "out"
        previous = _previous_release(out)
        with corpus_run(big_source, out, _env(tmp_path / "home"), tmp_path / "logs") as run:
            code = run.process.wait(timeout=START_TIMEOUT)
            assert code == 2, run.stderr[-3000:]
            line = one_corpus_line(run.stderr)
            assert "no space left on device" in line.lower() or "errno 28" in line.lower(), line
            assert "(details: " in line
            assert_previous_still_current(out, previous)


def test_a_bug_is_exit_70_with_the_traceback_in_a_log_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seed_source: Path
) -> None:
    from flows import cli

    def broken(args: object) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "resolve_parameters", broken)
    assert cli.main(["run", "--source", str(seed_source)]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("corpus: internal error (ZeroDivisionError")
    log = _log_file(err.strip())
    assert "Traceback" in log.read_text() and "a bug" in log.read_text()
    log.unlink()
