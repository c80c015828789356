"""The Dask task runner: the same flow on a local Dask cluster of two worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from distributed import LocalCluster

from flows.models import RunParameters
from flows.orchestration.flow import corpus_release
from tests.conftest import SEEDS, take_dask_cluster

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[LocalCluster]:
    # Started while the unit tests run, if the session collected this module (conftest.py).
    with take_dask_cluster() as running:
        yield running


def test_flow_on_a_dask_cluster(dask_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = dask_cluster
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
