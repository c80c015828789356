"""The shard pass: each input read and hashed once; its row copied, reused or made; parts written.

``prepare_shard`` runs where the run is driven: it reads a shard's inputs (the only read of
each input in a run), hashes them (the only hash), and decides in one place what happens
to the shard -- copied whole from the previous release when nothing in it changed and the
parts verify, otherwise a :class:`ShardWork` that carries the bytes to a worker.
``work_shard`` is the worker's body: it reuses the verified rows of unchanged inputs,
processes the rest, and writes the shard's documents, rejected, index and facts parts.
Neither imports Prefect: the engine hands them to whatever runs the shards.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.contracts import (
    DOCUMENT_SCHEMA,
    DOCUMENTS_DIR,
    FACTS_DIR,
    FACTS_SCHEMA,
    INDEX_DIR,
    INDEX_SCHEMA,
    REJECTED_DIR,
    REJECTED_SCHEMA,
    DocumentRow,
    FactsRow,
    IndexRow,
    SourceDocument,
    documents_table,
    empty_table,
    rejected_table,
    rows_table,
)
from flows.engine.furniture import document_facts
from flows.engine.pairs import PARAGRAPH_COLUMNS, ParagraphFacts, paragraph_facts
from flows.engine.summary import SUMMARY_COLUMNS, Summary, summarize
from flows.output.previous import (
    PartMismatch,
    PreviousRelease,
    parquet_from_bytes,
    processing_key,
    read_verified,
)
from flows.output.release import write_bytes, write_parts
from flows.source.reading import read_input
from flows.stages.compose import StageConfig, process_many
from flows.stages.dedup import Signature, signatures
from flows.stages.types import Rejection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunContext:
    """What every shard of one run shares; small and picklable."""

    root: str
    cfg: StageConfig
    staging: str
    max_file_bytes: int
    config_fingerprint: str
    previous: str | None = None  # the previous release's folder


@dataclass(frozen=True, slots=True)
class ShardJob:
    """A slice of the inputs, in path order, as planned (nothing read yet)."""

    index: int
    docs: tuple[SourceDocument, ...]


@dataclass(frozen=True, slots=True)
class Input:
    """One input after its single read: its bytes (or why they could not be had) and hash."""

    doc: SourceDocument
    payload: bytes | Rejection
    digest: str | None  # SHA-256 of the bytes; None when they were not read


@dataclass(frozen=True, slots=True)
class ShardWork:
    """What a worker needs for one shard: the inputs' bytes travel with it, so no input is
    read twice and workers need not see the source folder."""

    index: int
    context: RunContext
    inputs: tuple[Input, ...]
    keys: Mapping[str, str]  # source_path -> processing key, for every input that was read
    reuse: Mapping[str, IndexRow]  # unchanged inputs -> where the previous release keeps them
    parts: Mapping[str, str]  # previous part file -> sha256 its manifest recorded


@dataclass(frozen=True, slots=True)
class ShardResult:
    index: int
    summary: Summary
    processed: int
    reused: int
    copied: bool = False


@dataclass(frozen=True, slots=True)
class KnownFacts:
    """What the facts hold of one document beyond its row: computed from its text once,
    then carried over from release to release while its text is unchanged."""

    signature: Signature
    line_hashes: tuple[bytes, ...]
    paragraphs: ParagraphFacts


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def source_digest(data: bytes) -> str:
    """The one hash of an input's bytes in a run (row, processing key and fingerprint)."""
    return hashlib.sha256(data).hexdigest()


def read_inputs(job: ShardJob, root: str, max_file_bytes: int) -> list[Input]:
    """Each input of the shard read once (inputs rejected at discovery are not opened)."""
    inputs = []
    for doc in job.docs:
        if doc.rejection is not None:
            inputs.append(Input(doc, doc.rejection, None))
            continue
        payload = read_input(root, doc, max_file_bytes)
        digest = source_digest(payload) if isinstance(payload, bytes) else None
        inputs.append(Input(doc, payload, digest))
    return inputs


