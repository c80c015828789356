"""A cold run's head start (flows.engine.headstart): same release, one walk, one task run per
shard, and nothing left behind when the run stops or its server never comes up."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from benchmarks.generate_corpus import Options, generate, load_vocabulary
from flows.engine import headstart
from flows.engine.plan import preflight
from flows.engine.pool import pooled_shard, start_local_pool, stop_local_pool, submit_shard, window
from flows.engine.progress import Progress
from flows.engine.run import execute
from flows.engine.shard import ShardResult, ShardWork
from flows.models import RunParameters
from flows.orchestration.lifecycle import terminate_pool_workers
from flows.output.release import RELEASES, STAGING_PREFIX, output_lock
from tests.conftest import REPO, run_release

WORKERS = 2
SHARD_SIZE = 20


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("headstart") / "source"
    generate(
        folder, Options(docs=150, seed=5), load_vocabulary(REPO.parent / "shared" / "benchmarks")
    )
    return folder


def _params(source: Path, out: Path) -> RunParameters:
    return RunParameters(source=str(source), out=str(out), shard_size=SHARD_SIZE, workers=WORKERS)


def _begin(params: RunParameters) -> None:
    start_local_pool(WORKERS)
    submit = functools.partial(submit_shard, workers=WORKERS)
    headstart.begin(params, preflight(params), window(WORKERS), submit)


def _rows(release: Path, table: str) -> pa.Table:
    return ds.dataset(release / table).to_table().sort_by("source_path")


def _same_release(release: Path, truth: Path) -> None:
    for table in ("documents", "rejected", "shards/facts"):
        assert _rows(release, table).equals(_rows(truth, table)), table


def _stagings(out: Path) -> list[Path]:
    return list((out / RELEASES).glob(f"{STAGING_PREFIX}*"))


class _PooledRunner:
    """What the flow's runner does with the process task runner, without Prefect: each
    shard through :func:`pooled_shard` (a head-started one's future, else submitted)."""

    def __init__(self) -> None:
        self.took: list[int] = []

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        for work in works:
            if work.index in headstart.in_flight():
                self.took.append(work.index)
            yield pooled_shard(work, WORKERS)

    def step(self, name: str, fn: object, *args: object) -> object:
        return fn(*args)  # type: ignore[operator]

    def progress(self, progress: Progress, news: str) -> None:
        pass


@pytest.fixture
def pool() -> Iterator[None]:
    try:
        yield
    finally:
        headstart.discard()
        stop_local_pool()


@pytest.mark.usefixtures("pool")
def test_a_head_started_run_publishes_what_a_run_without_one_does(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = _params(source, tmp_path / "head")
    with caplog.at_level(logging.INFO, logger="flows"):
        _begin(params)
        plan = headstart.planned(params)
        assert plan is not None
        runner = _PooledRunner()
        result = execute(plan, runner)  # type: ignore[arg-type]
    # The walk happened once, in the head start; the first window of shards was taken
    # from it, each once, and nothing is left in flight.
    walks = [r for r in caplog.records if r.getMessage().startswith("discovered ")]
    assert len(walks) == 1
    assert runner.took == list(range(window(WORKERS)))
    assert not headstart.in_flight()
    assert result.release is not None and not _stagings(tmp_path / "head")
    truth = run_release(source, tmp_path / "plain", shard_size=SHARD_SIZE)
    assert truth.release is not None and truth.manifest is not None
    _same_release(result.release, truth.release)
    assert result.manifest is not None
    assert result.manifest.input_fingerprint == truth.manifest.input_fingerprint
    assert result.manifest.source_fingerprint == truth.manifest.source_fingerprint


@pytest.mark.usefixtures("pool")
def test_a_stop_during_the_head_start_leaves_no_workers_no_staging_and_no_lock(
    source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    params = _params(source, out)
    _begin(params)
    assert headstart.planned(params) is not None
    deadline = time.monotonic() + 60
    while not headstart.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert headstart.in_flight() and _stagings(out)
    terminate_pool_workers()  # what RunGuard.request_stop and the CLI's failure path do
    assert not multiprocessing.active_children()
    assert not headstart.in_flight()
    assert not _stagings(out)
    with output_lock(out):  # released: a later run takes it
        pass
    # The flow never takes over a discarded head start: a run now plans and locks anew.
    assert headstart.planned(params) is None
    stop_local_pool()
    result = run_release(source, out, shard_size=SHARD_SIZE)
    assert result.release is not None


def test_a_run_not_begun_by_the_cli_has_no_head_start(source: Path, tmp_path: Path) -> None:
    # A deployment's run, validate, the tests: prepare plans; execute locks; nothing taken.
    params = _params(source, tmp_path / "out")
    assert headstart.planned(params) is None
    result = run_release(source, tmp_path / "out", shard_size=SHARD_SIZE, workers=WORKERS)
    assert result.release is not None and not headstart.in_flight()


def _cli(source: Path, out: Path, home: Path, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    environment.update(PREFECT_HOME=str(home), PYTHONUNBUFFERED="1", **env)
    command = [sys.executable, "-m", "flows.cli", "run", "--source", str(source)]
    command += ["--out", str(out), "--shard-size", str(SHARD_SIZE), "--workers", str(WORKERS)]
    return subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_server_that_never_comes_up_discards_the_head_start(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cli = _cli(source, out, tmp_path / "home", CORPUS_SERVER_STARTUP_SECONDS="0.01")
    output, _ = cli.communicate(timeout=300)
    assert cli.returncode != 0, output
    assert "could not start a temporary Prefect server" in output, output
    # It had begun (its staging folder is removed; the line saying it handed out shards may
    # come after the server's failure on a loaded machine): the error is the same.
    assert "head start: " in output or "removing .staging-" in output, output
    assert not _stagings(out) and not (out / "current").exists()
    with output_lock(out):
        pass


@pytest.mark.slow
def test_ctrl_c_during_the_head_start_leaves_no_workers_and_no_staging(
    source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    cli = _cli(source, out, tmp_path / "home")
    assert cli.stdout is not None
    lines = []
    for line in cli.stdout:
        lines.append(line)
        if "head start: " in line:
            break
    children = psutil.Process(cli.pid).children(recursive=True)
    assert _stagings(out), "".join(lines)
    os.kill(cli.pid, signal.SIGINT)
    rest, _ = cli.communicate(timeout=120)
    output = "".join(lines) + rest
    assert cli.returncode != 0, output
    assert "published" not in rest, output
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, output
    assert not _stagings(out) and not (out / "current").exists(), output


class _Walks(logging.Handler):
    """Counts the walks of the source (discovery says each once)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("discovered ")


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness", "pool")
def test_the_flow_takes_over_the_head_start_one_task_run_per_shard(
    source: Path, tmp_path: Path
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
        TaskRunFilterName,
    )

    from flows.orchestration.flow import corpus_release

    params = _params(source, tmp_path / "out")
    walks = _Walks()
    listing = logging.getLogger("flows.source.listing")
    level = listing.level
    listing.addHandler(walks)  # Prefect's logging configuration may not propagate to caplog
    listing.setLevel(logging.INFO)
    try:
        _begin(params)
        state = corpus_release(params, return_state=True)
    finally:
        listing.removeHandler(walks)
        listing.setLevel(level)
    result = state.result()
    parent = state.state_details.flow_run_id
    assert parent is not None
    assert not headstart.in_flight()
    assert walks.count == 1  # the flow's prepare took the head start's plan
    with get_client(sync_client=True) as client:
        (subflow,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])
            )
        )
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(
                name=TaskRunFilterName(like_="process-shard-"),
                flow_run_id=TaskRunFilterFlowRunId(any_=[subflow.id]),
            )
        )
    shards = -(-150 // SHARD_SIZE)
    assert sorted(run.name for run in runs) == sorted(f"process-shard-{i}" for i in range(shards))
    assert all(run.state is not None and run.state.is_completed() for run in runs)
    truth = run_release(source, tmp_path / "plain", shard_size=SHARD_SIZE)
    assert truth.release is not None
    _same_release(Path(result.path), truth.release)


@pytest.mark.usefixtures("pool")
def test_an_output_with_a_release_gets_no_head_start_beyond_the_plan(
    source: Path, tmp_path: Path
) -> None:
    # A warm run may reuse or find nothing changed: its shards are the flow's to decide.
    out = tmp_path / "out"
    assert run_release(source, out, shard_size=SHARD_SIZE, workers=WORKERS).release is not None
    params = _params(source, out)
    _begin(params)
    plan = headstart.planned(params)
    assert plan is not None
    runner = _PooledRunner()
    result = execute(plan, runner)  # type: ignore[arg-type]
    assert runner.took == [] and not _stagings(out)
    assert result.summary.reused == 150
