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
import pyarrow.parquet as pq

from flows.arrow_schema import DOCUMENT_SCHEMA, REJECTED_SCHEMA
from flows.cache import (
    INDEX_DIR,
    PreviousRow,
    empty_table,
    index_table,
    processing_key,
    read_parquet,
    reuse_rows,
)
from flows.process import SourceDocument, StageConfig, process_many
from flows.publish import (
    DOCUMENTS_DIR,
    REJECTED_DIR,
    copy_file,
    documents_table,
    rejected_table,
    write_parts,
)
from flows.source.listing import Discovery
from flows.source.reading import read_input
from flows.stages.metadata import sha256_hex
from flows.stages.types import Rejection
from flows.summary import SUMMARY_COLUMNS, Summary, summarize

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


def copy_unchanged_shard(job: ShardJob) -> ShardResult | None:
    """The previous release's parts of this shard, copied byte for byte, when the shard is
    the same slice of the same unchanged inputs; None as soon as anything differs.

    A nightly run over a mostly unchanged corpus then costs a read and a hash per input and
    a file copy per shard: no decoding of Parquet, no worker processes. Anything short of
    an exact match (an input added, removed or changed in the slice, a read failure, a
    different shard size) falls back to :func:`run_shard`, which reuses row by row.
    """
    previous = job.previous or {}
    if not job.previous_release or len(previous) != len(job.docs):
        return None
    part = f"part-{job.index:05d}.parquet"
    tables = {f"{DOCUMENTS_DIR}/{part}": DOCUMENT_SCHEMA, f"{REJECTED_DIR}/{part}": REJECTED_SCHEMA}
    if any(row.file not in tables for row in previous.values()):
        return None
    release = Path(job.previous_release)
    present = [name for name in tables if (release / name).is_file()]
    try:
        rows = sum(pq.ParquetFile(release / name).metadata.num_rows for name in present)
    except (OSError, pa.ArrowInvalid):
        return None
    # Every input has exactly one row, so equal counts mean the parts hold no other input.
    if rows != len(job.docs) or not (release / INDEX_DIR / part).is_file():
        return None
    for doc in job.docs:
        payload = doc.rejection or read_input(job.root, doc, job.max_file_bytes)
        if not isinstance(payload, bytes):
            return None
        key = processing_key(doc, sha256_hex(payload), job.config_fingerprint)
        if key != previous[doc.source_path].key:
            return None
    for name in [*present, f"{INDEX_DIR}/{part}"]:
        copy_file(release / name, Path(job.staging, name))
    # The summary needs no text: read only the columns it counts.
    read = {
        name: read_parquet(
            [Path(job.staging, name)],
            pa.schema(
                [tables[name].field(column) for column in SUMMARY_COLUMNS[name.split("/")[0]]]
            ),
        )
        for name in present
    }
    documents_part, rejected_part = f"{DOCUMENTS_DIR}/{part}", f"{REJECTED_DIR}/{part}"
    # A shard with no rows of a table has no part file for it.
    documents = read[documents_part] if documents_part in read else empty_table(DOCUMENT_SCHEMA)
    rejected = read[rejected_part] if rejected_part in read else empty_table(REJECTED_SCHEMA)
    summary = summarize(documents, rejected, present)
    summary.reused = len(job.docs)
    return ShardResult(summary, processed=0, reused=len(job.docs))


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
