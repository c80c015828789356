"""Execute a Plan: shard pass -> corpus step -> publish, on whichever Runner is given.

The engine decides everything; a :class:`Runner` only decides *where* each piece runs:
inline (tests), a local process pool (``corpus validate``), or Prefect tasks (the flow,
whose runner maps the shard work over Prefect's task runner and wraps the other steps as
tasks). No Prefect import here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from flows import PIPELINE_VERSION
from flows.card import dataset_card
from flows.contracts import (
    DOCUMENT_SCHEMA,
    DOCUMENTS_DIR,
    REJECTED_DIR,
    REJECTED_SCHEMA,
    empty_table,
)
from flows.engine.corpus import (
    Decision,
    against_facts,
    apply_decisions,
    checks_for,
    corpus_step,
    dedup_description,
    published_paths,
)
from flows.engine.furniture import apply_furniture, furniture_settings
from flows.engine.pairs import apply_pairs, pair_settings
from flows.engine.plan import Plan
from flows.engine.shard import (
    RunContext,
    ShardResult,
    ShardWork,
    part_name,
    prepare_shard,
    read_part_columns,
    work_shard,
)
from flows.engine.summary import SUMMARY_COLUMNS, Summary, build_manifest, merge_all, summarize
from flows.models import Manifest
from flows.output.previous import PreviousRelease, open_previous
from flows.output.release import (
    data_files,
    ensure_tables,
    finalize,
    output_lock,
    prune,
    release_id,
    staging_folder,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Runner(Protocol):
    """Where the pieces of a run execute."""

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        """Run :func:`work_shard` on each work, yielding results as they complete."""
        ...

    def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one step of the run (corpus step, publish) and return its result."""
        ...

    def progress(self, done: int, total: int, news: str) -> None:
        """Shards done so far, and what the last one did (said once, by the runner)."""
        ...


class InlineRunner:
    """Everything in this process, one shard after another (tests, small runs)."""

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        return (work_shard(work) for work in works)

    def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def progress(self, done: int, total: int, news: str) -> None:
        logger.info("progress: %d/%d shards done; %s", done, total, news)


@dataclass(slots=True)
class RunResult:
    """What a run did: the release it published (if any) and its counts."""

    summary: Summary
    decisions: list[Decision]
    pairs: dict[str, int] = field(default_factory=dict)  # translation-pairs counts
    processed: int = 0
    copied_shards: int = 0
    release: Path | None = None
    manifest: Manifest | None = None
    shard_results: list[ShardResult] = field(default_factory=list)

    @property
    def release_id(self) -> str | None:
        return self.manifest.release_id if self.manifest else None


def execute(plan: Plan, runner: Runner, scratch: Path | None = None) -> RunResult:
    """Run the plan. With ``plan.out`` it publishes a release under the output's lock;
    without, the shards are written to ``scratch``, a folder the caller owns and reads
    (``validate`` runs the same code and reports from it)."""
    if plan.out is None:
        if scratch is None:
            raise ValueError("a plan that publishes nothing needs a scratch folder")
        return _run(plan, runner, scratch, previous=None)
    with output_lock(plan.out), staging_folder(plan.out) as staging:
        result = _run(plan, runner, staging, previous=open_previous(plan.out))
        result.release, result.manifest = runner.step("publish", publish, plan, staging, result)
    # Housekeeping: a release that cannot be pruned stays; the new one is already current.
    try:
        runner.step("prune", prune, plan.out, plan.params.keep_releases)
    except Exception as error:  # noqa: BLE001 - pruning must never fail a published run
        logger.warning("pruning old releases failed: %s", error)
    return result


