"""Page furniture learned from the corpus (cc_net's idea), for the engine's corpus step.

A site's own menu item, label or prompt ("Weekly picks", "Our network") is the same line in
many of its documents; an article's sentence is not. The shard pass writes, per published
document, the hashes of its *candidate* lines (:func:`line_facts`: short or not prose; long
prose paragraphs are the duplicates work's business) into the facts; the corpus step counts
them per group -- the document's ``source`` where metadata names one, else the whole corpus
-- and learns the lines found in at least ``min_docs`` documents and ``min_share`` of the
group's documents (:func:`learn`). Those lines are then removed from every document of the
group that holds them and recorded in ``removed`` as ``repeated-line``
(:func:`remove_learned`), and the learned lines are written into the release for review
(:func:`learned_table`).

Decisions depend only on the facts (hashes, counts, sorted orders), so a run over an
unchanged corpus decides the same. The facts of a document count the lines this step
removed from it before (its ``removed`` entries named ``repeated-line``), so a row reused
by the next run has the same facts as when it was first made. A group of fewer than
``min_docs`` documents learns nothing, so a corpus of one document, or of a few, loses
nothing; a document that would be left empty keeps its text.

The line normal form and hash are :mod:`flows.learn`'s (``corpus boilerplate-report``), so
the report and the corpus step agree on what "the same line" is. Everything but
:func:`apply_furniture` (which rewrites the staged release's parts) is pure.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.contracts import DOCUMENT_SCHEMA, FACTS_DIR, FACTS_SCHEMA, INDEX_DIR, INDEX_SCHEMA
from flows.learn import line_hash, normalise
from flows.output.release import write_parquet
from flows.stages.boilerplate import REPEATED_LINE_RULE, RemovedLine, tidy
from flows.stages.maincontent import prose_words
from flows.stages.metadata import sha256_hex

if TYPE_CHECKING:  # plan imports the shard pass, which imports this module
    from flows.engine.plan import Plan

logger = logging.getLogger(__name__)

REPEATED_LINE = REPEATED_LINE_RULE  # the name in ``removed`` and in ``disabled_rules``
CORPUS_GROUP = ""  # documents whose metadata names no source are counted together


@dataclass(frozen=True, slots=True)
class FurnitureSettings:
    """Thresholds of the learned-furniture step (see the README for how they were chosen)."""

    # A line is learned when it is in at least this many documents of its group...
    min_docs: int = 5
    # ... and in at least this share of them (a phrase a few articles of a large site
    # happen to share is not furniture).
    min_share: float = 0.02
    # Prose lines up to this many characters are candidates too ("Get the latest news
    # delivered to your inbox every morning."); longer prose is left to deduplication.
    short_chars: int = 100
    # No line longer than this is a candidate, prose or not.
    max_chars: int = 300
    enabled: bool = True


def candidate(line: str, settings: FurnitureSettings) -> str | None:
    """The line's normal form when it may be learned as furniture, else None."""
    stripped = line.strip()
    if not stripped or len(stripped) > settings.max_chars:
        return None
    if len(stripped) > settings.short_chars and prose_words(stripped) > 0:
        return None
    key = normalise(stripped)
    return key or None


def line_facts(text: str, settings: FurnitureSettings | None = None) -> list[bytes]:
    """The distinct hashes of a document's candidate lines, sorted: its compact facts."""
    settings = settings or FurnitureSettings()
    hashes = {line_hash(key) for line in text.split("\n") if (key := candidate(line, settings))}
    return sorted(hashes)


def document_facts(
    text: str,
    removed: Iterable[Mapping[str, object]] = (),
    settings: FurnitureSettings | None = None,
) -> list[bytes]:
    """:func:`line_facts` of a published row: its text, and the lines this step took out
    of it in an earlier run (so a reused row counts as it did when it was made)."""
    settings = settings or FurnitureSettings()
    earlier = [str(entry["text"]) for entry in removed if entry.get("rule") == REPEATED_LINE]
    return line_facts("\n".join([text, *earlier]), settings)


