"""What the Prefect UI shows for a run: the artifacts and the asset are on the run the user
starts (corpus-release), not on its build-release subflow, and no link points to a file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.worker import EventsWorker

from flows.models import RunParameters
from flows.orchestration.flow import corpus_release
from flows.orchestration.tasks import release_asset
from tests.conftest import SEEDS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _asset_events(key: str, wait: float = 30.0) -> list[dict[str, Any]]:
    """The asset's materialisation events, once the server has stored them (its event
    persister writes in batches, a few seconds after they arrive)."""
    EventsWorker.drain_all(timeout=wait)
    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            answer = client.request(
                "POST",
                "/events/filter",
                json={"filter": {"event": {"prefix": ["prefect.asset.materialization"]}}},
            )
            events: list[dict[str, Any]] = answer.json()["events"]
            found = [e for e in events if e["resource"]["prefect.resource.id"] == key]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def test_the_run_the_user_opens_holds_the_artifacts_and_the_asset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = RunParameters(source=str(SEEDS), out=str(out), shard_size=1, task_runner="thread")
    state = corpus_release(params, return_state=True)
    result = state.result()
    parent = state.state_details.flow_run_id
    assert isinstance(parent, UUID)

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[parent]))
        )
        subflow = next(
            run
            for run in client.read_flow_runs()
            if run.parent_task_run_id is not None
            and client.read_task_run(run.parent_task_run_id).flow_run_id == parent
        )
        on_subflow = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[subflow.id]))
        )
    assert on_subflow == []
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {
        "corpus-release-progress",
        "corpus-release-counts",
        "corpus-release-summary",
    }
    progress = by_key["corpus-release-progress"]
    assert float(progress.data) == 100.0  # type: ignore[arg-type]
    # The UI's card shows the description, not the number.
    assert progress.description == "100%: 2 of 2 shards done, 2 of 2 documents"
    assert f"Release `{result.release_id}`" in str(by_key["corpus-release-summary"].data)
    assert {"dimension": "language", "value": "de", "count": 1} in json.loads(
        str(by_key["corpus-release-counts"].data)
    )
    assert not any("file://" in str(a.data) for a in artifacts)

    events = _asset_events(release_asset(str(out)).key)
    assert len(events) == 1
    event = events[0]
    assert event["event"] == "prefect.asset.materialization.succeeded"
    assert event["payload"]["release_id"] == result.release_id
    assert event["payload"]["published"] == 2
    related = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in event["related"]}
    assert related["flow-run"] == f"prefect.flow-run.{parent}"


def test_an_output_path_prefect_refuses_in_a_key_is_still_one_asset(tmp_path: Path) -> None:
    odd = tmp_path / "my corpus #1 [50%]"
    asset = release_asset(str(odd))
    assert asset.key == "file://" + str(odd.resolve()).replace(" ", "_").replace("#", "_").replace(
        "[", "_"
    ).replace("]", "_").replace("%", "_")
    assert release_asset(str(odd)).key == asset.key


def test_an_unchanged_run_says_so_on_the_run_the_user_opens(tmp_path: Path) -> None:
    params = RunParameters(source=str(SEEDS), out=str(tmp_path / "out"), task_runner="thread")
    first = corpus_release(params)
    state = corpus_release(params, return_state=True)
    result = state.result()
    assert result.unchanged and result.release_id == first.release_id
    parent = state.state_details.flow_run_id
    assert isinstance(parent, UUID)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[parent]))
        )
    (summary,) = [a for a in artifacts if a.key == "corpus-release-summary"]
    assert f"Unchanged: current is `{first.release_id}`" in str(summary.data)
    assert "--force-release" in str(summary.data)
