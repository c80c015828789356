"""The published contracts: row types and the one explicit Arrow schema of each table.

Each Parquet table is declared once here, next to the Python row type that fills it; the
module refuses to import when the two disagree (a row field missing from the schema would
otherwise be dropped silently), and ``tests/test_contracts.py`` checks the README's tables
against the same definitions. Bump a version when a column changes: it is recorded in the
manifest and in every file's schema metadata.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from flows.stages.boilerplate import RemovedLine
from flows.stages.quality import QualitySignals
from flows.stages.types import Rejection

DOCUMENT_SCHEMA_VERSION = 4
REJECTED_SCHEMA_VERSION = 2
INDEX_SCHEMA_VERSION = 1
FACTS_SCHEMA_VERSION = 3
PAIRS_SCHEMA_VERSION = 1
BITEXT_SCHEMA_VERSION = 1

DOCUMENTS_DIR = "documents"
REJECTED_DIR = "rejected"
INDEX_DIR = "index"
FACTS_DIR = "facts"
# Inside a release, the engine's own folder: every table's per-shard parts (what the next
# run reuses and copies), from which the consumer files at the top are packed.
SHARDS_DIR = "shards"
PAIRS_DIR = "pairs"
BITEXT_DIR = "bitext"


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One input as discovered: where it is, its id, its metadata line if any."""

    source_path: str
    doc_id: str
    size: int
    metadata: Mapping[str, Any] | None = None
    metadata_line: int | None = None
    # Set at discovery when the input is already known to be unpublishable.
    rejection: Rejection | None = None
    # The path relative to the root as the file system spells it (may hold undecodable
    # bytes as surrogates); ``source_path`` is its printable form. None: same as source_path.
    fs_relative: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """One published document; the field order is the Parquet column order."""

    id: str
    text: str
    title: str | None
    language: str
    language_confidence: float
    language_declared: str | None
    language_mismatch: bool
    language_share: float | None
    language_mixed: bool
    source_path: str
    source_bytes: int
    source_encoding: str
    encoding_confidence: float
    encoding_method: str
    encoding_low_confidence: bool
    text_repairs: tuple[str, ...]
    source_sha256: str
    text_sha256: str
    text_chars: int
    removed: tuple[RemovedLine, ...]
    # Gopher/C4/FineWeb signals of ``text`` (flows/stages/quality.py): one struct column.
    quality: QualitySignals
    url: str | None
    published: dt.datetime | None
    authors: tuple[str, ...]
    license: str | None
    source: str | None
    metadata_extra: str | None
    pipeline_version: str
    # Copies of this document the corpus step folded into it (set by apply_decisions); last,
    # with a default, so the stages that make rows need not know about the corpus step.
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One input that was not published, and why."""

    source_path: str
    stage: str
    reason: str
    detail: str
    source_sha256: str | None
    source_bytes: int | None
    pipeline_version: str
    # The id of the published document this one duplicates (stage dedup only).
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class IndexRow:
    """Where a release keeps the row of one input, and the processing key it was made with."""

    source_path: str
    processing_key: str
    table: str  # DOCUMENTS_DIR or REJECTED_DIR
    file: str  # relative to the release folder


@dataclass(frozen=True, slots=True)
class FactsRow:
    """Compact facts of one published document, written by the shard pass for the corpus
    step, which reads these (never the texts) to decide across documents."""

    id: str
    source_path: str
    text_sha256: str
    norm_sha256: str  # of the normalised text (flows.stages.dedup): equal = exact duplicate
    minhash: bytes  # the MinHash signature, little-endian uint32 values
    text_chars: int
    language: str
    has_metadata: bool
    published: dt.datetime | None
    file: str  # the documents part holding its row
    # Learned furniture (flows/engine/furniture.py): the metadata's source (the group its
    # lines are counted in) and the 8-byte hashes of its short or non-prose lines.
    source: str | None = None
    line_hashes: tuple[bytes, ...] = ()
    # Translation pairs (flows/engine/pairs.py): the metadata's url, and per paragraph
    # (non-blank line, of the text before the no-counterpart signal) its length, whether it is a short unpunctuated line, its anchors
    # (flows.stages.align.anchors, space-separated), its sentences and clause marks.
    url: str | None = None
    paragraph_chars: tuple[int, ...] = ()
    paragraph_short: tuple[bool, ...] = ()
    paragraph_anchors: tuple[str, ...] = ()
    paragraph_sentences: tuple[int, ...] = ()
    paragraph_clauses: tuple[int, ...] = ()
    # Paragraphs (of the text before it) the no-counterpart signal took out of the row.
    translation_removed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PairRow:
    """Two published documents that translate each other (flows/engine/pairs.py)."""

    id_a: str  # the smaller id of the two
    id_b: str
    language_a: str
    language_b: str
    score: float  # 0..1: aligned characters of both sides weighted by each step's score
    signals: tuple[str, ...]  # the evidence that made them candidates (anchors, url, ...)
    aligned: tuple[AlignedPair, ...]  # paragraph steps, 0-based paragraph indexes
    unaligned_a: tuple[int, ...]  # paragraphs of a without a counterpart
    unaligned_b: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlignedPair:
    """One alignment step: paragraphs of a, paragraphs of b (1-1, 1-2 or 2-1), score."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    score: float


