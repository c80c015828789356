"""The Prefect flow: wiring only. Stages live in ``flows.stages``, IO in ``flows.discover``
and ``flows.publish``, and the tasks that wrap them in ``flows.tasks``."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import BaseModel

from flows.cache import previous_release
from flows.discover import check_out_not_in_source, resolve_source
from flows.errors import ConfigError
from flows.models import RunParameters
from flows.publish import ensure_output, new_staging, output_lock
from flows.settings import config_fingerprint, stage_config
from flows.shard import plan_shards
from flows.stages.language import warm_up
from flows.summary import merge_all
from flows.tasks import (
    copy_unchanged_task,
    discover_task,
    load_index_task,
    load_rules_task,
    process_shard_task,
    publish_task,
    report_task,
)

T = TypeVar("T")


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


def opaque(value: T) -> T:
    """Pass ``value`` to a task without Prefect walking through it.

    Prefect visits every element of a task's arguments (to find futures to wait for); for
    shards of hundreds of documents and summaries of thousands of inputs that cost ~3 s a
    run. None of these arguments holds a future.
    """
    return cast(T, quote(value))


def _as_is(value: T) -> T:
    return value


def _warm_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the CLI decides, and stops us
    # Each worker process loads langdetect's profiles once (~0.9 s), before its first shard.
    warm_up()


def task_runner_for(params: RunParameters) -> TaskRunner[Any]:
    workers = params.workers or os.cpu_count() or 1
    if params.task_runner == "process":
        return ProcessPoolTaskRunner(max_workers=workers, initializer=_warm_worker)
    if params.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    if not params.dask_address:
        raise ConfigError("task_runner 'dask' needs dask_address (tcp://host:8786)")
    # Imported here: dask and distributed take about a second to import.
    from prefect_dask.task_runners import DaskTaskRunner

    runner: TaskRunner[Any] = DaskTaskRunner(address=params.dask_address)
    return runner


def preflight(params: RunParameters) -> Path:
    """Fail fast, before any work, on a missing source or an unusable output."""
    check_out_not_in_source(resolve_source(params.source), params.out)
    return ensure_output(params.out)


@flow(name="build-release")
def build_release(params: RunParameters) -> ReleaseResult:
    """Discover -> process shards in parallel -> publish atomically."""
    logger = get_run_logger()
    out = preflight(params)
    with output_lock(out):
        staging = new_staging(out)
        rules, rules_digest = load_rules_task(params)
        fingerprint = config_fingerprint(params, rules_digest)
        discovery = discover_task(params)
        previous = previous_release(out)
        jobs = plan_shards(
            discovery,
            stage_config(params, rules),
            str(staging),
            params.shard_size,
            params.max_file_bytes,
            fingerprint,
            str(previous) if previous else None,
            load_index_task(str(previous) if previous else None),
        )
        logger.info(
            "%d inputs in %d shards of up to %d", discovery.inputs, len(jobs), params.shard_size
        )
        # Called, not submitted: it runs in this process, and a shard that is unchanged as a
        # whole is copied without starting a worker process.
        copied = copy_unchanged_task(opaque(jobs))
        # Dask would take quote()'s tuple for a task graph of its own: no quote there.
        shard = _as_is if params.task_runner == "dask" else opaque
        futures = [process_shard_task.submit(shard(job)) for job in jobs if job.index not in copied]
        # Prefect's helpers are sync/async hybrids; called from a sync flow they return the id.
        progress = cast(UUID, create_progress_artifact(0.0, description=f"{len(jobs)} shards"))
        summaries = list(copied.values())
        for future in as_completed(futures):
            summaries.append(future.result())
            logger.info("progress: %d/%d shards done", len(summaries), len(jobs))
            update_progress_artifact(progress, 100.0 * len(summaries) / len(jobs))
        if not futures:
            logger.info("progress: %d/%d shards done", len(summaries), len(jobs))
            update_progress_artifact(progress, 100.0)
        summary = merge_all(summaries)
        path, manifest = publish_task(
            str(out),
            str(staging),
            opaque(summary),
            opaque(discovery),
            params,
            fingerprint,
        )
    report_task(opaque(manifest), opaque(summary), path)
    return ReleaseResult(
        release_id=Path(path).name,
        path=path,
        inputs=summary.published + summary.rejected,
        published=summary.published,
        rejected=summary.rejected,
        skipped=discovery.skipped,
        metadata_issues=len(discovery.metadata_issues),
        reused=summary.reused,
    )


@flow(name="corpus-release", log_prints=False)
def corpus_release(params: RunParameters = RunParameters()) -> ReleaseResult:  # noqa: B008
    """Publish a validated, cleaned release of a document folder as Parquet.

    The task runner is part of the parameters, so the work runs in a subflow configured
    with it: the Prefect UI form and ``corpus run`` choose it the same way.
    """
    return build_release.with_options(
        task_runner=task_runner_for(params), timeout_seconds=params.timeout_minutes * 60
    )(params)