def learn(
    documents: Iterable[tuple[str | None, Sequence[bytes]]],
    settings: FurnitureSettings | None = None,
) -> dict[str, frozenset[bytes]]:
    """Per group, the line hashes found in enough of its documents.

    ``documents`` yields each published document's ``source`` (None: counted with the
    corpus) and its :func:`line_facts`. Counting is per document, so a line repeated
    within one document counts once.
    """
    settings = settings or FurnitureSettings()
    counts: dict[str, Counter[bytes]] = {}
    sizes: Counter[str] = Counter()
    for source, hashes in documents:
        group = source or CORPUS_GROUP
        sizes[group] += 1
        counts.setdefault(group, Counter()).update(set(hashes))
    learned: dict[str, frozenset[bytes]] = {}
    for group, counter in counts.items():
        size = sizes[group]
        if size < settings.min_docs:
            continue
        lines = frozenset(
            digest
            for digest, docs in counter.items()
            if docs >= settings.min_docs and docs >= settings.min_share * size
        )
        if lines:
            learned[group] = lines
    return learned


def learn_streamed(
    parts: Iterable[pa.Table], settings: FurnitureSettings | None = None
) -> dict[str, frozenset[bytes]]:
    """:func:`learn` over facts tables (``source`` and ``line_hashes`` columns) read one
    part at a time: 8 bytes a (document, candidate line) in NumPy, counted at the end,
    instead of a Python dict and bytes object for every distinct line and every row."""
    settings = settings or FurnitureSettings()
    hashes: dict[str, list[np.ndarray]] = {}
    sizes: Counter[str] = Counter()
    for part in parts:
        if part.num_rows == 0:
            continue
        groups = [source or CORPUS_GROUP for source in part.column("source").to_pylist()]
        sizes.update(groups)
        lists = part.column("line_hashes").combine_chunks()
        counts = np.diff(np.asarray(lists.offsets))
        values = _uint64s(lists.flatten())
        if not len(values):
            continue
        docs = np.repeat(np.arange(len(groups)), counts)
        # A line counts once per document, however often it is listed there.
        order = np.lexsort((values, docs))
        docs, values = docs[order], values[order]
        first = np.r_[True, (docs[1:] != docs[:-1]) | (values[1:] != values[:-1])]
        docs, values = docs[first], values[first]
        names = np.array(groups, dtype=object)
        for group in set(groups):
            hashes.setdefault(group, []).append(values[names[docs] == group])
    learned: dict[str, frozenset[bytes]] = {}
    for group, arrays in hashes.items():
        size = sizes[group]
        if size < settings.min_docs:
            continue
        found, docs_with = np.unique(np.concatenate(arrays), return_counts=True)
        keep = found[(docs_with >= settings.min_docs) & (docs_with >= settings.min_share * size)]
        if len(keep):
            data = keep.astype("<u8").tobytes()
            learned[group] = frozenset(data[i : i + 8] for i in range(0, len(data), 8))
    return learned


def _uint64s(values: pa.Array) -> np.ndarray:
    """A binary array of 8-byte hashes as little-endian uint64s, from its buffers."""
    _, offsets_buffer, data_buffer = values.buffers()
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype="<u8")
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[values.offset : values.offset + n + 1]
    if not np.all(np.diff(offsets) == 8):
        raise ValueError("facts: line hashes of another size than 8 bytes")
    return np.frombuffer(data_buffer, dtype="<u8", count=n, offset=int(offsets[0]))


def _kept(part: pa.Table, excluded: pa.Array) -> pa.Table:
    """The rows of documents the corpus step did not take out (``excluded`` paths)."""
    if not len(excluded):
        return part
    return part.filter(pc.invert(pc.is_in(part.column("source_path"), value_set=excluded)))


@dataclass(frozen=True, slots=True)
class Stripped:
    """A document's text without its learned lines, and the lines taken out."""

    text: str
    removed: tuple[RemovedLine, ...]