def prepare_shard(
    job: ShardJob,
    context: RunContext,
    previous: PreviousRelease | None,
    inputs: list[Input] | None = None,
) -> ShardWork | ShardResult:
    """Read the shard (unless the caller read it: ``inputs``); copy it whole when nothing
    in it changed and its parts verify; otherwise return the work a worker does (reusing
    what is unchanged row by row)."""
    if inputs is None:
        inputs = read_inputs(job, context.root, context.max_file_bytes)
    keys = {
        item.doc.source_path: processing_key(item.doc, item.digest, context.config_fingerprint)
        for item in inputs
        if item.digest is not None
    }
    reuse: dict[str, IndexRow] = {}
    parts: dict[str, str] = {}
    if previous is not None:
        index = previous.index_for(min(keys), max(keys)) if keys else {}
        for path, key in keys.items():
            row = index.get(path)
            sha = previous.sha256(row.file) if row is not None else None
            if row is not None and sha is not None and row.processing_key == key:
                reuse[path] = row
                parts[row.file] = sha
                # A reused document's facts (its signature) come from the previous facts
                # part of its shard, so an unchanged document's text is not hashed again.
                facts = _facts_part(row.file)
                facts_sha = previous.sha256(facts) if facts else None
                if facts and facts_sha:
                    parts[facts] = facts_sha
        copied = _copy_whole(job.index, inputs, reuse, context, previous)
        if copied is not None:
            return copied
    return ShardWork(job.index, context, tuple(inputs), keys, reuse, parts)


def _copy_whole(
    index: int,
    inputs: Sequence[Input],
    reuse: Mapping[str, IndexRow],
    context: RunContext,
    previous: PreviousRelease,
) -> ShardResult | None:
    """The previous release's parts of this shard, copied byte for byte, when the shard is
    the same slice of the same unchanged inputs and every part hashes to what the previous
    manifest recorded; None as soon as anything differs (the worker then reuses row by row)."""
    part = part_name(index)
    tables = {f"{DOCUMENTS_DIR}/{part}", f"{REJECTED_DIR}/{part}"}
    if len(reuse) != len(inputs) or any(row.file not in tables for row in reuse.values()):
        return None
    # Every input has exactly one row: equal counts mean the parts hold no other input.
    if sum(previous.rows_per_file[name] for name in tables) != len(inputs):
        return None
    names = sorted(name for name in tables if previous.rows_per_file[name])
    names += [f"{INDEX_DIR}/{part}", f"{FACTS_DIR}/{part}"]
    payloads = {}
    for name in names:
        expected = previous.sha256(name)
        if expected is None:
            return None  # an older release without this part: rebuilt by a worker
        try:
            payloads[name] = read_verified(previous.path / name, expected)
        except PartMismatch as error:
            logger.warning("shard %d not copied: previous %s", index, error)
            return None
    # The manifest vouches for the parts; the rows must also vouch for themselves: every
    # input exactly once, with the hash just read, and (documents) text matching text_sha256.
    digests = {i.doc.source_path: i.digest for i in inputs if i.digest is not None}
    read = {}
    for folder, schema in ((DOCUMENTS_DIR, DOCUMENT_SCHEMA), (REJECTED_DIR, REJECTED_SCHEMA)):
        columns = list(dict.fromkeys([*SUMMARY_COLUMNS[folder], *_CHECKED_COLUMNS[folder]]))
        wanted = pa.schema([schema.field(column) for column in columns])
        name = f"{folder}/{part}"
        read[folder] = (
            parquet_from_bytes(payloads[name], wanted) if name in payloads else empty_table(wanted)
        )
    verified = sum(
        _verified_rows(read[folder], digests, folder == DOCUMENTS_DIR).num_rows
        for folder in (DOCUMENTS_DIR, REJECTED_DIR)
    )
    if verified != len(inputs):
        logger.warning(
            "shard %d not copied: previous parts hold %d of its %d inputs with matching hashes",
            index,
            verified,
            len(inputs),
        )
        return None
    for name, data in payloads.items():
        write_bytes(data, Path(context.staging, name))
    data_parts = [n for n in names if n.split("/")[0] in (DOCUMENTS_DIR, REJECTED_DIR)]
    summary = summarize(read[DOCUMENTS_DIR], read[REJECTED_DIR], data_parts)
    summary.reused = len(inputs)
    return ShardResult(index, summary, processed=0, reused=len(inputs), copied=True)


