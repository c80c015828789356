"""Prefect tasks: thin wrappers around one engine call each, and the Runner that uses them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import (
    MarkdownArtifact,
    ProgressArtifact,
    TableArtifact,
    update_progress_artifact,
)
from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.utilities.annotations import quote

from flows.card import counts_table, run_report
from flows.engine.headstart import planned
from flows.engine.plan import Plan, prepare
from flows.engine.pool import pooled_shard, starting_workers, window
from flows.engine.progress import Progress, log_progress
from flows.engine.shard import ShardResult, ShardWork, work_shard
from flows.engine.summary import Summary
from flows.errors import CorpusError
from flows.models import Manifest, RunParameters
from flows.words import plural

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
    # ``corpus run`` may have planned it already (its head start): one walk of the source.
    plan = planned(params) or prepare(params)
    found = plan.discovery
    get_run_logger().info(
        "%s (%d rejected before reading), %s skipped, %s",
        plural(found.inputs, "input"),
        found.rejected_count,
        plural(found.skipped, "file"),
        plural(len(found.metadata_issues), "metadata issue"),
    )
    return plan


# One shard task's options, whichever way it runs the shard (here, or on the engine's pool).
SHARD_TASK: dict[str, Any] = {
    "name": "process-shard",
    "task_run_name": "process-shard-{work.index}",
    "retries": RETRIES,
    "retry_delay_seconds": BACKOFF,
    "retry_condition_fn": retry_unless_expected,
    "cache_policy": NO_CACHE,
}


@task(**SHARD_TASK)
def process_shard_task(work: ShardWork) -> ShardResult:
    # What the shard did is said once, by the flow as it collects the result (progress).
    return work_shard(work)


@task(**SHARD_TASK)
def pooled_shard_task(work: ShardWork, workers: int) -> ShardResult:
    """``process-shard`` in a thread of the flow's process, handing the shard to this
    process's shard workers (:func:`flows.engine.pool.local_pool`): workers that never
    import Prefect, started with the command (``corpus run``) before Prefect is imported."""
    return pooled_shard(work, workers)


# The flow run ``corpus-release`` sets for its subflow (same thread, so the same context):
# the story's id without the two API reads that walk up the run tree.
STORY: ContextVar[UUID | None] = ContextVar("corpus_story_run", default=None)


def story_run_id() -> UUID | None:
    """The flow run a user opens: the top of this run's tree (``corpus-release``, whose
    URL the CLI prints and which a deployment starts), or this run when it has no parent.
    The artifacts go there: the UI does not show a subflow's artifacts on its parent."""
    known = STORY.get()
    if known is not None:
        return known
    from prefect.runtime import flow_run

    return UUID(flow_run.root_flow_run_id) if flow_run.id else None


@task(name="report", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def report_task(manifest: Manifest, summary: Summary, path: str, story: UUID | None) -> None:
    """Artifacts for the Prefect UI, on the run the user opens (``story``); keyed, so each
    run adds a version to the same artifact. No link: the release is a local folder, and a
    ``file://`` link does not open from a web page; the summary names its path."""
    TableArtifact(
        table=counts_table(summary),
        key="corpus-release-counts",
        description="Inputs per outcome, stage, rejection reason, language, encoding and rule",
        flow_run_id=story,
    ).create()
    MarkdownArtifact(
        markdown=run_report(manifest, summary, path),
        key="corpus-release-summary",
        description=f"Release {manifest.release_id}",
        flow_run_id=story,
    ).create()


@task(name="report-unchanged", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def unchanged_report_task(release_id: str, path: str, story: UUID | None) -> None:
    """The run the user opens says why it published nothing (the same key as a release's
    summary, so the artifact's history reads as one story)."""
    MarkdownArtifact(
        markdown=(
            f"# Unchanged: current is `{release_id}`\n\n"
            "The source and the configuration are those of the current release, and every "
            f"file of it still hashes to its manifest: nothing was published.\n\n"
            f"Release: `{path}`. To publish a new release anyway, run with "
            "`force_release` (`corpus run --force-release`).\n"
        ),
        key="corpus-release-summary",
        description=f"Unchanged: current is {release_id}",
        flow_run_id=story,
    ).create()


# Characters Prefect refuses in an asset key (prefect.types.names); a path holding one
# is still one asset, under a key with "_" in their place.
_NOT_IN_ASSET_KEYS = frozenset("\n\r\t\0 #?&%\"'<>[]{}|\\^`")


def release_asset(out: str) -> Asset:
    """The output folder as a Prefect asset: each run that publishes materialises it."""
    path = Path(out).resolve().as_posix()
    key = "file://" + "".join("_" if c in _NOT_IN_ASSET_KEYS else c for c in path)
    return Asset(
        key=key,
        properties=AssetProperties(
            name=f"corpus {Path(path).name}",
            description=f"Parquet releases of a validated document corpus in `{path}`; "
            "`current` points to the latest.",
        ),
    )


def _declare(result: dict[str, Any], asset: str) -> None:
    add_asset_metadata(asset, result)
    # The run the user opens shows the outcome in its own log, not only its subflow's.
    get_run_logger().info(
        "release %s: %d of %s published, %d rejected, %d unchanged and reused -> %s "
        "(per-shard logs: the subflow build-release)",
        result["release_id"],
        result["published"],
        plural(result["inputs"], "input"),
        result["rejected"],
        result["reused"],
        result["path"],
    )


def declare_release_task(out: str, result: dict[str, Any]) -> None:
    """Tell Prefect's asset graph that this run materialised the output folder, with the
    release's id and counts as the materialisation's metadata (the event feed lists them
    per run). Runs in the flow the user started, so the asset links to that run."""
    asset = release_asset(out)
    materialize(asset, name="declare-release", cache_policy=NO_CACHE)(_declare)(result, asset.key)


class PrefectRunner:
    """Maps the engine's shard work over the flow's task runner, a bounded number in
    flight, and runs the engine's other steps as tasks of their own."""

    def __init__(
        self, workers: int, where: str, quote_arguments: bool = True, pooled: bool = False
    ) -> None:
        self.workers = workers
        self.pooled = pooled  # tasks in threads, their shards on flows.engine.pool's workers
        self.where = where  # for the log: "2 worker processes", "the Dask cluster at ..."
        # Dask would take quote()'s tuple for a task graph of its own: no quote there.
        self.wrap: Callable[[Any], Any] = opaque if quote_arguments else (lambda value: value)
        self._artifact: UUID | None = None
        self.story = story_run_id()

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        pending: list[PrefectFuture[ShardResult]] = []
        started = False
        try:
            for work in works:
                if not started:
                    started = True
                    # The first result is a pool start and a whole shard away: say so.
                    get_run_logger().info(starting_workers(self.where))
                pending.append(self._submit(work))
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

    def _submit(self, work: ShardWork) -> PrefectFuture[ShardResult]:
        if self.pooled:
            return pooled_shard_task.submit(self.wrap(work), self.workers)
        return process_shard_task.submit(self.wrap(work))

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

    def progress(self, progress: Progress, news: str) -> None:
        if self._artifact is None:
            artifact = ProgressArtifact(
                progress=progress.percent,
                key="corpus-release-progress",
                description=progress.describe(),
                flow_run_id=self.story,
            ).create()
            self._artifact = cast(Any, artifact).id
        else:
            # Prefect's helpers are sync/async hybrids: called from a sync flow, they run.
            update_progress_artifact(
                self._artifact, progress.percent, description=progress.describe()
            )
        # The run's logger: the line reaches the terminal and the Prefect UI alike.
        log_progress(get_run_logger(), progress, news)