def remove_learned(
    text: str, learned: frozenset[bytes], settings: FurnitureSettings | None = None
) -> Stripped | None:
    """Take the learned lines out of a published text; None when nothing changes or when
    nothing would be left (the document then stays as it was).

    ``line`` in the records is the 1-based line number in the published text the shard
    pass wrote (the decoded text's numbering is not in the facts).
    """
    settings = settings or FurnitureSettings()
    lines = text.split("\n")
    gone = [
        i
        for i, line in enumerate(lines)
        if (key := candidate(line, settings)) and line_hash(key) in learned
    ]
    if not gone:
        return None
    drop = set(gone)
    kept = tidy("\n".join(line for i, line in enumerate(lines) if i not in drop))
    if not kept.strip():
        return None
    return Stripped(kept, tuple(RemovedLine(REPEATED_LINE, lines[i].strip(), i + 1) for i in gone))


LEARNED_SCHEMA = pa.schema(
    [
        pa.field("group", pa.string(), nullable=False),
        pa.field("line_hash", pa.binary(8), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("documents", pa.int64(), nullable=False),
    ],
    metadata={"schema": "corpus.learned_furniture", "version": "1"},
)


def learned_table(
    spellings: Mapping[tuple[str, bytes], Counter[str]],
) -> pa.Table:
    """The learned lines for review: group, hash, most frequent spelling, documents it was
    removed from. ``spellings`` maps (group, hash) to the removed lines' spellings, counted
    once per document. Sorted by group, then most widespread first."""
    rows: list[tuple[str, int, str, bytes]] = []
    for (group, digest), counter in spellings.items():
        text = min(counter.items(), key=lambda item: (-item[1], item[0]))[0]
        rows.append((group, -counter.total(), text, digest))
    rows.sort()
    return pa.Table.from_pylist(
        [
            {"group": group, "line_hash": digest, "text": text, "documents": -negative}
            for group, negative, text, digest in rows
        ],
        schema=LEARNED_SCHEMA,
    )


def furniture_settings(plan: Plan) -> FurnitureSettings:
    """The run's thresholds; off when ``disabled_rules`` names ``repeated-line``."""
    return FurnitureSettings(
        min_docs=plan.params.furniture_min_docs,
        min_share=plan.params.furniture_min_share,
        enabled=REPEATED_LINE in plan.config.rules.heuristics,
    )


# Where a release keeps the learned lines for review (one part, written only when a line
# was removed).
FURNITURE_FILE = "furniture/learned.parquet"
FACTS_COLUMNS = ("source_path", "source", "line_hashes", "file")


def apply_furniture(
    release: Path, settings: FurnitureSettings, excluded: frozenset[str] = frozenset()
) -> set[str]:
    """Learn from the staged release's facts, take the learned lines out of its documents
    parts, update those documents' facts (text hash and length) and mark their index
    entries unreusable, and write :data:`FURNITURE_FILE`. Returns the
    parts rewritten."""
    if not settings.enabled:
        return set()
    from flows.engine.corpus import iter_facts  # the corpus step's reader, not a cycle

    # ``excluded``: documents the corpus step took out (duplicates) neither count nor change.
    out = pa.array(sorted(excluded), pa.string())
    learned = learn_streamed(
        (_kept(part, out) for part in iter_facts(release, FACTS_COLUMNS)), settings
    )
    if not learned:
        return set()
    by_file: dict[str, dict[str, frozenset[bytes]]] = {}
    for part in iter_facts(release, FACTS_COLUMNS):
        for row in _kept(part, out).to_pylist():
            lines = learned.get(row["source"] or CORPUS_GROUP)
            if lines and not lines.isdisjoint(row["line_hashes"]):
                by_file.setdefault(row["file"], {})[row["source_path"]] = lines
    spellings: dict[tuple[str, bytes], Counter[str]] = {}
    touched: set[str] = set()
    changed = 0
    for file, wanted in sorted(by_file.items()):
        updates = _strip_part(release / file, wanted, settings, spellings)
        if not updates:
            continue
        changed += len(updates)
        part = file.split("/", 1)[1]
        _update_facts(release / FACTS_DIR / part, updates)
        _mark_unreusable(release / INDEX_DIR / part, set(updates))
        touched.update({file, f"{FACTS_DIR}/{part}", f"{INDEX_DIR}/{part}"})
    if spellings:
        write_parquet(learned_table(spellings), release / FURNITURE_FILE)
        touched.add(FURNITURE_FILE)
        logger.info(
            "corpus step: %d repeated lines learned, removed from %d documents",
            len(spellings),
            changed,
        )
    return touched


def _strip_part(
    path: Path,
    wanted: Mapping[str, frozenset[bytes]],
    settings: FurnitureSettings,
    spellings: dict[tuple[str, bytes], Counter[str]],
) -> dict[str, tuple[str, int]]:
    """Rewrite one documents part; the new (text_sha256, text_chars) of each changed row."""
    table = pq.ParquetFile(path).read(columns=DOCUMENT_SCHEMA.names).cast(DOCUMENT_SCHEMA)
    rows = table.to_pylist()
    updates: dict[str, tuple[str, int]] = {}
    for row in rows:
        lines = wanted.get(row["source_path"])
        if lines is None:
            continue
        stripped = remove_learned(row["text"], lines, settings)
        # A reused row lost its lines in an earlier run: they are listed all the same.
        earlier = [str(r["text"]) for r in row["removed"] if r["rule"] == REPEATED_LINE]
        now = [r.text for r in stripped.removed] if stripped is not None else []
        group = row["source"] or CORPUS_GROUP
        seen: dict[bytes, str] = {}
        for text in [*earlier, *now]:
            key = candidate(text, settings)
            if key is not None and line_hash(key) in lines:
                seen.setdefault(line_hash(key), text)
        for digest, text in seen.items():  # once per document
            spellings.setdefault((group, digest), Counter())[text] += 1
        if stripped is None:
            continue
        row["text"] = stripped.text
        row["text_sha256"] = sha256_hex(stripped.text.encode("utf-8"))
        row["text_chars"] = len(stripped.text)
        row["removed"] = [
            *row["removed"],
            *({"rule": r.rule, "text": r.text, "line": r.line} for r in stripped.removed),
        ]
        updates[row["source_path"]] = (row["text_sha256"], row["text_chars"])
    if updates:
        write_parquet(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), path)
    return updates