_CHECKED_COLUMNS = {
    DOCUMENTS_DIR: ("source_path", "source_sha256", "text", "text_sha256"),
    REJECTED_DIR: ("source_path", "source_sha256"),
}


def work_shard(work: ShardWork) -> ShardResult:
    """The worker's body: reuse verified rows, process the rest, write the shard's parts."""
    context = work.context
    digests = {i.doc.source_path: i.digest for i in work.inputs if i.digest is not None}
    reused_docs, reused_rejected, warnings = _reuse(work, digests)
    reused = set(reused_docs.column("source_path").to_pylist())
    reused.update(reused_rejected.column("source_path").to_pylist())
    todo = [(i.doc, i.payload) for i in work.inputs if i.doc.source_path not in reused]
    outcome = process_many(todo, context.cfg, digests)

    # Input order (by path), whether a row was just made or reused: runs are reproducible.
    documents = pa.concat_tables([documents_table(outcome.documents), reused_docs])
    documents = documents.sort_by("source_path")
    rejected = pa.concat_tables([rejected_table(outcome.rejected), reused_rejected])
    rejected = rejected.sort_by("source_path")

    part = part_name(work.index)
    tables = ((DOCUMENTS_DIR, documents), (REJECTED_DIR, rejected))
    files = write_parts(context.staging, work.index, tables)
    index_rows = [
        IndexRow(path, work.keys[path], folder, f"{folder}/{part}")
        for folder, table in tables
        for path in table.column("source_path").to_pylist()
        if path in work.keys
    ]
    with_metadata = {i.doc.source_path for i in work.inputs if i.doc.metadata is not None}
    known, facts_warnings = _reused_facts(work, reused_docs)
    known.update(made_facts(outcome.documents))
    warnings += facts_warnings
    facts = facts_table(documents, with_metadata, f"{DOCUMENTS_DIR}/{part}", known)
    write_parts(
        context.staging,
        work.index,
        [
            (INDEX_DIR, rows_table(sorted(index_rows, key=_index_order), INDEX_SCHEMA)),
            (FACTS_DIR, facts),
        ],
    )
    summary = summarize(documents, rejected, files)
    summary.reused = len(reused)
    summary.warnings = warnings
    return ShardResult(work.index, summary, processed=len(todo), reused=len(reused))


def _index_order(row: IndexRow) -> tuple[str, str, str, str]:
    return (row.source_path, row.processing_key, row.table, row.file)


