"""The Dask task runner: the same flow on a local Dask cluster of two worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from distributed import LocalCluster

from flows.models import RunParameters
from flows.orchestration.flow import corpus_release
from tests.conftest import SEEDS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as running:
        yield running


def test_flow_on_a_dask_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = RunParameters(
        source=str(SEEDS),
        out=str(out),
        shard_size=1,
        task_runner="dask",
        dask_address=cluster.scheduler_address,
    )
    result = corpus_release(params)
    assert (result.published, result.rejected) == (2, 0)
    rows = ds.dataset(out / "current" / "documents").to_table().to_pylist()
    assert sorted(r["language"] for r in rows) == ["de", "en"]
    # The shards ran on the cluster: its scheduler saw the shard tasks.
    scheduler = cluster.scheduler
    assert scheduler is not None
    assert "process_shard_task" in scheduler.task_prefixes
    assert len(cluster.scheduler_info["workers"]) == 2
