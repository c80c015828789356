"""Integration: a real `prefect server start`, the work pool, `prefect deploy --all` from
prefect.yaml, a manual run with parameters picked up by a real worker, artifacts read back
through the API, and a bad parameter rejected by the server. Nothing is mocked."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pyarrow.dataset as ds
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.orchestration.server import POOL, LocalPrefect, local_prefect
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrefect]:
    home = tmp_path_factory.mktemp("prefect-home")
    with local_prefect(home, ui=False) as running:
        running.create_pool()
        running.deploy_all(REPO)
        yield running
    assert all(p.poll() is not None for p in running.processes)


def test_deployments_match_prefect_yaml(stack: LocalPrefect) -> None:
    with (
        temporary_settings({PREFECT_API_URL: stack.api_url}),
        get_client(sync_client=True) as client,
    ):
        nightly = client.read_deployment_by_name("corpus-release/nightly")
        manual = client.read_deployment_by_name("corpus-release/manual")
    assert nightly.work_pool_name == POOL and manual.work_pool_name == POOL
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]  # type: ignore[union-attr]
    assert nightly.global_concurrency_limit is not None
    assert nightly.global_concurrency_limit.limit == 1
    assert nightly.concurrency_options is not None
    assert nightly.concurrency_options.collision_strategy == "ENQUEUE"
    assert nightly.enforce_parameter_schema and manual.enforce_parameter_schema
    assert manual.parameter_openapi_schema is not None
    form = manual.parameter_openapi_schema["definitions"]["RunParameters"]["properties"]
    assert form["shard_size"]["title"] == "Documents per task"
    assert form["shard_size"]["minimum"] == 1


def test_manual_run_publishes_and_reports(stack: LocalPrefect, tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = {"params": {"source": str(REPO / "seeds"), "out": str(out), "shard_size": 1}}
    created = stack.prefect(
        "deployment", "run", "corpus-release/manual", "--params", json.dumps(params)
    )
    run_id = UUID(next(line.split()[-1] for line in created.stdout.splitlines() if "UUID" in line))

    worker = stack.start_worker(REPO, run_once=True)
    try:
        code = worker.wait(timeout=900)
    except subprocess.TimeoutExpired:
        code = None
    log = (stack.home / "corpus-server.log").read_text(errors="replace")
    assert code == 0, f"worker exit {code}; server and worker log ends:\n{log[-4000:]}"

    with (
        temporary_settings({PREFECT_API_URL: stack.api_url}),
        get_client(sync_client=True) as client,
    ):
        run = client.read_flow_run(run_id)
        artifacts = client.read_artifacts()
    assert run.state is not None and run.state.is_completed(), run.state
    docs = ds.dataset(out / "current" / "documents").to_table()
    assert sorted(docs.column("language").to_pylist()) == ["de", "en"]

    by_key = {a.key: a for a in artifacts if a.key}
    assert {"corpus-release-counts", "corpus-release-summary", "corpus-release-progress"} <= set(
        by_key
    )
    # On the run the deployment started (the one the UI lists), not on its subflow.
    assert {by_key[key].flow_run_id for key in by_key} == {run_id}
    assert "Published **2** of 2 inputs" in str(by_key["corpus-release-summary"].data)
    table = json.loads(str(by_key["corpus-release-counts"].data))
    assert {"dimension": "language", "value": "de", "count": 1} in table
    progress = [a for a in artifacts if a.type == "progress"]
    assert progress and float(progress[-1].data) == 100.0  # type: ignore[arg-type]


def test_bad_parameter_is_rejected_by_the_server(stack: LocalPrefect) -> None:
    bad = {"params": {"shard_size": 0}}
    result = stack.prefect(
        "deployment", "run", "corpus-release/manual", "--params", json.dumps(bad), check=False
    )
    assert result.returncode != 0
    assert "params.shard_size" in result.stdout + result.stderr
    unknown = {"params": {"no_such_field": 1}}
    result = stack.prefect(
        "deployment", "run", "corpus-release/manual", "--params", json.dumps(unknown), check=False
    )
    assert result.returncode != 0