def facts_table(
    documents: pa.Table,
    with_metadata: set[str],
    file: str,
    known: Mapping[str, KnownFacts] | None = None,
) -> pa.Table:
    """The per-document facts the corpus step reads instead of the texts. A document's
    duplicate signature and line hashes are taken from ``known`` (source_path -> the
    verified facts of a reused row) or else computed from its text."""
    known = known or {}
    columns = documents.select(
        ["id", "source_path", "text_sha256", "text_chars", "language", "published", "source", "url"]
    ).to_pydict()
    paths = columns["source_path"]
    todo = [i for i, path in enumerate(paths) if path not in known]
    # Only the texts that need facts are taken out of Arrow.
    picked = documents.select(["text", "removed"]).take(pa.array(todo, pa.int64()))
    made = dict(
        zip(
            (paths[i] for i in todo),
            _facts_of(picked.column("text").to_pylist(), picked.column("removed").to_pylist()),
            strict=True,
        )
    )
    facts = [known.get(path) or made[path] for path in paths]
    rows = [
        FactsRow(
            id=doc_id,
            source_path=path,
            text_sha256=sha,
            norm_sha256=fact.signature.norm_sha256,
            minhash=fact.signature.minhash,
            text_chars=chars,
            language=language,
            has_metadata=path in with_metadata,
            published=published,
            file=file,
            source=source,
            line_hashes=fact.line_hashes,
            url=url,
            paragraph_chars=fact.paragraphs.chars,
            paragraph_short=fact.paragraphs.short,
            paragraph_anchors=fact.paragraphs.anchors,
            paragraph_sentences=fact.paragraphs.sentences,
            paragraph_clauses=fact.paragraphs.clauses,
            translation_removed=fact.paragraphs.removed,
        )
        for doc_id, path, sha, chars, language, published, source, url, fact in zip(
            columns["id"],
            paths,
            columns["text_sha256"],
            columns["text_chars"],
            columns["language"],
            columns["published"],
            columns["source"],
            columns["url"],
            facts,
            strict=True,
        )
    ]
    return rows_table(rows, FACTS_SCHEMA)


def made_facts(rows: Sequence[DocumentRow]) -> dict[str, KnownFacts]:
    """The facts of rows just made, by source path: from the texts in hand, rather than
    taken back out of the documents table (a copy of every text)."""
    removed = [
        [{"rule": r.rule, "text": r.text, "line": r.line} for r in row.removed] for row in rows
    ]
    facts = _facts_of([row.text for row in rows], removed)
    return {row.source_path: fact for row, fact in zip(rows, facts, strict=True)}


def _facts_of(
    texts: Sequence[str], removed: Sequence[Sequence[Mapping[str, object]]]
) -> list[KnownFacts]:
    """The facts of many texts: their duplicate signatures made together (one pass)."""
    return [
        KnownFacts(found, tuple(document_facts(text, lines)), paragraph_facts(text, lines))
        for text, lines, found in zip(texts, removed, signatures(texts), strict=True)
    ]


def _facts_part(file: str) -> str | None:
    """The facts part of the shard whose documents part is ``file``."""
    folder, _, name = file.partition("/")
    return f"{FACTS_DIR}/{name}" if folder == DOCUMENTS_DIR else None


_KNOWN_COLUMNS = (
    "source_path",
    "text_sha256",
    "norm_sha256",
    "minhash",
    "line_hashes",
    *PARAGRAPH_COLUMNS,
)


def _reused_facts(
    work: ShardWork, reused_docs: pa.Table
) -> tuple[dict[str, KnownFacts], list[str]]:
    """The stored facts of reused documents, from the previous facts parts that verify and
    only where the facts row is of the same text; the rest is computed again."""
    if reused_docs.num_rows == 0 or work.context.previous is None:
        return {}, []
    release = Path(work.context.previous)
    text_sha = dict(
        zip(
            reused_docs.column("source_path").to_pylist(),
            reused_docs.column("text_sha256").to_pylist(),
            strict=True,
        )
    )
    names = {_facts_part(work.reuse[path].file) for path in text_sha}
    schema = pa.schema([FACTS_SCHEMA.field(c) for c in _KNOWN_COLUMNS])
    known: dict[str, KnownFacts] = {}
    warnings = []
    for name in sorted(n for n in names if n is not None):
        expected = work.parts.get(name)
        try:
            if expected is None:
                raise PartMismatch(f"{name}: not in the previous manifest")
            table = parquet_from_bytes(read_verified(release / name, expected), schema)
        except (PartMismatch, pa.ArrowInvalid, OSError, KeyError) as error:
            warnings.append(f"previous {name} not used ({error}): facts computed again")
            continue
        for path, sha, norm, minhash, lines, *shape in zip(
            *(table.column(c).to_pylist() for c in _KNOWN_COLUMNS), strict=True
        ):
            if text_sha.get(path) == sha and path not in known:
                paragraphs = ParagraphFacts(*(tuple(values) for values in shape))
                known[path] = KnownFacts(Signature(norm, minhash), tuple(lines), paragraphs)
    for warning in warnings:
        logger.warning("shard %d: %s", work.index, warning)
    return known, warnings


