"""Prefect tasks: thin wrappers, one call each. Retries only where file IO can fail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import PIPELINE_VERSION
from flows.cache import PreviousRow, load_index
from flows.discover import Discovery, discover
from flows.models import Manifest, RunParameters
from flows.publish import data_files, ensure_tables, finalize, prune, release_id
from flows.settings import load_rules
from flows.shard import ShardJob, copy_unchanged_shard, run_shard
from flows.stages.boilerplate import RuleSet
from flows.summary import Summary, build_manifest, counts_table, dataset_card, run_report

# Every task here reads or writes files (or the Prefect API), so each retries with backoff.
# Prefect's input-hash cache is off: parameters hold whole shards, and unchanged documents
# are reused per document by flows.cache instead.
RETRIES = 2
BACKOFF: list[float] = [1.0, 5.0]


@task(name="load-rules", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def load_rules_task(params: RunParameters) -> tuple[RuleSet, str]:
    return load_rules(params)


@task(name="discover", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def discover_task(params: RunParameters) -> Discovery:
    found = discover(params.source, params.include, params.exclude, params.max_file_bytes)
    get_run_logger().info(
        "%d inputs (%d rejected before reading), %d files skipped, %d metadata issues",
        found.inputs,
        len(found.rejected),
        found.skipped,
        len(found.metadata_issues),
    )
    return found


@task(name="load-index", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def load_index_task(release: str | None) -> dict[str, PreviousRow]:
    index = load_index(Path(release) if release else None)
    if release:
        get_run_logger().info(
            "previous release %s indexes %d inputs", Path(release).name, len(index)
        )
    return index


@task(
    name="copy-unchanged-shards",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    cache_policy=NO_CACHE,
)
def copy_unchanged_task(jobs: list[ShardJob]) -> dict[int, Summary]:
    """Shards whose inputs all match the previous release, copied; shard index -> summary."""
    copied = {}
    for job in jobs:
        result = copy_unchanged_shard(job)
        if result is not None:
            copied[job.index] = result.summary
            get_run_logger().info(
                "shard %d: %d published, %d rejected (all %d unchanged: parts copied)",
                job.index,
                result.summary.published,
                result.summary.rejected,
                result.reused,
            )
    if jobs and jobs[0].previous_release:
        get_run_logger().info(
            "%d of %d shards unchanged: parts copied from release %s",
            len(copied),
            len(jobs),
            Path(jobs[0].previous_release).name,
        )
    return copied


@task(
    name="process-shard",
    task_run_name="process-shard-{job.index}",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    cache_policy=NO_CACHE,
)
def process_shard_task(job: ShardJob) -> Summary:
    result = run_shard(job)
    get_run_logger().info(
        "shard %d: %d published, %d rejected (%d processed, %d unchanged and reused)",
        job.index,
        result.summary.published,
        result.summary.rejected,
        result.processed,
        result.reused,
    )
    return result.summary


def publish_task(
    out: str,
    staging: str,
    summary: Summary,
    discovery: Discovery,
    params: RunParameters,
    config_fingerprint: str,
) -> tuple[str, Manifest]:
    """Publish (retried; finalize is idempotent), then prune outside the retries: a failed
    prune must never re-run a publish that already switched ``current``."""
    published = publish_release_task(out, staging, summary, discovery, params, config_fingerprint)
    prune_task(out, params.keep_releases)
    return published


@task(name="publish", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def publish_release_task(
    out: str,
    staging: str,
    summary: Summary,
    discovery: Discovery,
    params: RunParameters,
    config_fingerprint: str,
) -> tuple[str, Manifest]:
    staging_path, out_path = Path(staging), Path(out)
    ensure_tables(staging_path)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    manifest = build_manifest(
        release_id="pending",
        created_at=created,
        pipeline_version=PIPELINE_VERSION,
        summary=summary,
        skipped=discovery.skipped,
        files=data_files(staging_path),
        metadata_issues=discovery.metadata_issues,
        parameters=params.model_dump(mode="json"),
        config_fingerprint=config_fingerprint,
    )
    manifest.release_id = release_id(created, manifest.input_fingerprint, out_path)
    final = finalize(staging_path, manifest, dataset_card(manifest, summary), out_path)
    return str(final), manifest


@task(name="prune", cache_policy=NO_CACHE)
def prune_task(out: str, keep: int) -> None:
    """Housekeeping, not retried: a failure is logged and never fails the run."""
    try:
        prune(Path(out), keep)
    except Exception as error:  # noqa: BLE001 - the release is published whatever happens here
        get_run_logger().warning("pruning old releases failed: %r", error)


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
