"""Execute a Plan: shard pass -> corpus step -> publish, on whichever Runner is given.

The engine decides everything; a :class:`Runner` only decides *where* each piece runs:
inline (tests), a local process pool (``corpus validate``), or Prefect tasks (the flow,
whose runner maps the shard work over Prefect's task runner and wraps the other steps as
tasks). No Prefect import here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow.parquet as pq

from flows import PIPELINE_VERSION
from flows.card import dataset_card, hub_languages, release_tables
from flows.contracts import (
    DOCUMENT_SCHEMA,
    DOCUMENTS_DIR,
    REJECTED_DIR,
    REJECTED_SCHEMA,
    SHARDS_DIR,
    empty_table,
)
from flows.croissant import CROISSANT, croissant
from flows.engine.corpus import (
    Decision,
    against_facts,
    apply_decisions,
    checks_for,
    corpus_step,
    dedup_description,
)
from flows.engine.furniture import apply_furniture, furniture_settings
from flows.engine.headstart import claim
from flows.engine.packing import EarlyPacking
from flows.engine.pairs import apply_pairs, pair_settings
from flows.engine.plan import Plan, run_context
from flows.engine.pool import draw_report, warm_report_drawing
from flows.engine.progress import Progress, log_progress
from flows.engine.shard import (
    ShardResult,
    ShardWork,
    part_name,
    prepare_shard,
    read_inputs,
    read_part_columns,
    work_shard,
)
from flows.engine.summary import SUMMARY_COLUMNS, Summary, build_manifest, merge_all, summarize
from flows.engine.unchanged import SourceFingerprint
from flows.hub import hub_license
from flows.models import Manifest
from flows.output.changes import release_changes
from flows.output.compact import (
    Packing,
    lift_extras,
    pack_release,
    uncompressed_bytes,
    value_counts,
)
from flows.output.previous import PreviousRelease, open_previous
from flows.output.release import (
    data_files,
    ensure_tables,
    finalize,
    output_lock,
    prune,
    read_manifest,
    release_id,
    staging_folder,
    write_bytes,
)
from flows.report import REPORT, Pairs, pair_counts, release_report
from flows.words import plural

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

    def progress(self, progress: Progress, news: str) -> None:
        """Shards and documents done so far, and what the last shard did (said once, by
        the runner: :func:`flows.engine.progress.log_progress`)."""
        ...


class InlineRunner:
    """Everything in this process, one shard after another (tests, small runs)."""

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        return (work_shard(work) for work in works)

    def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def progress(self, progress: Progress, news: str) -> None:
        log_progress(logger, progress, news)


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
    # The release this run reused from (its consumer files may be copied when unchanged).
    previous_release: Path | None = None
    source_fingerprint: str = ""  # of the bytes this run read (flows.engine.unchanged)
    input_fingerprint: str = ""  # the manifest's, streamed as the inputs were read
    source_shards: list[str] = field(default_factory=list)
    # Consumer files packed while the pairs step ran (flows.engine.packing), for publish.
    packing: Future[Packing] | None = None

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
        return _run(plan, runner, scratch, None, {})
    # A cold ``corpus run`` took the lock and started the first shards before its flow.
    head = claim(plan)
    with head.staging() if head else _staging(plan.out) as staging:
        # The engine works in shards/; publishing packs the consumer files above it.
        previous = open_previous(plan.out)
        started = head.works if head else {}
        result = _run(plan, runner, staging / SHARDS_DIR, previous, started)
        result.previous_release = previous.release if previous else None
        result.release, result.manifest = runner.step("publish", publish, plan, staging, result)
    # Housekeeping: a release that cannot be pruned stays; the new one is already current.
    try:
        runner.step("prune", prune, plan.out, plan.params.keep_releases)
    except Exception as error:  # noqa: BLE001 - pruning must never fail a published run
        logger.warning("pruning old releases failed: %s", error)
    return result


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    with output_lock(out), staging_folder(out) as staging:
        yield staging


def _run(
    plan: Plan,
    runner: Runner,
    staging: Path,
    previous: PreviousRelease | None,
    started: dict[int, ShardWork],
) -> RunResult:
    context = run_context(plan, staging, previous.path if previous else None)
    total = len(plan.shards)
    results: list[ShardResult] = []
    fingerprint = SourceFingerprint()

    def works() -> Iterator[ShardWork]:
        # Read in this process, shard by shard, as the runner asks for more work: each
        # input is read once, and a shard that is unchanged as a whole is copied here
        # without a worker.
        for job in plan.shards:
            sizes[job.index] = len(job.docs)
            work = started.pop(job.index, None)  # read and submitted: a head start's
            inputs = work.inputs if work else read_inputs(job, context.root, context.max_file_bytes)
            fingerprint.add(inputs)  # shards are read in order: the hash streams
            prepared = work or prepare_shard(job, context, previous, list(inputs))
            if isinstance(prepared, ShardResult):
                _done(prepared)
                continue
            yield prepared

    documents = 0
    sizes: dict[int, int] = {}  # inputs of each shard handed out and not yet done

    def _done(result: ShardResult) -> None:
        nonlocal documents
        results.append(result)
        documents += sizes.pop(result.index, 0)
        how = "copied" if result.copied else f"{result.processed} processed"
        runner.progress(
            Progress(len(results), total, documents, plan.inputs),
            f"shard {result.index}: {result.summary.published} published, "
            f"{result.summary.rejected} rejected ({how}, {result.reused} unchanged and reused)",
        )

    logger.info(
        "%s in %s of up to %d",
        plural(plan.inputs, "input"),
        plural(total, "shard"),
        plan.params.shard_size,
    )
    if total:  # the bar and the UI's progress artifact from the start, at 0 %
        runner.progress(Progress(0, total, 0, plan.inputs), "reading the inputs")
    for result in runner.shards(works()):
        _done(result)
    if previous is not None:
        previous.finish()  # the index parts no shard needed: their warnings, their paths
    warm_report_drawing()
    if total == 0:
        runner.progress(Progress(0, 0), "no inputs")
    results.sort(key=lambda r: r.index)
    params = plan.params
    checks = checks_for(
        params.dedup,
        threshold=params.dedup_threshold,
        published_before=previous.published() if previous else frozenset(),
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
    # Translations are linked on what is published: after duplicates and furniture. The
    # documents and rejected tables are final by then, unless the pairs step cleans one.
    with EarlyPacking(
        staging.parent if plan.out is not None else None,
        params.target_file_bytes,
        previous.release if previous else None,
    ) as early:
        written, pair_counts = runner.step(
            "pairs",
            apply_pairs,
            staging,
            pair_settings(params.translation_pairs, params.translation_cleaning),
            copies,
            previous.path if previous else None,
        )
        packed = early.keep_unless(written)
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
        source_fingerprint=fingerprint.hexdigest(plan),
        input_fingerprint=fingerprint.input_fingerprint(),
        source_shards=fingerprint.shards,
        packing=packed,
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
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    manifest = _manifest(plan, result, created)
    # The report needs no consumer file: it is drawn (on an idle shard worker when there
    # is one) while the consumer files are packed.
    drawing = _start_report(staging, manifest, result) if staging.is_dir() else None
    if staging.is_dir():  # not when retried after the rename (finalize handles that)
        previous = read_manifest(result.previous_release) if result.previous_release else None
        done, result.packing = (result.packing.result() if result.packing else None), None
        pack_release(
            staging, plan.params.target_file_bytes, result.previous_release, previous, done=done
        )
        lift_extras(staging)
    ensure_tables(staging)
    manifest.files = data_files(staging)
    if drawing is not None:
        _write_report(staging, manifest, drawing)
    licenses = _licenses(staging)
    sizes = {
        name: uncompressed_bytes(staging / name)
        for name in release_tables(manifest)
        if (staging / name).is_dir()
    }
    card = dataset_card(manifest, result.summary, licenses, sizes)
    final = finalize(staging, manifest, card, plan.out, [_croissant(manifest, licenses)])
    return final, manifest


def _manifest(plan: Plan, result: RunResult, created: dt.datetime) -> Manifest:
    """The release's manifest but its files (known once the consumer files are packed)."""
    assert plan.out is not None
    manifest = build_manifest(
        release_id="pending",
        created_at=created,
        pipeline_version=PIPELINE_VERSION,
        summary=result.summary,
        skipped=plan.discovery.skipped,
        files=[],
        metadata_issues=plan.discovery.metadata_issues,
        parameters=plan.params.model_dump(mode="json"),
        config_fingerprint=plan.release_fingerprint,
        input_fingerprint=result.input_fingerprint,
    )
    manifest.source_fingerprint = result.source_fingerprint
    manifest.source_shards = result.source_shards
    manifest.corpus = dict(sorted(Counter(d.reason.value for d in result.decisions).items()))
    manifest.pairs = dict(sorted(result.pairs.items()))
    params = plan.params
    manifest.dedup = dedup_description(params.dedup, params.dedup_threshold, params.dedup_against)
    manifest.warnings = list(result.summary.warnings)
    manifest.release_id = release_id(created, manifest.input_fingerprint, plan.out)
    return manifest