def _reuse(work: ShardWork, digests: Mapping[str, str]) -> tuple[pa.Table, pa.Table, list[str]]:
    """The previous rows of unchanged inputs that verify: their part hashes to what the
    previous manifest recorded, and the row itself matches the input's hash (and, for a
    document, its text matches ``text_sha256``). Anything else is processed again."""
    found = {
        DOCUMENTS_DIR: [empty_table(DOCUMENT_SCHEMA)],
        REJECTED_DIR: [empty_table(REJECTED_SCHEMA)],
    }
    warnings: list[str] = []
    if not work.reuse or work.context.previous is None:
        return found[DOCUMENTS_DIR][0], found[REJECTED_DIR][0], warnings
    release = Path(work.context.previous)
    by_file: dict[str, set[str]] = {}
    for path, row in work.reuse.items():
        by_file.setdefault(row.file, set()).add(path)
    for name, wanted in sorted(by_file.items()):
        folder = name.split("/")[0]
        schema = DOCUMENT_SCHEMA if folder == DOCUMENTS_DIR else REJECTED_SCHEMA
        try:
            part = parquet_from_bytes(read_verified(release / name, work.parts[name]), schema)
        except (PartMismatch, pa.ArrowInvalid, OSError) as error:
            warnings.append(
                f"previous {error if isinstance(error, PartMismatch) else name}: "
                f"{len(wanted)} inputs processed again from the source"
            )
            continue
        rows = part.filter(pc.is_in(part.column("source_path"), value_set=pa.array(sorted(wanted))))
        good = _verified_rows(rows, digests, folder == DOCUMENTS_DIR)
        bad = len(wanted) - good.num_rows
        if bad:
            warnings.append(
                f"previous {name}: {bad} rows missing or not matching their hashes; "
                "processed again from the source"
            )
        found[folder].append(good)
    for warning in warnings:
        logger.warning("shard %d: %s", work.index, warning)
    return (
        pa.concat_tables(found[DOCUMENTS_DIR]),
        pa.concat_tables(found[REJECTED_DIR]),
        warnings,
    )


def _verified_rows(rows: pa.Table, digests: Mapping[str, str], documents: bool) -> pa.Table:
    """Rows whose input hash is the one just read, each path once, and (documents) whose
    text hashes to its ``text_sha256``."""
    keep = []
    paths = rows.column("source_path").to_pylist()
    # Two rows for one input: neither can be trusted.
    twice = {path for path, n in Counter(paths).items() if n > 1}
    shas = rows.column("source_sha256").to_pylist()
    texts = rows.column("text").to_pylist() if documents else [None] * len(paths)
    text_shas = rows.column("text_sha256").to_pylist() if documents else [None] * len(paths)
    for position, (path, sha, text, text_sha) in enumerate(
        zip(paths, shas, texts, text_shas, strict=True)
    ):
        if path in twice or sha != digests.get(path):
            continue
        if documents and (
            text is None or hashlib.sha256(text.encode("utf-8")).hexdigest() != text_sha
        ):
            continue
        keep.append(position)
    return rows.take(pa.array(keep, pa.int64())) if keep else rows.slice(0, 0)


def read_part_columns(path: Path, schema: pa.Schema, columns: Sequence[str]) -> pa.Table:
    """Some columns of a part just written by this run (no verification needed)."""
    table = pq.ParquetFile(path).read(columns=list(columns))
    return table.cast(pa.schema([schema.field(c) for c in columns]))


__all__ = [
    "Input",
    "RunContext",
    "ShardJob",
    "ShardResult",
    "ShardWork",
    "facts_table",
    "part_name",
    "prepare_shard",
    "read_inputs",
    "source_digest",
    "work_shard",
]
