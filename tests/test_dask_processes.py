"""A release on a Dask cluster run as clusters run: `dask scheduler` and two `dask worker`
processes started from the command line, separate from the test and from each other; the
published rows are those of a local run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from benchmarks.generate_corpus import Options, generate, load_vocabulary
from flows.models import RunParameters
from flows.orchestration.flow import corpus_release
from tests.conftest import REPO, run_release

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

STARTUP_SECONDS = 120


def _dask() -> list[str]:
    script = Path(sys.executable).with_name("dask")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dask"]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Workers first: a worker whose scheduler is gone retries it before it exits."""
    processes = processes[::-1]
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """The scheduler's address and the two workers' process ids. The workers run in a
    folder of their own, with no nanny (each worker is the process started here)."""
    home = tmp_path / "cluster"
    home.mkdir()
    scheduler_file = home / "scheduler.json"
    logs = [(home / f"{name}.log").open("wb") for name in ("scheduler", "worker-1", "worker-2")]
    processes = [
        subprocess.Popen(
            [*_dask(), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
            cwd=home, stdout=logs[0], stderr=subprocess.STDOUT,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not scheduler_file.exists():
            assert processes[0].poll() is None, (home / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for log in logs[1:]:
            processes.append(
                subprocess.Popen(
                    [*_dask(), "worker", address, "--nthreads", "1", "--no-nanny",
                     "--no-dashboard", "--host", "127.0.0.1"],
                    cwd=home, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        yield address, [process.pid for process in processes[1:]]
    finally:
        _stop(processes)
        for log in logs:
            log.close()


def _rows(release: Path, table: str) -> pa.Table:
    rows = ds.dataset(release / table).to_table()
    return rows.sort_by("source_path")


def test_release_on_separate_dask_processes_equals_a_local_run(
    cluster: tuple[str, list[int]], tmp_path: Path
) -> None:
    from distributed import Client

    address, worker_pids = cluster
    source = tmp_path / "source"
    generate(
        source, Options(docs=120, seed=3), load_vocabulary(REPO.parent / "shared" / "benchmarks")
    )
    with Client(address, timeout=STARTUP_SECONDS) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(2, timeout=STARTUP_SECONDS)
        # The workers are the processes started above, not threads or children of this one.
        pids = client.run(os.getpid)
        assert sorted(pids.values()) == sorted(worker_pids)
        assert os.getpid() not in pids.values()

        shared = tmp_path / "shared-out"
        params = RunParameters(
            source=str(source),
            out=str(shared),
            shard_size=20,
            task_runner="dask",
            dask_address=address,
        )
        result = corpus_release(params)
        prefixes = client.run_on_scheduler(
            lambda dask_scheduler: sorted(dask_scheduler.task_prefixes)
        )
        # Each worker ran shards (6 shards of 20 over two single-threaded workers).
        ran = client.run(lambda dask_worker: len(dask_worker.state.log))
    assert "process_shard_task" in prefixes
    assert all(count > 0 for count in ran.values())

    local = run_release(source, tmp_path / "local-out", shard_size=20)
    assert local.release is not None
    assert result.published == local.summary.published > 100
    for table in ("documents", "rejected"):
        on_cluster, here = _rows(Path(result.path), table), _rows(local.release, table)
        assert on_cluster.num_rows == here.num_rows
        assert on_cluster.equals(here), table
    shutil.rmtree(source)
