"""The corpus step: decisions across documents, made from the facts the shard pass wrote.

No text is read here. Each check reads the compact ``facts/`` columns it needs (hashes,
lengths, languages; later signatures and line hashes) for the whole corpus and returns
per-document :class:`Decision` s; :func:`apply_decisions` then rewrites only the parts that
hold a decided document. The facts stay as the shard pass wrote them (every document,
before decisions), so the next run decides again from scratch: a document whose twin
disappeared from the source is published again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows.contracts import (
    DOCUMENT_SCHEMA,
    FACTS_DIR,
    FACTS_SCHEMA,
    INDEX_DIR,
    INDEX_SCHEMA,
    REJECTED_DIR,
    REJECTED_SCHEMA,
    RejectedRow,
    empty_table,
    rejected_table,
)
from flows.output.release import write_parquet
from flows.stages.types import Reason, Stage

logger = logging.getLogger(__name__)

# An index key no input can have: a document the corpus step removed is read and
# processed again by the next run, so its facts are there for the next decision.
UNREUSABLE_KEY = "decided-by-corpus-step"


@dataclass(frozen=True, slots=True)
class Decision:
    """Take one published document out of ``documents`` and reject it, with a reason."""

    source_path: str
    file: str  # the documents part holding its row
    stage: Stage
    reason: Reason
    detail: str


# A check reads the facts table (only the columns it names) and returns decisions.
Check = tuple[Sequence[str], Callable[[pa.Table], list[Decision]]]


def read_facts(release: Path, columns: Sequence[str]) -> pa.Table:
    """The named facts columns of every shard, and nothing else."""
    schema = pa.schema([FACTS_SCHEMA.field(c) for c in columns])
    parts = [
        pq.ParquetFile(path).read(columns=list(columns)).cast(schema)
        for path in sorted((release / FACTS_DIR).glob("part-*.parquet"))
    ]
    return pa.concat_tables(parts) if parts else empty_table(schema)


def exact_duplicates(facts: pa.Table) -> list[Decision]:
    """Documents whose cleaned text is byte-identical to another's; the kept copy is the
    first by: has metadata, earliest ``published`` (undated last), longest, path."""
    rows = facts.to_pylist()
    groups: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault(str(row["text_sha256"]), []).append(row)
    decisions = []
    for group in groups.values():
        if len(group) < 2:
            continue
        kept, *copies = sorted(group, key=_keep_order)
        decisions += [
            Decision(
                source_path=str(copy["source_path"]),
                file=str(copy["file"]),
                stage=Stage.DEDUP,
                reason=Reason.EXACT_DUPLICATE,
                detail=f"same text as {kept['id']} ({kept['source_path']})",
            )
            for copy in copies
        ]
    return decisions


def _keep_order(row: dict[str, object]) -> tuple[bool, bool, str, int, str]:
    published = row["published"]
    return (
        not row["has_metadata"],
        published is None,
        published.isoformat() if hasattr(published, "isoformat") else "",
        -int(str(row["text_chars"])),
        str(row["source_path"]),
    )


EXACT_DUPLICATES: Check = (
    ("id", "source_path", "text_sha256", "text_chars", "has_metadata", "published", "file"),
    exact_duplicates,
)


def checks_for(dedup: str) -> list[Check]:
    """The corpus checks a run's parameters switch on."""
    return [EXACT_DUPLICATES] if dedup == "exact" else []


def corpus_step(release: Path, checks: Sequence[Check]) -> list[Decision]:
    """Every check over the facts of the release being written; one decision per document."""
    decided: dict[str, Decision] = {}
    for columns, check in checks:
        for decision in check(read_facts(release, columns)):
            decided.setdefault(decision.source_path, decision)
    return sorted(decided.values(), key=lambda d: d.source_path)


def apply_decisions(
    release: Path, decisions: Sequence[Decision], pipeline_version: str
) -> set[str]:
    """Move each decided document from its documents part to the rejected part of the same
    shard, and mark its index entry unreusable. Returns the part names rewritten."""
    by_file: dict[str, dict[str, Decision]] = {}
    for decision in decisions:
        by_file.setdefault(decision.file, {})[decision.source_path] = decision
    touched: set[str] = set()
    for file, decided in sorted(by_file.items()):
        part = file.split("/", 1)[1]
        documents = _read(release / file, DOCUMENT_SCHEMA)
        paths = documents.column("source_path").to_pylist()
        keep = [i for i, path in enumerate(paths) if path not in decided]
        gone = documents.take(
            pa.array([i for i, p in enumerate(paths) if p in decided], pa.int64())
        )
        rows = [
            RejectedRow(
                source_path=path,
                stage=decided[path].stage.value,
                reason=decided[path].reason.value,
                detail=decided[path].detail,
                source_sha256=sha,
                source_bytes=size,
                pipeline_version=pipeline_version,
            )
            for path, sha, size in zip(
                gone.column("source_path").to_pylist(),
                gone.column("source_sha256").to_pylist(),
                gone.column("source_bytes").to_pylist(),
                strict=True,
            )
        ]
        rejected_path = release / REJECTED_DIR / part
        rejected = _read(rejected_path, REJECTED_SCHEMA) if rejected_path.exists() else None
        merged = pa.concat_tables(
            [t for t in (rejected, rejected_table(rows)) if t is not None]
        ).sort_by("source_path")
        _replace(release / file, documents.take(pa.array(keep, pa.int64())))
        _replace(rejected_path, merged)
        index_path = release / INDEX_DIR / part
        index = _read(index_path, INDEX_SCHEMA).to_pylist()
        for entry in index:
            if entry["source_path"] in decided:
                entry.update(
                    processing_key=UNREUSABLE_KEY, table=REJECTED_DIR, file=f"{REJECTED_DIR}/{part}"
                )
        _replace(index_path, pa.Table.from_pylist(index, schema=INDEX_SCHEMA))
        touched.update({file, f"{REJECTED_DIR}/{part}", f"{INDEX_DIR}/{part}"})
    if decisions:
        counts = Counter(d.reason.value for d in decisions)
        logger.info("corpus step: %s", ", ".join(f"{n} {r}" for r, n in sorted(counts.items())))
    return touched


def _read(path: Path, schema: pa.Schema) -> pa.Table:
    return pq.ParquetFile(path).read(columns=schema.names).cast(schema)


def _replace(path: Path, table: pa.Table) -> None:
    """Rewrite a part of the staged release (an empty documents part is removed: a shard
    with no rows of a table has no part for it)."""
    if table.num_rows == 0:
        path.unlink(missing_ok=True)
        return
    write_parquet(table, path)


__all__ = [
    "EXACT_DUPLICATES",
    "UNREUSABLE_KEY",
    "Check",
    "Decision",
    "apply_decisions",
    "checks_for",
    "corpus_step",
    "exact_duplicates",
    "read_facts",
]
