"""The Prefect flow: wiring only. The engine (flows.engine) plans and executes the run."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel

from flows.engine.plan import Plan
from flows.engine.pool import window
from flows.engine.run import execute
from flows.engine.unchanged import unchanged_release
from flows.errors import ConfigError
from flows.models import Manifest, RunParameters
from flows.orchestration.tasks import (
    STORY,
    PrefectRunner,
    declare_release_task,
    opaque,
    prepare_task,
    report_task,
    story_run_id,
    unchanged_report_task,
)
from flows.output.release import RELEASES
from flows.words import plural


class ReleaseResult(BaseModel):
    """What a run returns: where the release is and what went into it."""

    release_id: str
    path: str
    inputs: int
    published: int
    rejected: int
    skipped: int
    metadata_issues: int
    reused: int = 0
    unchanged: bool = False  # nothing published: the source and configuration are current's


def task_runner_for(params: RunParameters) -> TaskRunner[Any]:
    workers = params.workers or os.cpu_count() or 1
    if params.task_runner == "process":
        # The tasks run in threads and hand their shards to the engine's own worker
        # processes (flows.engine.pool), which ``corpus run`` starts before Prefect is
        # imported. Prefect's ProcessPoolTaskRunner would start workers that each import
        # Prefect (~3 s of CPU each) after the server is up. One thread per shard in flight.
        return ThreadPoolTaskRunner(max_workers=window(workers))
    if params.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    if not params.dask_address:
        raise ConfigError("task_runner 'dask' needs dask_address (tcp://host:8786)")
    # Imported here: dask and distributed take about a second to import.
    from prefect_dask.task_runners import DaskTaskRunner

    runner: TaskRunner[Any] = DaskTaskRunner(address=params.dask_address)
    return runner


def workers_description(params: RunParameters, workers: int) -> str:
    if params.task_runner == "dask":
        return f"the Dask cluster at {params.dask_address}"
    if params.task_runner == "thread":
        return plural(workers, "worker thread")
    return plural(workers, "worker process", "worker processes")


@flow(name="build-release")
def build_release(params: RunParameters) -> ReleaseResult:
    """Plan -> shards in parallel -> corpus step -> publish atomically -> report."""
    plan = prepare_task(params)
    workers = params.workers or os.cpu_count() or 1
    runner = PrefectRunner(
        workers=workers,
        where=workers_description(params, workers),
        quote_arguments=params.task_runner != "dask",
        pooled=params.task_runner == "process",
    )
    current = runner.step("unchanged", unchanged_release, plan)
    if current is not None:
        return _unchanged(current, plan)
    result = execute(plan, runner)
    assert result.release is not None and result.manifest is not None
    summary = result.summary
    report_task(opaque(result.manifest), opaque(summary), str(result.release), runner.story)
    return ReleaseResult(
        release_id=result.manifest.release_id,
        path=str(result.release),
        inputs=summary.published + summary.rejected,
        published=summary.published,
        rejected=summary.rejected,
        skipped=plan.discovery.skipped,
        metadata_issues=len(plan.discovery.metadata_issues),
        reused=summary.reused,
    )


def _unchanged(manifest: Manifest, plan: Plan) -> ReleaseResult:
    assert plan.out is not None
    counts = manifest.counts
    get_run_logger().info("unchanged: current is %s", manifest.release_id)
    path = str(plan.out / RELEASES / manifest.release_id)
    unchanged_report_task(manifest.release_id, path, story_run_id())
    return ReleaseResult(
        release_id=manifest.release_id,
        path=path,
        inputs=counts.get("inputs", 0),
        published=counts.get("published", 0),
        rejected=counts.get("rejected", 0),
        skipped=counts.get("skipped", 0),
        metadata_issues=counts.get("metadata_issues", 0),
        reused=counts.get("inputs", 0),
        unchanged=True,
    )


@flow(name="corpus-release", log_prints=False)
def corpus_release(params: RunParameters = RunParameters()) -> ReleaseResult:  # noqa: B008
    """Publish a validated, cleaned release of a document folder as Parquet.

    The task runner is part of the parameters, so the work runs in a subflow configured
    with it: the Prefect UI form and ``corpus run`` choose it the same way.
    """
    run = FlowRunContext.get()
    story = STORY.set(run.flow_run.id if run is not None and run.flow_run else None)
    try:
        result = build_release.with_options(
            task_runner=task_runner_for(params), timeout_seconds=params.timeout_minutes * 60
        )(params)
    finally:
        STORY.reset(story)
    if not result.unchanged:  # nothing was materialised
        declare_release_task(params.out, result.model_dump())
    return result


__all__ = ["ReleaseResult", "build_release", "corpus_release"]
