"""One shard, end to end: read inputs, reuse unchanged rows, process the rest, write parts.

This is the body of the ``process-shard`` task, kept free of Prefect so it can be tested
and profiled directly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from flows.arrow_schema import DOCUMENT_SCHEMA, REJECTED_SCHEMA
from flows.cache import INDEX_DIR, PreviousRow, index_table, processing_key, reuse_rows
from flows.discover import Discovery, read_input
from flows.process import SourceDocument, StageConfig, process_many
from flows.publish import (
    DOCUMENTS_DIR,
    REJECTED_DIR,
    documents_table,
    rejected_table,
    write_parts,
)
from flows.stages.metadata import sha256_hex
from flows.stages.types import Rejection
from flows.summary import Summary, summarize

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShardJob:
    """Everything a shard task needs; small enough to send to a worker process."""

    index: int
    root: str
    docs: tuple[SourceDocument, ...]
    cfg: StageConfig
    staging: str
    max_file_bytes: int
    config_fingerprint: str
    previous_release: str | None = None
    previous: Mapping[str, PreviousRow] | None = None


@dataclass(frozen=True, slots=True)
class ShardResult:
    summary: Summary
    processed: int
    reused: int


def run_shard(job: ShardJob) -> ShardResult:
    payloads: list[tuple[SourceDocument, bytes | Rejection]] = [
        (doc, doc.rejection or read_input(job.root, doc, job.max_file_bytes)) for doc in job.docs
    ]
    keys = {
        doc.source_path: processing_key(doc, sha256_hex(payload), job.config_fingerprint)
        for doc, payload in payloads
        if isinstance(payload, bytes)
    }
    previous = job.previous or {}
    hits = {
        path: previous[path]
        for path, key in keys.items()
        if path in previous and previous[path].key == key
    }
    todo = [(doc, payload) for doc, payload in payloads if doc.source_path not in hits]
    outcome = process_many(todo, job.cfg)

    documents = documents_table(outcome.documents)
    rejected = rejected_table(outcome.rejected)
    if hits and job.previous_release:
        release = Path(job.previous_release)
        documents = pa.concat_tables(
            [documents, reuse_rows(release, hits, DOCUMENTS_DIR, DOCUMENT_SCHEMA)]
        )
        rejected = pa.concat_tables(
            [rejected, reuse_rows(release, hits, REJECTED_DIR, REJECTED_SCHEMA)]
        )
    # Input order (by path), whether a row was just made or reused: runs are reproducible.
    documents = documents.sort_by("source_path")
    rejected = rejected.sort_by("source_path")

    tables = ((DOCUMENTS_DIR, documents), (REJECTED_DIR, rejected))
    files = write_parts(job.staging, job.index, tables)
    part = f"part-{job.index:05d}.parquet"
    entries = [
        (path, keys[path], folder, f"{folder}/{part}")
        for folder, table in tables
        for path in table.column("source_path").to_pylist()
        if path in keys
    ]
    write_parts(job.staging, job.index, [(INDEX_DIR, index_table(entries))])
    summary = summarize(documents, rejected, files)
    summary.reused = len(hits)
    return ShardResult(summary, processed=len(todo), reused=len(hits))


def plan_shards(
    discovery: Discovery,
    cfg: StageConfig,
    staging: str,
    size: int,
    max_file_bytes: int,
    config_fingerprint: str,
    previous_release: str | None = None,
    previous: Mapping[str, PreviousRow] | None = None,
) -> list[ShardJob]:
    """Every input in path order, cut into shards of ``size``; each job carries only its
    own slice of the previous release's index."""
    inputs = sorted(discovery.documents + discovery.rejected, key=lambda d: d.source_path)
    base = ShardJob(
        index=0,
        root=discovery.root,
        docs=(),
        cfg=cfg,
        staging=staging,
        max_file_bytes=max_file_bytes,
        config_fingerprint=config_fingerprint,
        previous_release=previous_release,
    )
    index_rows = previous or {}
    jobs = []
    for index, start in enumerate(range(0, len(inputs), size)):
        docs = tuple(inputs[start : start + size])
        mine = {
            d.source_path: index_rows[d.source_path] for d in docs if d.source_path in index_rows
        }
        jobs.append(dataclasses.replace(base, index=index, docs=docs, previous=mine))
    return jobs