def _licenses(staging: Path) -> dict[str | None, int]:
    """Published documents per declared ``license`` (None: not declared)."""
    if not (staging / DOCUMENTS_DIR).is_dir():
        return {}  # a retried publish: the folder is a release already
    counts = value_counts(staging / DOCUMENTS_DIR, "license")
    return {name or None: n for name, n in counts.items()}


def _croissant(manifest: Manifest, licenses: dict[str | None, int]) -> tuple[str, str]:
    """``croissant.json``: the published tables in MLCommons Croissant 1.0."""
    uniform = hub_license(licenses)
    document = croissant(
        manifest,
        release_tables(manifest),
        hub_languages(manifest),
        uniform["license"] if uniform["license"] not in ("other", "unknown") else None,
    )
    return CROISSANT, json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _start_report(staging: Path, manifest: Manifest, result: RunResult) -> Future[str]:
    """``changes`` against the previous release into the manifest, then ``report.html``
    drawn from it: by the idle shard workers when this process has them, each its share
    of the plots (:func:`flows.engine.pool.draw_report`), else here. Both read the shard parts
    (the rows the consumer files are packed from), so they need not wait for the packing."""
    before = read_manifest(result.previous_release) if result.previous_release else None
    parts = (
        [f.path for f in before.files if f.path.startswith(f"{DOCUMENTS_DIR}/")] if before else []
    )
    manifest.changes = release_changes(
        staging / SHARDS_DIR,
        result.previous_release if before else None,
        before.release_id if before else None,
        parts,
    )
    if manifest.changes is None:
        manifest.warnings.append("the previous release's documents could not be read: no diff")
    pairs = _pairs(staging / SHARDS_DIR)
    drawing = draw_report(manifest, result.summary, before, pairs)
    if drawing is not None:
        return drawing
    drawn: Future[str] = Future()
    try:
        drawn.set_result(release_report(manifest, result.summary, before, pairs))
    except Exception as error:  # noqa: BLE001 - said by _write_report, as a warning
        drawn.set_exception(error)
    return drawn


def _write_report(staging: Path, manifest: Manifest, drawing: Future[str]) -> None:
    """``report.html`` into the release. A report that cannot be drawn is a warning, never
    a lost release."""
    try:
        write_bytes(drawing.result().encode("utf-8"), staging / REPORT)
    except Exception as error:  # noqa: BLE001 - the release is complete without its report
        logger.warning("report.html not written: %s: %s", type(error).__name__, error)
        manifest.warnings.append(f"report.html not written: {type(error).__name__}: {error}")


def _pairs(release: Path) -> Pairs | None:
    """The optional ``pairs`` table's language columns, when a release has one."""
    files = sorted((release / "pairs").glob("*.parquet"))
    if not files:
        return None
    columns: dict[str, list[Any]] = {}
    for path in files:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        wanted = [n for n in names if "lang" in n][:2] or names[:1]
        table = parquet.read(columns=wanted)
        for name in wanted:
            columns.setdefault(name, []).extend(table.column(name).to_pylist())
    return pair_counts(columns)


__all__ = ["InlineRunner", "RunResult", "Runner", "execute", "publish"]
