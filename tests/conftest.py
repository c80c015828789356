"""Shared fixtures. Unit tests call stage functions directly; only the end-to-end tests
start Prefect (one session-scoped test harness).

The harness's server takes 10-15 s to start (a subprocess that imports Prefect's server and
migrates a fresh database). When the session will need it, that subprocess is started as
soon as collection is over, and the tests that need it run last: the unit tests run while
it starts. test_dask.py's cluster of worker processes is started early the same way."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import mkdtemp
from typing import TYPE_CHECKING, Any

import pytest

from flows.models import RunParameters
from flows.settings import load_rules, stage_config
from flows.stages.compose import StageConfig

if TYPE_CHECKING:
    from distributed import LocalCluster
    from prefect.server.api.server import SubprocessASGIServer

    from flows.engine.run import RunResult
    from tests.test_hostile import Battery

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"

HARNESS = "prefect_harness"
# Marks of tests that start Prefect, a server or subprocesses: run after the unit tests.
_LATE_MARKS = ("slow", "server")


@pytest.fixture(scope="session")
def default_config() -> StageConfig:
    params = RunParameters()
    rules, _ = load_rules(params)
    return stage_config(params, rules)


@pytest.fixture
def seed_source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(SEEDS, source)
    return source


@pytest.fixture(scope="session")
def hostile_battery(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Battery:
    """One flow run over the hostile battery, read by test_hostile.py and
    test_determinism.py."""
    from tests.test_hostile import run_battery

    return run_battery(tmp_path_factory.mktemp("hostile"))


# --- the harness's server, started early --------------------------------------------------


@dataclass
class _EarlyServer:
    """A test server started in the background; the harness adopts it (same port)."""

    server: SubprocessASGIServer
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)
    adopted: bool = False


_early: list[_EarlyServer] = []


def _start_server_early() -> None:
    import httpx
    import prefect.settings
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.testing import utilities

    if not hasattr(utilities, "_find_available_port"):  # Prefect changed: no early start
        return
    port = utilities._find_available_port()
    server = SubprocessASGIServer(port=port)
    database = Path(mkdtemp(prefix="prefect-test-")) / "prefect-test.db"
    url = f"sqlite+aiosqlite:///{database}"

    def start() -> None:
        # This thread's own settings context: the server subprocess gets the database URL
        # from it, and nothing else in the session sees it.
        try:
            with prefect.settings.temporary_settings(
                {prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL: url}
            ):
                server.start(timeout=120)
        except (RuntimeError, OSError, httpx.HTTPError) as error:
            # The fixture then starts a server of its own, as the harness always did.
            early.errors.append(error)

    early = _EarlyServer(server, threading.Thread(target=start, name="early-server", daemon=True))
    early.thread.start()
    _early.append(early)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tests first, then every module that starts Prefect, a server or subprocesses
    (whole modules, in their order, so module-scoped fixtures are set up once)."""
    late_modules = {
        item.module.__name__
        for item in items
        if isinstance(item, pytest.Function)
        and (HARNESS in item.fixturenames or any(item.get_closest_marker(m) for m in _LATE_MARKS))
    }
    # Among those, the one that takes the early Dask cluster first: it is closed right after.
    dask_modules = {
        item.module.__name__
        for item in items
        if isinstance(item, pytest.Function) and DASK_CLUSTER in item.fixturenames
    }
    order = {id(item): i for i, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[bool, bool, int]:
        module = item.module.__name__ if isinstance(item, pytest.Function) else ""
        return module in late_modules, module not in dask_modules, order[id(item)]

    items.sort(key=key)


# --- test_dask.py's cluster, started early -----------------------------------------------

DASK_CLUSTER = "dask_cluster"
_early_clusters: list[tuple[threading.Thread, list[LocalCluster]]] = []


def new_dask_cluster() -> LocalCluster:
    """A local Dask cluster of two worker processes, which import the flow's tasks (and so
    Prefect) as they start rather than at their first task."""
    from distributed import LocalCluster

    return LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        preload=["flows.orchestration.tasks"],
    )


def _start_cluster_early() -> None:
    made: list[LocalCluster] = []

    def start() -> None:
        # On failure, take_dask_cluster() makes one in the test's own time.
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            made.append(new_dask_cluster())

    thread = threading.Thread(target=start, name="early-dask-cluster", daemon=True)
    thread.start()
    _early_clusters.append((thread, made))


def take_dask_cluster() -> LocalCluster:
    """The cluster started early if there is one, else a new one. The caller closes it."""
    while _early_clusters:
        thread, made = _early_clusters.pop()
        thread.join(timeout=120)
        if made:
            return made[0]
    return new_dask_cluster()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(HARNESS in getattr(item, "fixturenames", ()) for item in session.items):
        _start_server_early()
    if any(DASK_CLUSTER in getattr(item, "fixturenames", ()) for item in session.items):
        _start_cluster_early()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for early in _early:  # started, but no test took it
        if not early.adopted:
            early.thread.join(timeout=130)
            early.server.stop()
    while _early_clusters:
        thread, made = _early_clusters.pop()
        thread.join(timeout=120)
        for cluster in made:
            cluster.close()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    # Imported here: only the end-to-end tests pay for Prefect's import and server.
    from prefect.testing import utilities

    with pytest.MonkeyPatch.context() as patch:
        if _early:
            early = _early[0]
            early.thread.join(timeout=130)
            if not early.errors and early.server.running:
                # The harness asks for a free port, gets this server's (one instance per
                # port), and its start() returns at once: the server is up.
                early.adopted = True
                patch.setattr(utilities, "_find_available_port", lambda: early.server.port)
        harness = utilities.prefect_test_harness(server_startup_timeout=120)
        harness.__enter__()
    try:
        yield
    finally:
        harness.__exit__(None, None, None)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (a full disk on demand); skips where mounting is
    not permitted (it needs root)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def run_release(source: Path, out: Path, **changes: Any) -> RunResult:
    """A whole release through the engine, in this process and without Prefect: what the
    flow does, for tests that need real runs by the dozen."""
    from flows.engine.plan import prepare
    from flows.engine.run import InlineRunner, execute

    params = RunParameters(source=str(source), out=str(out), **changes)
    return execute(prepare(params), InlineRunner())