@dataclass(frozen=True, slots=True)
class BitextRow:
    """One aligned paragraph pair of a linked pair: ready for translation training."""

    id_a: str
    id_b: str
    language_a: str
    text_a: str
    language_b: str
    text_b: str
    score: float


@dataclass(slots=True)
class Outcome:
    """A shard's rows, in input order."""

    documents: list[DocumentRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


_REMOVED_LINE = pa.struct(
    [
        pa.field("rule", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("line", pa.int32(), nullable=False),
    ]
)


def _strings() -> pa.DataType:
    return pa.list_(pa.field("item", pa.string(), nullable=False))


_UTC_MICROS = pa.timestamp("us", tz="UTC")

# Arrow types of the columns whose Python type does not name one by itself.
_DOCUMENT_TYPES: dict[str, pa.DataType] = {
    "text_repairs": _strings(),
    "authors": _strings(),
    "removed": pa.list_(pa.field("item", _REMOVED_LINE, nullable=False)),
    "published": _UTC_MICROS,
}
_FACTS_TYPES: dict[str, pa.DataType] = {
    "published": _UTC_MICROS,
    "minhash": pa.binary(),
    "line_hashes": pa.list_(pa.field("item", pa.binary(), nullable=False)),
    "paragraph_chars": pa.list_(pa.field("item", pa.int32(), nullable=False)),
    "paragraph_short": pa.list_(pa.field("item", pa.bool_(), nullable=False)),
    "paragraph_anchors": _strings(),
    "paragraph_sentences": pa.list_(pa.field("item", pa.int32(), nullable=False)),
    "paragraph_clauses": pa.list_(pa.field("item", pa.int32(), nullable=False)),
    "translation_removed": pa.list_(pa.field("item", pa.int32(), nullable=False)),
}

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
}


def _arrow_type(hint: Any) -> pa.DataType | None:
    """The Arrow type a field's Python type names: a scalar, or a struct for a nested
    frozen dataclass (its fields in order, nullable exactly where they may be None)."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return pa.struct(_arrow_fields(hint, {}))
    return _SCALARS.get(hint)


def _arrow_fields(row: type[Any], special: Mapping[str, pa.DataType]) -> list[pa.Field]:
    hints = typing.get_type_hints(row)
    found = []
    for item in dataclasses.fields(row):
        hint = hints[item.name]
        args = typing.get_args(hint)
        nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if nullable else hint
        arrow = special.get(item.name) or _arrow_type(base)
        if arrow is None:
            raise TypeError(f"{row.__name__}.{item.name}: no Arrow type for {hint!r}")
        found.append(pa.field(item.name, arrow, nullable=nullable))
    return found


def _arrow_schema(
    row: type[Any], name: str, version: int, special: Mapping[str, pa.DataType]
) -> pa.Schema:
    """The schema of a row dataclass: a column per field, in field order; nullable exactly
    where the field may be None; a nested dataclass field is a struct column."""
    fields = _arrow_fields(row, special)
    return pa.schema(fields, metadata={"schema": f"corpus.{name}", "version": str(version)})


def _indexes() -> pa.DataType:
    return pa.list_(pa.field("item", pa.int32(), nullable=False))


_ALIGNED_PAIR = pa.struct(
    [
        pa.field("a", _indexes(), nullable=False),
        pa.field("b", _indexes(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
    ]
)
_PAIR_TYPES: dict[str, pa.DataType] = {
    "signals": _strings(),
    "aligned": pa.list_(pa.field("item", _ALIGNED_PAIR, nullable=False)),
    "unaligned_a": _indexes(),
    "unaligned_b": _indexes(),
}

DOCUMENT_SCHEMA = _arrow_schema(DocumentRow, "documents", DOCUMENT_SCHEMA_VERSION, _DOCUMENT_TYPES)
REJECTED_SCHEMA = _arrow_schema(RejectedRow, "rejected", REJECTED_SCHEMA_VERSION, {})
INDEX_SCHEMA = _arrow_schema(IndexRow, "index", INDEX_SCHEMA_VERSION, {})
FACTS_SCHEMA = _arrow_schema(FactsRow, "facts", FACTS_SCHEMA_VERSION, _FACTS_TYPES)
PAIRS_SCHEMA = _arrow_schema(PairRow, "pairs", PAIRS_SCHEMA_VERSION, _PAIR_TYPES)
BITEXT_SCHEMA = _arrow_schema(BitextRow, "bitext", BITEXT_SCHEMA_VERSION, {})

# Every table of a release, by folder: its schema and its row type.
TABLES: dict[str, tuple[pa.Schema, type[Any]]] = {
    DOCUMENTS_DIR: (DOCUMENT_SCHEMA, DocumentRow),
    REJECTED_DIR: (REJECTED_SCHEMA, RejectedRow),
    INDEX_DIR: (INDEX_SCHEMA, IndexRow),
    FACTS_DIR: (FACTS_SCHEMA, FactsRow),
    PAIRS_DIR: (PAIRS_SCHEMA, PairRow),
    BITEXT_DIR: (BITEXT_SCHEMA, BitextRow),
}


# Tables the engine keeps for itself (incremental runs, the corpus step): never published as
# consumer files, a Hugging Face config or a Croissant record set.
INTERNAL_TABLES = frozenset({INDEX_DIR, FACTS_DIR})


def published_tables() -> dict[str, pa.Schema]:
    """Every table a consumer reads, by folder, in declaration order (``documents`` first)."""
    return {name: schema for name, (schema, _row) in TABLES.items() if name not in INTERNAL_TABLES}


def _cell(value: object) -> object:
    if isinstance(value, AlignedPair):
        return {"a": list(value.a), "b": list(value.b), "score": value.score}
    if isinstance(value, RemovedLine):
        return {"rule": value.rule, "text": value.text, "line": value.line}
    if isinstance(value, QualitySignals):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_cell(item) for item in value]
    return value


def _plain(kind: pa.DataType) -> bool:
    """A column Arrow fills from Python values as they are: no struct, no list of structs
    (tuples convert as lists)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return not pa.types.is_nested(kind)


def rows_table(rows: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Rows of one dataclass -> a table of exactly ``schema`` (nothing inferred)."""
    columns = {}
    for column in schema:
        values = [getattr(row, column.name) for row in rows]
        # Only struct columns go through _cell: a call per list item of a plain column (a
        # document's paragraph lengths, line hashes) was most of the cost.
        columns[column.name] = values if _plain(column.type) else [_cell(v) for v in values]
    return pa.Table.from_pydict(columns, schema=schema)


def documents_table(rows: Sequence[DocumentRow]) -> pa.Table:
    return rows_table(rows, DOCUMENT_SCHEMA)


def rejected_table(rows: Sequence[RejectedRow]) -> pa.Table:
    return rows_table(rows, REJECTED_SCHEMA)


def empty_table(schema: pa.Schema) -> pa.Table:
    # Not schema.empty_table() (nor pa.array / from_pydict): those import pandas when it
    # is installed, 0.5 s of a run that has nothing else to do.
    return pa.Table.from_batches([], schema=schema)


__all__ = [
    "BITEXT_DIR",
    "BITEXT_SCHEMA",
    "DOCUMENTS_DIR",
    "DOCUMENT_SCHEMA",
    "DOCUMENT_SCHEMA_VERSION",
    "FACTS_DIR",
    "FACTS_SCHEMA",
    "INDEX_DIR",
    "INDEX_SCHEMA",
    "INTERNAL_TABLES",
    "PAIRS_DIR",
    "PAIRS_SCHEMA",
    "REJECTED_DIR",
    "REJECTED_SCHEMA",
    "REJECTED_SCHEMA_VERSION",
    "SHARDS_DIR",
    "TABLES",
    "AlignedPair",
    "BitextRow",
    "DocumentRow",
    "FactsRow",
    "IndexRow",
    "Outcome",
    "PairRow",
    "RejectedRow",
    "SourceDocument",
    "documents_table",
    "empty_table",
    "published_tables",
    "rejected_table",
    "rows_table",
]
