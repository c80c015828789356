"""Prefect tasks: thin wrappers, one call each. Retries only where file IO can fail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import PIPELINE_VERSION
from flows.discover import Discovery, discover, read_input
from flows.models import RunParameters
from flows.process import SourceDocument, StageConfig, process_many
from flows.publish import data_files, ensure_tables, finalize, prune, release_id, write_shard
from flows.settings import load_rules
from flows.stages.boilerplate import RuleSet
from flows.stages.types import Rejection
from flows.summary import Summary, build_manifest, dataset_card, summarize

# Every task here reads or writes files, so each retries with backoff. Parameters hold
# whole shards: hashing them for Prefect's default cache key would cost more than the work.
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


@task(
    name="process-shard",
    task_run_name="process-shard-{index}",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    cache_policy=NO_CACHE,
)
def process_shard_task(
    index: int,
    root: str,
    docs: Sequence[SourceDocument],
    cfg: StageConfig,
    staging: str,
    max_file_bytes: int,
) -> Summary:
    items: list[tuple[SourceDocument, bytes | Rejection]] = [
        (doc, doc.rejection or read_input(root, doc, max_file_bytes)) for doc in docs
    ]
    outcome = process_many(items, cfg)
    files = write_shard(staging, index, outcome.documents, outcome.rejected)
    get_run_logger().info(
        "shard %d: %d published, %d rejected", index, len(outcome.documents), len(outcome.rejected)
    )
    return summarize(outcome, files)


@task(name="publish", retries=RETRIES, retry_delay_seconds=BACKOFF, cache_policy=NO_CACHE)
def publish_task(
    out: str,
    staging: str,
    summary: Summary,
    discovery: Discovery,
    params: RunParameters,
    config_fingerprint: str,
) -> str:
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
    prune(out_path, params.keep_releases)
    return str(final)