def _mark_unreusable(path: Path, paths: set[str]) -> None:
    """A row this step changed is not reused by the next run: the document is processed
    again and the step decides anew from its own text, so a line that is no longer learned
    comes back exactly as a run from scratch would publish it."""
    from flows.engine.corpus import UNREUSABLE_KEY

    rows = pq.ParquetFile(path).read(columns=INDEX_SCHEMA.names).cast(INDEX_SCHEMA).to_pylist()
    for row in rows:
        if row["source_path"] in paths:
            row["processing_key"] = UNREUSABLE_KEY
    write_parquet(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA), path)


def _update_facts(path: Path, updates: Mapping[str, tuple[str, int]]) -> None:
    rows = pq.ParquetFile(path).read(columns=FACTS_SCHEMA.names).cast(FACTS_SCHEMA).to_pylist()
    for row in rows:
        if row["source_path"] in updates:
            row["text_sha256"], row["text_chars"] = updates[row["source_path"]]
    write_parquet(pa.Table.from_pylist(rows, schema=FACTS_SCHEMA), path)


__all__ = [
    "CORPUS_GROUP",
    "FACTS_COLUMNS",
    "FURNITURE_FILE",
    "LEARNED_SCHEMA",
    "REPEATED_LINE",
    "FurnitureSettings",
    "Stripped",
    "apply_furniture",
    "candidate",
    "document_facts",
    "furniture_settings",
    "learn",
    "learned_table",
    "line_facts",
    "remove_learned",
]
