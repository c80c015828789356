"""Prefect tasks: thin wrappers around one engine call each, and the Runner that uses them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.utilities.annotations import quote

from flows.card import counts_table, run_report
from flows.engine.plan import Plan, prepare
from flows.engine.pool import window
from flows.engine.shard import ShardResult, ShardWork, work_shard
from flows.engine.summary import Summary
from flows.errors import CorpusError
from flows.models import Manifest, RunParameters

T = TypeVar("T")

# Tasks that read or write files retry with backoff. Prefect's input-hash cache is off:
# parameters hold whole shards, and unchanged documents are reused per document instead.
RETRIES = 2
BACKOFF: list[float] = [1.0, 5.0]
# Steps retried after a failure: reading facts, and publishing, whose finalize is idempotent
# (a retry after the rename returns the release it already published). Pruning is
# housekeeping: not retried, and its failure never fails a published run.
RETRIED_STEPS = frozenset({"corpus-step", "publish"})
# How long a failing run waits for its other shards before it removes the staging folder.
SHARD_DRAIN_SECONDS = 60.0


def retry_unless_expected(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may be transient; an expected failure (a CorpusError: a full disk, a bad
    file) fails at once, without seconds of backoff and repeated tracebacks."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, CorpusError)


def opaque(value: T) -> T:
    """Pass ``value`` to a task without Prefect walking through it (for shards of hundreds
    of documents that cost ~3 s a run). None of these arguments holds a future."""
    return cast(T, quote(value))


@task(
    name="prepare",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_unless_expected,
    cache_policy=NO_CACHE,
)
def prepare_task(params: RunParameters) -> Plan:
    plan = prepare(params)
    found = plan.discovery
    get_run_logger().info(
        "%d inputs (%d rejected before reading), %d files skipped, %d metadata issues",
        found.inputs,
        len(found.rejected),
        found.skipped,
        len(found.metadata_issues),
    )
    return plan


@task(
    name="process-shard",
    task_run_name="process-shard-{work.index}",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_condition_fn=retry_unless_expected,
    cache_policy=NO_CACHE,
)
def process_shard_task(work: ShardWork) -> ShardResult:
    # What the shard did is said once, by the flow as it collects the result (progress).
    return work_shard(work)


@task(name="report", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def report_task(manifest: Manifest, summary: Summary, path: str) -> None:
    """Artifacts for the Prefect UI; keyed, so each run adds a version to the same artifact."""
    create_table_artifact(
        counts_table(summary),
        key="corpus-release-counts",
        description="Inputs per outcome, stage, rejection reason, language, encoding and rule",
    )
    create_markdown_artifact(
        run_report(manifest, summary, path),
        key="corpus-release-summary",
        description=f"Release {manifest.release_id}",
    )
    create_link_artifact(
        Path(path).resolve().as_uri(),
        link_text=f"release {manifest.release_id}",
        key="corpus-release-link",
        description="The published release folder",
    )


class PrefectRunner:
    """Maps the engine's shard work over the flow's task runner, a bounded number in
    flight, and runs the engine's other steps as tasks of their own."""

    def __init__(self, workers: int, quote_arguments: bool = True) -> None:
        self.workers = workers
        # Dask would take quote()'s tuple for a task graph of its own: no quote there.
        self.wrap: Callable[[Any], Any] = opaque if quote_arguments else (lambda value: value)
        self._artifact: UUID | None = None

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        pending: list[PrefectFuture[ShardResult]] = []
        try:
            for work in works:
                pending.append(process_shard_task.submit(self.wrap(work)))
                if len(pending) >= window(self.workers):
                    done = next(as_completed(pending))
                    pending.remove(done)
                    yield done.result()
            while pending:
                done = next(as_completed(pending))
                pending.remove(done)
                yield done.result()
        except Exception:
            # A failed shard fails the run: let the others finish (bounded) before the
            # staging folder is removed, so none writes into it afterwards.
            for future in pending:
                future.wait(timeout=SHARD_DRAIN_SECONDS / max(1, len(pending)))
            raise

    def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        retries = RETRIES if name in RETRIED_STEPS else 0
        wrapped = task(
            name=name,
            retries=retries,
            retry_delay_seconds=BACKOFF,
            retry_condition_fn=retry_unless_expected,
            cache_policy=NO_CACHE,
        )(fn)
        return wrapped(*[self.wrap(arg) for arg in args])

    def progress(self, done: int, total: int, news: str) -> None:
        # Prefect's helpers are sync/async hybrids; called from a sync flow they return the id.
        percent = 100.0 * done / total if total else 100.0
        if self._artifact is None:
            self._artifact = cast(
                UUID, create_progress_artifact(percent, description=f"{total} shards")
            )
        else:
            update_progress_artifact(self._artifact, percent)
        # The run's logger: the line reaches the terminal and the Prefect UI alike.
        get_run_logger().info("progress: %d/%d shards done; %s", done, total, news)