def _run(plan: Plan, runner: Runner, staging: Path, previous: PreviousRelease | None) -> RunResult:
    context = RunContext(
        root=str(plan.root),
        cfg=plan.config,
        staging=str(staging),
        max_file_bytes=plan.params.max_file_bytes,
        config_fingerprint=plan.document_fingerprint,
        previous=str(previous.path) if previous else None,
    )
    total = len(plan.shards)
    results: list[ShardResult] = []

    def works() -> Iterator[ShardWork]:
        # Read in this process, shard by shard, as the runner asks for more work: each
        # input is read once, and a shard that is unchanged as a whole is copied here
        # without a worker.
        for job in plan.shards:
            prepared = prepare_shard(job, context, previous)
            if isinstance(prepared, ShardResult):
                _done(prepared)
                continue
            yield prepared

    def _done(result: ShardResult) -> None:
        results.append(result)
        how = "copied" if result.copied else f"{result.processed} processed"
        runner.progress(
            len(results),
            total,
            f"shard {result.index}: {result.summary.published} published, "
            f"{result.summary.rejected} rejected ({how}, {result.reused} unchanged and reused)",
        )

    logger.info("%d inputs in %d shards of up to %d", plan.inputs, total, plan.params.shard_size)
    for result in runner.shards(works()):
        _done(result)
    if total == 0:
        runner.progress(0, 0, "no inputs")
    results.sort(key=lambda r: r.index)
    params = plan.params
    checks = checks_for(
        params.dedup,
        threshold=params.dedup_threshold,
        published_before=published_paths(previous.index) if previous else frozenset(),
        against=against_facts(params.dedup_against, staging, params.dedup == "near")
        if params.dedup != "off"
        else None,
    )
    decisions = runner.step("corpus-step", corpus_step, staging, checks)
    # Always: a copied or reused part may hold a ``duplicates`` count this run changes.
    touched = apply_decisions(staging, decisions, PIPELINE_VERSION)
    # Furniture is learned from the documents that stay: five copies of one article must
    # not make its short lines "repeated across the corpus".
    copies = frozenset(decision.source_path for decision in decisions)
    touched |= runner.step("furniture", apply_furniture, staging, furniture_settings(plan), copies)
    # Translations are linked on what is published: after duplicates and furniture.
    written, pair_counts = runner.step(
        "pairs",
        apply_pairs,
        staging,
        pair_settings(params.translation_pairs, params.translation_cleaning),
        copies,
        previous.path if previous else None,
    )
    touched |= written
    if touched:
        results = [_resummarize(r, staging, touched) for r in results]
    summary = merge_all(r.summary for r in results)
    if previous is not None:
        summary.warnings = previous.warnings + summary.warnings
    return RunResult(
        summary=summary,
        decisions=decisions,
        pairs=pair_counts,
        processed=sum(r.processed for r in results),
        copied_shards=sum(r.copied for r in results),
        shard_results=results,
    )


def _resummarize(result: ShardResult, staging: Path, touched: set[str]) -> ShardResult:
    """A shard's counts again, after the corpus step rewrote its parts."""
    part = part_name(result.index)
    if f"{DOCUMENTS_DIR}/{part}" not in touched:
        return result
    tables = []
    files = []
    for folder, schema in ((DOCUMENTS_DIR, DOCUMENT_SCHEMA), (REJECTED_DIR, REJECTED_SCHEMA)):
        path = staging / folder / part
        columns = SUMMARY_COLUMNS[folder]
        if path.exists():
            tables.append(read_part_columns(path, schema, columns))
            files.append(f"{folder}/{part}")
        else:
            tables.append(empty_table(schema).select(list(columns)))
    summary = summarize(tables[0], tables[1], files)
    summary.reused = result.summary.reused
    summary.warnings = result.summary.warnings
    return ShardResult(result.index, summary, result.processed, result.reused, result.copied)


def publish(plan: Plan, staging: Path, result: RunResult) -> tuple[Path, Manifest]:
    """Manifest and card, then the atomic switch of ``current``. Idempotent: called again
    after it succeeded (a retried task), ``finalize`` finds the release it already published
    and returns it -- and updates ``manifest`` to it -- instead of publishing anything new."""
    assert plan.out is not None
    ensure_tables(staging)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    manifest = build_manifest(
        release_id="pending",
        created_at=created,
        pipeline_version=PIPELINE_VERSION,
        summary=result.summary,
        skipped=plan.discovery.skipped,
        files=data_files(staging),
        metadata_issues=plan.discovery.metadata_issues,
        parameters=plan.params.model_dump(mode="json"),
        config_fingerprint=plan.release_fingerprint,
    )
    manifest.corpus = dict(sorted(Counter(d.reason.value for d in result.decisions).items()))
    manifest.pairs = dict(sorted(result.pairs.items()))
    params = plan.params
    manifest.dedup = dedup_description(params.dedup, params.dedup_threshold, params.dedup_against)
    manifest.warnings = list(result.summary.warnings)
    manifest.release_id = release_id(created, manifest.input_fingerprint, plan.out)
    final = finalize(staging, manifest, dataset_card(manifest, result.summary), plan.out)
    return final, manifest


__all__ = ["InlineRunner", "RunResult", "Runner", "execute", "publish"]
