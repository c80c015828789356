"""Translation pairs for the engine's corpus step: candidates from facts, alignment, bitext.

The shard pass writes each published document's paragraph facts (:func:`paragraph_facts`:
lengths, short unpunctuated lines, anchors) next to its other facts. Here, after
deduplication and learned furniture:

1. **Candidates** (:func:`candidates`) among documents of different languages, never all
   pairs: documents sharing rare anchors (a number, name or URL in at most
   ``max_anchor_docs`` documents), the same URL once its language segment is taken out
   (``/de/`` and ``/en/``), the same ``published`` day and ``source``, and, for texts with
   nothing to share, neighbours in the order of their paragraph-length profile.
2. **Linking** (:func:`link`): each candidate is aligned on its facts
   (:func:`flows.stages.align.align`); from the best up to ``link_evidence``, candidates
   join groups of documents with one document per language, and every pair in a group is
   linked (one-to-one per language and symmetric); a document still alone (or in a pair)
   then gets a bounded second round of candidates: the large groups nearest its profile.
3. **Alignment and bitext** of the linked pairs only, on their published texts (read by
   id from the documents parts that hold them), unless the previous release aligned the
   same two texts (:func:`apply_pairs` then copies its rows).
4. **Cleaning signal**: in a pair from ``clean_score`` up, a short unpunctuated line with
   no counterpart on the other side is removed as ``no-counterpart-in-translation``; the
   rows changed are marked unreusable, as learned furniture does.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import datetime as dt
import gc
import itertools
import logging
import math
import re
import statistics
from collections import defaultdict, deque
from collections.abc import (
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.contracts import (
    BITEXT_DIR,
    BITEXT_SCHEMA,
    DOCUMENT_SCHEMA,
    FACTS_DIR,
    FACTS_SCHEMA,
    PAIRS_DIR,
    PAIRS_SCHEMA,
    AlignedPair,
    BitextRow,
    PairRow,
    rows_table,
)
from flows.engine.pair_blocks import (
    AnchorIndex,
    FactArrays,
    anchor_index,
    fact_arrays,
    profiles,
    shape_codes,
    shared_anchors,
    structure_pairs,
    table_arrays,
)
from flows.engine.pair_candidates import (
    ANCHORS,
    BLOCK_PAIRS,
    PUBLISHED,
    STRUCTURE,
    URL,
    CandidateStore,
    block_bounds,
    block_pairs,
    merge,
    postings,
    signal_names,
)
from flows.output.release import write_parquet
from flows.stages.align import (
    PRIOR_LOG_ODDS,
    Paragraph,
    align,
    align_linked,
    paragraph_columns,
    paragraphs,
    quick_evidence,
)
from flows.stages.align_batch import MASK_BITS, Columns, first_pass_evidence
from flows.stages.align_batch import quick_evidence as batch_quick_evidence
from flows.stages.boilerplate import RemovedLine
from flows.stages.metadata import sha256_hex
from flows.words import plural

logger = logging.getLogger(__name__)

NO_COUNTERPART = "no-counterpart-in-translation"
PAIRS_FILE = f"{PAIRS_DIR}/part-00000.parquet"
BITEXT_FILE = f"{BITEXT_DIR}/part-00000.parquet"
UNDETERMINED = "und"


@dataclass(frozen=True, slots=True)
class ParagraphFacts:
    """A document's paragraphs as the facts keep them: lengths, short unpunctuated lines,
    anchors (space-separated per paragraph)."""

    chars: tuple[int, ...] = ()
    short: tuple[bool, ...] = ()
    anchors: tuple[str, ...] = ()
    sentences: tuple[int, ...] = ()
    clauses: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()  # paragraphs the no-counterpart signal took out

    def paragraphs(self) -> list[Paragraph]:
        # The number anchors counted on the string: tokens are space-separated.
        return [
            Paragraph(
                i,
                chars,
                frozenset(found.split()),
                short,
                sentences,
                clauses,
                (" " + found).count(" n:"),
            )
            for i, (chars, short, found, sentences, clauses) in enumerate(
                zip(self.chars, self.short, self.anchors, self.sentences, self.clauses, strict=True)
            )
        ]


def paragraph_facts(text: str, removed: Iterable[Mapping[str, Any]] = ()) -> ParagraphFacts:
    """The paragraph facts of a published row: of its text as it was before the
    no-counterpart signal took lines out (:func:`restore`), so a row reused by the next run
    has the facts it had when it was made."""
    removed = list(removed)
    before = restore(text, removed)
    found = paragraph_columns(before)
    taken = {int(r["line"]) - 1 for r in removed if r["rule"] == NO_COUNTERPART and r["text"]}
    return ParagraphFacts(
        tuple(found.chars),
        tuple(found.short),
        tuple(found.anchors),
        tuple(found.sentences),
        tuple(found.clauses),
        tuple(k for k, line in enumerate(found.lines) if line in taken),
    )


def restore(text: str, removed: Iterable[Mapping[str, Any]]) -> str:
    """The text before the no-counterpart signal: each line it took out (blank ones too)
    put back at its line number, in ascending order, so each lands where it was."""
    entries = sorted(
        (int(r["line"]), str(r["text"])) for r in removed if r["rule"] == NO_COUNTERPART
    )
    if not entries:
        return text
    lines = text.split("\n")
    for line, value in entries:
        lines.insert(line - 1, value)
    return "\n".join(lines)


def take_out(text: str, gone: Iterable[int]) -> tuple[str, list[RemovedLine]] | None:
    """Remove the given paragraphs (indexes among the non-blank lines) and the blank lines
    that would then double up or sit at an edge; every line taken out is recorded, blank
    ones too, so :func:`restore` gives the text back exactly. None when nothing would be
    left."""
    lines = text.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    drop = {nonblank[k] for k in gone if k < len(nonblank)}
    remaining: list[int] = []
    for i, line in enumerate(lines):
        if i in drop:
            continue
        if not line.strip() and (not remaining or not lines[remaining[-1]].strip()):
            drop.add(i)  # a blank line that would double up or open the text
            continue
        remaining.append(i)
    while remaining and not lines[remaining[-1]].strip():
        drop.add(remaining.pop())  # ... or close it
    if not remaining:
        return None
    result = "\n".join(lines[i] for i in remaining)
    return result, [RemovedLine(NO_COUNTERPART, lines[i].strip(), i + 1) for i in sorted(drop)]


@dataclass(frozen=True, slots=True)
class PairSettings:
    """Thresholds of the translation-pairs step (README: Translation pairs)."""

    enabled: bool = True
    # Remove short unpunctuated lines without a counterpart in pairs scoring this or more
    # (summed evidence >= 10: a dozen well-matched paragraphs, or fewer sharing anchors).
    clean: bool = True
    clean_score: float = 0.999
    # A candidate joins its two documents' groups from this summed evidence (a score of
    # 0.88) when the mean evidence of all the pairs across the two groups is
    # ``group_evidence`` or more. UDHR benchmark (benchmarks/bench_pairs.py), seed 0, on
    # alignments without refinement: one-to-one links from evidence 6.5, precision 0.98
    # and recall 0.63; groups 0.99 and 0.82; with the leftovers adopted 0.99 and 0.84;
    # on refined alignments 0.99 and 0.93 (seeds 1-3: 0.86-1.00).
    link_evidence: float = 5.0
    group_evidence: float = 4.0
    # A candidate that structure alone proposed (no shared anchor, URL or day) needs this
    # much to link on its own: among thousands of documents of one style, paragraph
    # lengths and sentence counts reach 5 by chance (6,000 generated 5 kB documents, no
    # translation among them: a pair at 5.6). UDHR benchmark, seeds 0-3: 5 -> 10 changes
    # no recall (a group still takes in a translation that structure alone proposed, on
    # its mean evidence) and precision 0.996-0.998 -> 1.000; 13 changes nothing more.
    structure_evidence: float = 10.0
    # Then a document or two left alone joins a group of ``adopt_from`` or more when their
    # mean evidence is this or more.
    adopt_evidence: float = 3.0
    adopt_from: int = 4
    # Large groups nearest a leftover's profile, each side and place, in the second round.
    second_window: int = 4
    # An anchor found in more documents than this blocks nothing (a year, a country).
    max_anchor_docs: int = 50
    # Shared rare anchors that make two documents candidates.
    min_shared_anchors: int = 2
    # Neighbours compared in each paragraph-length-profile order.
    structure_window: int = 8
    # Structure alone proposes only documents of this many prose paragraphs or more: the
    # lengths of one to four paragraphs match by chance among thousands of documents (6,000
    # generated 1 kB documents, no translation among them: 230 false pairs, all of 3-4
    # prose paragraphs); shorter texts pair on anchors, URL or published day and source.
    # UDHR benchmark: every document has 5 or more.
    structure_from: int = 5
    # Candidates are scored on a band of this many paragraphs around the diagonal (the
    # linked pairs are then aligned in full): 30 x 30 paragraphs cost 3.5 ms, not 12.
    band: int = 6
    # Texts of this many paragraphs or more are first compared in linear time
    # (flows.stages.align.quick_evidence): below ``quick_least`` per paragraph they are not
    # aligned. Measured: translations of 21 UDHR paragraphs (edited) score -0.2 to 3, a
    # median of 1.6; unrelated excerpts at most 0.4, a median of -0.9; the 4,882 candidates
    # of the 6,000-document generated corpus a median of -3.3, none above 0.
    quick_from: int = 12
    quick_least: float = 0.0
    # Shorter texts proposed by structure alone are screened the same way, more leniently
    # (short texts score lower). UDHR benchmark (seeds 0-3): -3.0 keeps 99.6 % of the true
    # candidates and changes no figure (-2.5 and -2.0 cost seed 1 recall); of the
    # structure candidates of 6,000 generated 5 kB articles it turns away 49 %: the step
    # 36 -> 20 s CPU (a full alignment costs 0.78 ms, the screen about 0.1 ms).
    quick_structure_least: float = -3.0
    # A candidate's alignment is done again with the length ratio of its aligned steps
    # (flows.stages.align.align) only from this evidence of the first pass: most
    # candidates of a corpus are far below it (6,000-document corpus: the step 5.0 -> 4.2 s
    # CPU; UDHR seeds 0-3: recall 0.976 -> 0.952 on one seed, the others unchanged).
    refine_from: float = -3.0
    # Candidate pairs made at once (:mod:`flows.engine.pair_candidates`): bounds the step's
    # memory, changes nothing it finds.
    block_pairs: int = BLOCK_PAIRS


class FactsColumns:
    """The paragraph columns of a facts table, each document's :class:`ParagraphFacts`
    made when asked for: the step reads most documents only as arrays."""

    __slots__ = ("_batches", "_ends")

    def __init__(self, table: pa.Table) -> None:
        # Rows by record batch (the columns cut alike), never one array: a million
        # documents' anchors may hold more than a string array's offsets address.
        self._batches = table.select(list(PARAGRAPH_COLUMNS[:5])).to_batches()
        self._ends = list(itertools.accumulate(batch.num_rows for batch in self._batches))

    def _at(self, row: int) -> tuple[pa.RecordBatch, int]:
        k = bisect.bisect_right(self._ends, row)
        return self._batches[k], row - (self._ends[k - 1] if k else 0)

    def facts(self, row: int) -> ParagraphFacts:
        batch, at = self._at(row)
        chars, short, anchors, sentences, clauses = (
            tuple(batch.column(k)[at].values.to_pylist()) for k in range(5)
        )
        return ParagraphFacts(chars, short, anchors, sentences, clauses)

    def count(self, row: int) -> int:
        batch, at = self._at(row)
        return len(batch.column(0)[at])


class Paragraphs(Sequence[Paragraph]):
    """A document's paragraphs, kept as their facts (columns) and made Paragraph objects
    only when asked for one: the candidates are found on the columns, and only those that
    reach an alignment one by one need the objects (6,000 20 kB documents: 230,000
    paragraphs, a few hundred documents aligned). From a facts table (:func:`docs_from_table`)
    even the facts are read from its columns only when asked for."""

    __slots__ = ("_built", "_facts", "_source")

    def __init__(
        self,
        facts: ParagraphFacts | None = None,
        built: tuple[Paragraph, ...] | None = None,
        source: tuple[FactsColumns, int] | None = None,
    ) -> None:
        self._facts = facts
        self._built = built
        self._source = source

    @property
    def facts(self) -> ParagraphFacts:
        if self._facts is None:
            assert self._source is not None, "Paragraphs need facts or a source"
            columns, row = self._source
            self._facts = columns.facts(row)
        return self._facts

    @classmethod
    def of(cls, found: Sequence[Paragraph]) -> Paragraphs:
        """From Paragraph objects (tests, benchmarks): the facts they would be stored as."""
        if isinstance(found, Paragraphs):
            return found
        found = tuple(found)
        facts = ParagraphFacts(
            tuple(p.chars for p in found),
            tuple(p.short for p in found),
            tuple(" ".join(sorted(p.anchors)) for p in found),
            tuple(p.sentences for p in found),
            tuple(p.clauses for p in found),
        )
        return cls(facts, found)

    def built(self) -> tuple[Paragraph, ...]:
        if self._built is None:
            self._built = tuple(self.facts.paragraphs())
        return self._built

    def __len__(self) -> int:
        if self._facts is None and self._source is not None:
            columns, row = self._source
            return columns.count(row)
        return len(self.facts.chars)

    @overload
    def __getitem__(self, k: int) -> Paragraph: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[Paragraph]: ...
    def __getitem__(self, k: int | slice) -> Paragraph | Sequence[Paragraph]:
        return self.built()[k]

    def __iter__(self) -> Iterator[Paragraph]:
        return iter(self.built())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paragraphs) and self.facts == other.facts

    def __hash__(self) -> int:
        return hash(self.facts)

    def columns(self) -> Columns:
        f = self.facts
        numbers = tuple((" " + found).count(" n:") for found in f.anchors)
        return Columns(f.chars, f.short, f.sentences, f.clauses, f.anchors, numbers)

    def prose(self) -> list[tuple[int, int]]:
        """(characters, sentences) of the paragraphs that are not short lines."""
        f = self.facts
        return [
            (chars, sentences)
            for chars, short, sentences in zip(f.chars, f.short, f.sentences, strict=True)
            if not short
        ]


@dataclass(frozen=True, slots=True)
class Doc:
    """One published document as the pairing step sees it (facts only)."""

    id: str
    source_path: str
    language: str
    file: str
    text_sha256: str
    url: str | None
    published: dt.datetime | None
    source: str | None
    # Paragraph objects (tests, benchmarks) are kept as their facts too (:class:`Paragraphs`).
    paragraphs: Sequence[Paragraph]
    cleaned: frozenset[int] = frozenset()  # paragraphs the signal took out of its row

    def __post_init__(self) -> None:
        object.__setattr__(self, "paragraphs", Paragraphs.of(self.paragraphs))

    @property
    def kept(self) -> Paragraphs:
        """The paragraphs as :class:`Paragraphs` (what ``__post_init__`` made of them)."""
        assert isinstance(self.paragraphs, Paragraphs)
        return self.paragraphs

    @property
    def anchors(self) -> frozenset[str]:
        return frozenset(" ".join(self.kept.facts.anchors).split())


class DocList(list[Doc]):
    """Documents to pair, with their facts as arrays (:func:`_arrays`) made once for both
    :func:`candidates` and :func:`link`."""

    arrays: FactArrays | None = None


def _arrays(docs: Sequence[Doc]) -> FactArrays:
    """The documents' :class:`~flows.engine.pair_blocks.FactArrays` (kept on a DocList)."""
    if isinstance(docs, TableDocs | DocList) and docs.arrays is not None:
        return docs.arrays
    made = fact_arrays([doc.kept.facts for doc in docs], [doc.language for doc in docs])
    if isinstance(docs, DocList):
        docs.arrays = made
    return made


# The facts columns that hold a document's ParagraphFacts, in the order of its fields.
PARAGRAPH_COLUMNS = (
    "paragraph_chars",
    "paragraph_short",
    "paragraph_anchors",
    "paragraph_sentences",
    "paragraph_clauses",
    "translation_removed",
)
FACTS_COLUMNS = (
    "id",
    "source_path",
    "language",
    "file",
    "text_sha256",
    "url",
    "published",
    "source",
    *PARAGRAPH_COLUMNS,
)


def docs_from_facts(rows: Iterable[Mapping[str, Any]]) -> DocList:
    """The documents that can be paired: a known language and at least one paragraph."""
    docs = DocList()
    for row in rows:
        language = str(row["language"])
        chars = row["paragraph_chars"]
        if language == UNDETERMINED or not chars:
            continue
        facts = ParagraphFacts(
            tuple(chars),
            tuple(row["paragraph_short"]),
            tuple(row["paragraph_anchors"]),
            tuple(row["paragraph_sentences"]),
            tuple(row["paragraph_clauses"]),
        )
        cleaned = frozenset(row["translation_removed"])
        published = row["published"]
        docs.append(
            Doc(
                id=str(row["id"]),
                source_path=str(row["source_path"]),
                language=language,
                file=str(row["file"]),
                text_sha256=str(row["text_sha256"]),
                url=row["url"] if isinstance(row["url"], str) else None,
                published=published if isinstance(published, dt.datetime) else None,
                source=row["source"] if isinstance(row["source"], str) else None,
                paragraphs=Paragraphs(facts),
                cleaned=cleaned,
            )
        )
    return docs


def docs_from_table(table: pa.Table) -> TableDocs:
    """:func:`docs_from_facts` of a facts table, column by column: the documents stay in
    the table (:class:`TableDocs`) and become the arrays directly
    (:func:`flows.engine.pair_blocks.table_arrays`), no Python object per paragraph or
    per document."""
    pairable = pc.and_(
        pc.not_equal(table.column("language"), UNDETERMINED),
        pc.greater(pc.list_value_length(table.column("paragraph_chars")), 0),
    )
    return TableDocs(table.filter(pairable))


_DOC_COLUMNS = (*FACTS_COLUMNS[:8], "translation_removed")


class TableDocs(Sequence[Doc]):
    """The pairable documents of a facts table, each made a :class:`Doc` only when asked
    for (a few hundred are: those of the candidates left to align, of the links and of
    the rows to clean): a million documents as Python objects would hold gigabytes."""

    __slots__ = ("_batches", "_cache", "_columns", "_ends", "arrays")

    _CACHED = 4096  # documents kept made (a group's members are asked for again and again)

    def __init__(self, table: pa.Table) -> None:
        self._columns = FactsColumns(table)
        self._batches = table.select(list(_DOC_COLUMNS)).to_batches()
        self._ends = list(itertools.accumulate(batch.num_rows for batch in self._batches))
        self._cache: dict[int, Doc] = {}
        self.arrays = table_arrays(table)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, k: int) -> Doc: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[Doc]: ...
    def __getitem__(self, k: int | slice) -> Doc | Sequence[Doc]:
        if isinstance(k, slice):
            return [self[x] for x in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        found = self._cache.get(k)
        if found is None:
            found = self._make(k)
            if len(self._cache) >= self._CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[k] = found
        return found

    def _make(self, k: int) -> Doc:
        at = bisect.bisect_right(self._ends, k)
        batch = self._batches[at]
        row = k - (self._ends[at - 1] if at else 0)
        doc_id, source_path, language, file, sha, url, published, source, removed = (
            batch.column(c)[row].as_py() for c in range(len(_DOC_COLUMNS))
        )
        return Doc(
            id=str(doc_id),
            source_path=str(source_path),
            language=str(language),
            file=str(file),
            text_sha256=str(sha),
            url=url if isinstance(url, str) else None,
            published=published if isinstance(published, dt.datetime) else None,
            source=source if isinstance(source, str) else None,
            paragraphs=Paragraphs(source=(self._columns, k)),
            cleaned=frozenset(removed),
        )

    def metadata(self) -> Iterator[tuple[str, str | None, dt.datetime | None, str | None]]:
        """Each document's language, url, published and source, one record batch at a time."""
        names = ("language", "url", "published", "source")
        for batch in self._batches:
            yield from zip(*(batch.column(name).to_pylist() for name in names), strict=True)

    def cleaned_rows(self) -> list[int]:
        """The documents whose row the no-counterpart signal changed."""
        found: list[int] = []
        for batch, end in zip(self._batches, self._ends, strict=True):
            lengths = pc.list_value_length(batch.column("translation_removed"))
            at = np.flatnonzero(np.asarray(lengths.fill_null(0).to_numpy(), dtype=np.int64) > 0)
            found.extend((at + end - batch.num_rows).tolist())
        return found


_LANGUAGE_SEGMENT = re.compile(r"(?<=[/.=_-])([a-z]{2,3}(?:[-_][a-zA-Z]{2,4})?)(?=[/._&-]|$)")


def url_key(url: str, language: str) -> str | None:
    """The URL with its language segment taken out (``example.org/de/x`` and
    ``example.org/en/x`` give one key); None when it names no language of the document's."""
    primary = language.split("-", maxsplit=1)[0].lower()
    base = url.split("://", 1)[-1].lower().rstrip("/")
    replaced, count = _LANGUAGE_SEGMENT.subn(
        lambda m: "{lang}" if m.group(1).split("-")[0].split("_")[0] == primary else m.group(1),
        base,
    )
    return replaced if count and "{lang}" in replaced else None


# A run's candidates are a CandidateStore (on disk); tests and benchmarks may give a dict.
Candidates = Mapping[tuple[int, int], AbstractSet[str]]
Ints = npt.NDArray[np.int64]


def candidates(
    docs: Sequence[Doc], settings: PairSettings | None = None
) -> dict[tuple[int, int], set[str]]:
    """Pairs of documents of different languages worth aligning, with the signals that
    proposed them (:func:`candidate_store`), as a dict: for tests and benchmarks, a run
    keeps them on disk."""
    with candidate_store(docs, settings or PairSettings()) as store:
        found: dict[tuple[int, int], set[str]] = {}
        for left, right, bits in store.chunks():
            for i, j, signals in zip(left.tolist(), right.tolist(), bits.tolist(), strict=True):
                found[(i, j)] = set(signal_names(signals))
        return found


def candidate_store(
    docs: Sequence[Doc], settings: PairSettings, folder: Path | None = None
) -> CandidateStore:
    """The candidates, found and screened one block of documents at a time
    (:mod:`flows.engine.pair_candidates`): documents sharing rare anchors
    (``min_shared_anchors``, fewer for documents that hold fewer), the same URL without
    its language segment or the same published day and source, two structure shingles
    (:func:`flows.engine.pair_blocks.shape_codes`; one for short texts), each key blocking
    only while it is in at most ``max_anchor_docs`` documents, and the sorted
    neighbourhoods of the paragraph-length profiles
    (:func:`flows.engine.pair_blocks.structure_pairs`). The work grows with the documents
    and their pairs, what is held with the documents only; ``block_pairs`` bounds the pairs
    made at once and changes nothing else."""
    arrays = _arrays(docs)
    n, most = arrays.documents, settings.max_anchor_docs
    shape_owner, shape_code = shape_codes(arrays, settings.structure_from)
    (url_owner, url_code), (day_owner, day_code) = _metadata_keys(docs)

    def anchors_enough(shared: Ints, one: Ints, other: Ints) -> npt.NDArray[np.bool_]:
        least = np.minimum(np.minimum(one, other), settings.min_shared_anchors)
        return shared >= np.maximum(1, least)

    def shapes_enough(shared: Ints, one: Ints, other: Ints) -> npt.NDArray[np.bool_]:
        # Short texts have few shingles, and an edit breaks most of them: one is enough.
        return shared >= np.where(np.minimum(one, other) <= 6, 1, 2)

    def any_shared(shared: Ints, one: Ints, other: Ints) -> npt.NDArray[np.bool_]:
        return shared >= 1

    sources = [
        (ANCHORS, postings(arrays.anchor_doc, arrays.anchor_code, n, most), anchors_enough),
        (URL, postings(url_owner, url_code, n, most), any_shared),
        (PUBLISHED, postings(day_owner, day_code, n, most), any_shared),
        (STRUCTURE, postings(shape_owner, shape_code, n, most), shapes_enough),
    ]
    del shape_owner, shape_code, url_owner, url_code, day_owner, day_code
    structure = structure_pairs(arrays, settings.structure_window, settings.structure_from)
    load = np.zeros(n, dtype=np.int64)
    for _, found, _ in sources:
        load += found.load()
    signals = [bit for bit, _, _ in sources] + [STRUCTURE]
    context = anchor_index(arrays)
    store = CandidateStore(n, folder)
    try:
        for lo, hi in block_bounds(load, settings.block_pairs):
            keys = [
                block_pairs(found, arrays.language, lo, hi, enough) for _, found, enough in sources
            ]
            at = np.searchsorted(structure, [lo * n, hi * n])
            keys.append(structure[int(at[0]) : int(at[1])])
            pairs, bits = merge(keys, signals)
            keep = _screen(arrays, context, pairs, bits == STRUCTURE, settings)
            store.append(pairs, bits, pairs[keep])
    except BaseException:
        store.close()
        raise
    return store.finish()


def _metadata_keys(docs: Sequence[Doc]) -> tuple[tuple[Ints, Ints], tuple[Ints, Ints]]:
    """(document, key code) rows of the URL keys (:func:`url_key`) and of the published
    day and source."""
    urls, days = _KeyRows(), _KeyRows()
    rows: Iterable[tuple[str, str | None, dt.datetime | None, str | None]] = (
        docs.metadata()
        if isinstance(docs, TableDocs)
        else ((d.language, d.url, d.published, d.source) for d in docs)
    )
    for k, (language, url, published, source) in enumerate(rows):
        if url and (key := url_key(url, language)):
            urls.add(k, key)
        if published is not None:
            days.add(k, f"{published.date().isoformat()} {source or ''}")
    return urls.codes(), days.codes()


class _KeyRows:
    """(document, key) rows, the keys gathered into Arrow strings a few thousand at a time
    (never a Python string per document held) and coded at the end."""

    _BATCH = 4096

    def __init__(self) -> None:
        self._owners: list[int] = []
        self._keys: list[str] = []
        self._owner_chunks: list[Ints] = []
        self._key_chunks: list[pa.Array] = []

    def add(self, owner: int, key: str) -> None:
        self._owners.append(owner)
        self._keys.append(key)
        if len(self._keys) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._keys:
            self._owner_chunks.append(np.array(self._owners, dtype=np.int64))
            self._key_chunks.append(pa.array(self._keys, pa.large_string()))
            self._owners, self._keys = [], []

    def codes(self) -> tuple[Ints, Ints]:
        self._flush()
        if not self._key_chunks:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        keys = pa.chunked_array(self._key_chunks, pa.large_string()).combine_chunks()
        code = np.asarray(pc.dictionary_encode(keys).indices, dtype=np.int64)
        return np.concatenate(self._owner_chunks), code


def _profile(doc: Doc) -> tuple[float, ...] | None:
    """Where a document's three longest paragraphs sit, as shares of its prose
    characters, and the longest one's share: what survives translation into any script."""
    prose = [chars for chars, _ in doc.kept.prose()]
    total = sum(prose)
    if len(prose) < 3 or total == 0:
        return None
    middles = []
    before = 0
    for chars in prose:
        middles.append(((before + chars / 2) / total, chars))
        before += chars
    ranked = sorted(middles, key=lambda m: -m[1])
    return ranked[0][0], ranked[1][0], ranked[2][0], ranked[0][1] / total


@dataclass(frozen=True, slots=True)
class Link:
    """Two documents linked as translations, with their alignment on facts."""

    a: int  # index of the document with the smaller id
    b: int
    score: float
    signals: tuple[str, ...]


def link(
    docs: Sequence[Doc], found: Candidates, settings: PairSettings | None = None
) -> list[Link]:
    """Groups of documents that translate each other, at most one per language, and every
    pair inside a group linked: one article is often published in many languages, and the
    translations of a translation translate each other (which finds pairs that no signal
    proposed, or whose own alignment is weak).

    Candidates from the best evidence down (from ``link_evidence``) join their two groups
    when the groups share no language and the mean evidence of all the pairs across them
    (aligned on their facts as needed) is ``group_evidence`` or more: one wrong candidate
    would otherwise pair a stranger with the whole group."""
    settings = settings or PairSettings()
    evidence: dict[tuple[int, int], float] = {}

    def measure(i: int, j: int) -> float:
        key = (i, j) if i < j else (j, i)
        if key not in evidence:
            left, right = docs[key[0]].kept.built(), docs[key[1]].kept.built()
            quick = min(len(left), len(right)) >= settings.quick_from
            least = settings.quick_least if quick else settings.quick_structure_least
            # Short texts are screened too when structure alone proposed them: those are
            # the many (tens of thousands in a corpus of one size and style).
            screened = quick or found.get(key) == {"structure"}
            if screened and quick_evidence(left, right) < least:
                evidence[key] = _WORST_EVIDENCE
            else:
                found_evidence = align(left, right, settings.band, refine_from=settings.refine_from)
                evidence[key] = found_evidence.evidence
        return evidence[key]

    ranked = sorted(
        (-value, i, j)
        for (i, j) in _may_link(docs, found, settings)
        if (value := measure(i, j)) >= _least(docs, (i, j), found, settings)
    )
    # Each document's group; a document in none is alone.
    group: dict[int, tuple[int, ...]] = {}
    for _, i, j in ranked:
        one, other = group.get(i, (i,)), group.get(j, (j,))
        if one == other or {docs[x].language for x in one} & {docs[y].language for y in other}:
            continue
        across = [measure(x, y) for x in one for y in other]
        if sum(across) / len(across) < settings.group_evidence:
            continue
        _join(group, one, other)
    _adopt(docs, found, group, measure, settings)
    _second_round(docs, group, measure, settings)
    links = []
    for members in set(group.values()):
        for i, j in itertools.combinations(members, 2):
            a, b = (i, j) if docs[i].id < docs[j].id else (j, i)
            signals = found.get((i, j) if i < j else (j, i), {"group"})
            score = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, measure(a, b) + PRIOR_LOG_ODDS))))
            links.append(Link(a, b, score, tuple(sorted(signals))))
    return sorted(links, key=lambda item: (docs[item.a].id, docs[item.b].id))


_WORST_EVIDENCE = -1e9  # a pair the linear-time filter turned away


def _least(
    docs: Sequence[Doc], key: tuple[int, int], found: Candidates, settings: PairSettings
) -> float:
    """The evidence a candidate needs to link on its own: ``structure_evidence`` when
    structure alone proposed it, or shared names (unrelated texts about one person share
    them: 6,000 generated 1 kB documents, two such pairs at 6-7)."""
    signals = found[key]
    if signals == {"structure"} or (
        signals <= {"anchors", "structure"}
        and all(x.startswith("w:") for x in docs[key[0]].anchors & docs[key[1]].anchors)
    ):
        return max(settings.link_evidence, settings.structure_evidence)
    return settings.link_evidence


_ROUNDING = 1e-9  # the array screen's values are measure's to the last bits of a float


def _may_link(
    docs: Sequence[Doc], found: Candidates, settings: PairSettings
) -> list[tuple[int, int]]:
    """The candidates whose evidence (``link``'s ``measure``) may reach ``link_evidence``
    (:func:`_screen`); a :class:`CandidateStore` screened them as it found them."""
    if isinstance(found, CandidateStore):
        return found.screened
    keys = sorted(found)
    if not keys:
        return []
    arrays = _arrays(docs)
    n = arrays.documents
    pairs = np.array([i * n + j for i, j in keys], dtype=np.int64)
    structure_only = np.array([found[key] == {"structure"} for key in keys], dtype=np.bool_)
    keep = _screen(arrays, anchor_index(arrays), pairs, structure_only, settings)
    return [keys[k] for k in np.flatnonzero(keep).tolist()]


def _screen(
    arrays: FactArrays,
    index: AnchorIndex,
    pairs: Ints,
    structure_only: npt.NDArray[np.bool_],
    settings: PairSettings,
) -> npt.NDArray[np.bool_]:
    """Which candidates (``i * documents + j``) may reach ``link_evidence``, found in
    arrays (:mod:`flows.stages.align_batch`): the linear-time screen, then the first
    alignment pass, are computed as ``measure`` computes them, and a candidate is left out
    when the screen turns it away or the first pass stays under both ``refine_from`` (no
    second pass then) and ``link_evidence``. The others are measured as before, so the
    links are the same; on 6,000 generated 5 kB documents, 184 of 50,834 candidates are
    left to align one by one. The anchors each candidate's documents share are found in
    arrays too (:func:`flows.engine.pair_blocks.shared_anchors`)."""
    packed = arrays.packed
    left, right = pairs // arrays.documents, pairs % arrays.documents
    keep = np.ones(len(pairs), dtype=np.bool_)
    if not len(pairs):
        return keep
    shared = shared_anchors(arrays, left, right, index)
    exact = shared.count > MASK_BITS  # too many shared anchors for the masks: measured
    counts = packed.counts
    quick = np.minimum(counts[left], counts[right]) >= settings.quick_from
    least = np.where(quick, settings.quick_least, settings.quick_structure_least)
    screened = quick | structure_only
    at = np.flatnonzero(screened)
    if len(at):
        value = batch_quick_evidence(packed, left[at], right[at], shared.take(at))
        keep[at] = value >= least[at] - _ROUNDING
    at = np.flatnonzero(keep)
    if len(at):
        value = first_pass_evidence(packed, left[at], right[at], shared.take(at), settings.band)
        floor = min(settings.refine_from, settings.link_evidence) - _ROUNDING
        keep[at] = value >= floor
    keep[exact] = True
    return keep


def _join(group: dict[int, tuple[int, ...]], one: tuple[int, ...], other: tuple[int, ...]) -> None:
    joined = tuple(sorted((*one, *other)))
    for x in joined:
        group[x] = joined


def _adopt(
    docs: Sequence[Doc],
    found: Candidates,
    group: dict[int, tuple[int, ...]],
    measure: Callable[[int, int], float],
    settings: PairSettings,
) -> None:
    """Leftovers (groups of one or two documents) join the large group (``adopt_from``
    documents or more, none in their languages) a candidate connects them to with the
    best mean evidence, from ``adopt_evidence``: a translation whose edits weakened every
    single alignment still agrees with a whole group on average, a stranger does not."""
    if not any(len(members) >= settings.adopt_from for members in group.values()):
        return  # no group to join (most corpora without translations): no neighbours made
    near = _near_groups(found, group, settings.adopt_from)
    leftovers = {group.get(x, (x,)) for x in near}
    for members in sorted(m for m in leftovers if len(m) <= 2):
        if group.get(members[0], (members[0],)) != members:
            continue
        languages = {docs[x].language for x in members}
        best: tuple[float, tuple[int, ...]] | None = None
        for other in sorted({group.get(y, (y,)) for x in members for y in near.get(x, ())}):
            if len(other) < settings.adopt_from or languages & {docs[y].language for y in other}:
                continue
            across = [measure(x, y) for x in members for y in other]
            mean = sum(across) / len(across)
            if best is None or mean > best[0]:
                best = (mean, other)
        if best is not None and best[0] >= settings.adopt_evidence:
            _join(group, members, best[1])


def _near_groups(
    found: Candidates, group: Mapping[int, tuple[int, ...]], large: int
) -> dict[int, set[int]]:
    """The candidates' neighbours of the documents that are in a group of ``large`` or
    more, or that a chain of candidates through leftovers (groups of one or two) connects
    to one: only those can join a large group (a leftover that joins makes its own
    neighbours next to a large group). Found in passes over the candidates, chunk by chunk:
    the others (most of them) are never held."""
    reach = {x for members in group.values() if len(members) >= large for x in members}
    near: dict[int, set[int]] = defaultdict(set)
    seen: set[tuple[int, int]] = set()
    frontier = set(reach)
    while frontier:
        wanted = np.array(sorted(frontier), dtype=np.int64)
        frontier = set()
        for left, right in _candidate_pairs(found):
            hit = np.isin(left, wanted) | np.isin(right, wanted)
            for i, j in zip(left[hit].tolist(), right[hit].tolist(), strict=True):
                if (i, j) in seen:
                    continue
                seen.add((i, j))
                near[i].add(j)
                near[j].add(i)
                for x in (i, j):
                    if x not in reach and len(members := group.get(x, (x,))) <= 2:
                        reach.update(members)
                        frontier.update(members)
    return near


def _candidate_pairs(found: Candidates) -> Iterator[tuple[Ints, Ints]]:
    """The candidates as (left, right) arrays, a chunk at a time."""
    if isinstance(found, CandidateStore):
        for left, right, _ in found.chunks():
            yield left, right
    elif found:
        keys = np.array(sorted(found), dtype=np.int64).reshape(-1, 2)
        yield keys[:, 0], keys[:, 1]


Profile = Callable[[int], "tuple[float, ...] | None"]


def _profiles(docs: Sequence[Doc]) -> Profile:
    """:func:`_profile` of each document by its index, from the arrays
    (:func:`flows.engine.pair_blocks.profiles`, the same floats): no document is made."""
    places, valid, _ = profiles(_arrays(docs))

    def profile_of(i: int) -> tuple[float, ...] | None:
        return tuple(places[i].tolist()) if valid[i] else None

    return profile_of


def _consensus(profile_of: Profile, members: Sequence[int]) -> tuple[float, ...] | None:
    """A group's profile (:func:`_profile`): the median of its members', place by place."""
    found = [p for x in members if (p := profile_of(x)) is not None]
    if not found:
        return None
    return tuple(statistics.median(p[axis] for p in found) for axis in range(4))


def _second_round(
    docs: Sequence[Doc],
    group: dict[int, tuple[int, ...]],
    measure: Callable[[int, int], float],
    settings: PairSettings,
) -> None:
    """A bounded second round of candidates for the documents still left alone or in a
    pair: a translation no signal proposed against any member of its group (an edit moved
    its long paragraphs) still lies near the group's consensus profile. Each one is
    compared with the ``second_window`` large groups (``adopt_from`` documents or more)
    nearest its own profile on either side in each of the three places (sorted
    neighbourhoods over the groups, so the work grows with the documents), and joins the
    one it agrees with best (:func:`_agreement`). A document in a pair that agrees with a
    group leaves its partner, which is then tried alone: the group's pooled evidence
    outweighs one pair's (the partner of a true member would agree with the group too)."""
    large = sorted({g for g in group.values() if len(g) >= settings.adopt_from})
    if not large:
        return
    profile_of = _profiles(docs)
    located = [(c, g) for g in large if (c := _consensus(profile_of, g)) is not None]
    if not located:
        return
    orders = [sorted(located, key=lambda item: (item[0][axis], item[1])) for axis in range(3)]
    keys = [[item[0][axis] for item in order] for axis, order in enumerate(orders)]
    queue = deque(i for i in range(len(docs)) if len(group.get(i, (i,))) <= 2)
    while queue:
        i = queue.popleft()
        own = group.get(i, (i,))
        profile = profile_of(i)
        if len(own) > 2 or profile is None:
            continue
        partner = [x for x in own if x != i]
        near: set[tuple[int, ...]] = set()
        for axis in range(3):
            at = bisect.bisect_left(keys[axis], profile[axis])
            window = orders[axis][max(0, at - settings.second_window) : at + settings.second_window]
            near.update(group[g[0]] for _, g in window)
        best: tuple[float, float, tuple[int, ...]] | None = None
        for other in sorted(near):
            if i in other or docs[i].language in {docs[y].language for y in other}:
                continue
            if (found := _agreement(docs, i, other, measure, settings)) is None:
                continue
            if best is None or found > best[:2]:
                best = (*found, other)
        if best is None:
            continue
        if partner:
            group[partner[0]] = (partner[0],)
            queue.append(partner[0])
        _join(group, (i,), best[2])


def _agreement(
    docs: Sequence[Doc],
    i: int,
    other: tuple[int, ...],
    measure: Callable[[int, int], float],
    settings: PairSettings,
) -> tuple[float, float] | None:
    """How a document agrees with a group (the share of members it would link to alone,
    its mean evidence), when it belongs there: a mean from ``adopt_evidence``, or links
    with a quarter of the group and two members at least. UDHR seeds 0-3: documents left
    out of their group reach a share of 0.27-0.64 or a mean of 3.4-4.6; a document with
    any other group at most 0.09 and 1.7."""
    across = [measure(i, y) for y in other]
    mean = sum(across) / len(across)
    strong = sum(1 for value in across if value >= settings.link_evidence)
    share = strong / len(across)
    if mean >= settings.adopt_evidence or (strong >= 2 and share >= 0.25):
        return share, mean
    return None


def read_texts(release: Path, wanted: Mapping[str, set[str]]) -> dict[str, str]:
    """id -> text before the no-counterpart signal (:func:`restore`) of the wanted documents
    (part file -> ids); three columns read per part, only the wanted rows kept."""
    texts: dict[str, str] = {}
    for file, ids in sorted(wanted.items()):
        table = pq.ParquetFile(release / file).read(
            columns=["id", "text", "removed"], use_threads=False
        )
        table = table.filter(pc.is_in(table.column("id"), value_set=pa.array(sorted(ids))))
        for doc_id, text, removed in zip(
            *(table.column(c).to_pylist() for c in ("id", "text", "removed")), strict=True
        ):
            texts[doc_id] = restore(text, removed)
    return texts


def pair_rows(
    a: Doc, b: Doc, text_a: str, text_b: str, signals: Sequence[str]
) -> tuple[PairRow, list[BitextRow]]:
    """Align two texts: the pairs row and its bitext rows."""
    left, right = paragraphs(text_a), paragraphs(text_b)
    result = align_linked(left, right)
    lines_a, lines_b = text_a.split("\n"), text_b.split("\n")
    aligned = tuple(AlignedPair(bead.a, bead.b, round(bead.score, 4)) for bead in result.aligned)
    row = PairRow(
        id_a=a.id,
        id_b=b.id,
        language_a=a.language,
        language_b=b.language,
        score=round(result.score, 6),
        signals=tuple(signals),
        aligned=aligned,
        unaligned_a=tuple(result.unaligned("a")),
        unaligned_b=tuple(result.unaligned("b")),
    )
    bitext = [
        BitextRow(
            id_a=a.id,
            id_b=b.id,
            language_a=a.language,
            text_a="\n".join(lines_a[left[i].line].strip() for i in step.a),
            language_b=b.language,
            text_b="\n".join(lines_b[right[j].line].strip() for j in step.b),
            score=step.score,
        )
        for step in aligned
    ]
    return row, bitext


def without_counterpart(row: PairRow, a: Doc, b: Doc) -> dict[str, set[int]]:
    """Per document of a pair, its short unpunctuated paragraphs left unaligned."""
    return {
        a.id: {k for k in row.unaligned_a if a.kept.facts.short[k]},
        b.id: {k for k in row.unaligned_b if b.kept.facts.short[k]},
    }


def pair_settings(enabled: bool, clean: bool) -> PairSettings:
    return PairSettings(enabled=enabled, clean=clean)


def apply_pairs(
    release: Path,
    settings: PairSettings,
    excluded: frozenset[str] = frozenset(),
    previous: Path | None = None,
) -> tuple[set[str], dict[str, int]]:
    """Link, align and write the pairs and bitext tables of the staged release, and bring
    every document's no-counterpart removals to what this run's pairs say. Returns the
    parts written and the counts for the manifest."""
    if not settings.enabled:
        # Readers always find both tables, with their schema; earlier removals are undone.
        write_parquet(rows_table([], PAIRS_SCHEMA), release / PAIRS_FILE)
        write_parquet(rows_table([], BITEXT_SCHEMA), release / BITEXT_FILE)
        settings = PairSettings(enabled=False, clean=False)
    with _system_pool():
        return _apply_pairs(release, settings, excluded, previous)


def _apply_pairs(
    release: Path, settings: PairSettings, excluded: frozenset[str], previous: Path | None
) -> tuple[set[str], dict[str, int]]:
    from flows.engine.corpus import read_facts

    facts = read_facts(release, FACTS_COLUMNS)
    gone = pa.array(sorted(excluded), pa.string())
    facts = facts.filter(pc.invert(pc.is_in(facts.column("source_path"), value_set=gone)))
    del gone
    with _no_collection():
        docs = docs_from_table(facts)
        del facts  # the documents hold the columns they read
        _give_back()
        with _found(docs, settings) as found:
            links = link(docs, found, settings)
            candidate_count = len(found)
    reused = _previous_rows(previous, docs, links)
    wanted: dict[str, set[str]] = defaultdict(set)
    for item in links:
        if (docs[item.a].id, docs[item.b].id) not in reused:
            for k in (item.a, item.b):
                wanted[docs[k].file].add(docs[k].id)
    texts = read_texts(release, wanted)
    pairs: list[PairRow] = []
    bitext: list[BitextRow] = []
    desired: dict[str, set[int]] = defaultdict(set)
    for item in links:
        a, b = docs[item.a], docs[item.b]
        if (a.id, b.id) in reused:
            row, rows = reused[(a.id, b.id)]
        else:
            row, rows = pair_rows(a, b, texts[a.id], texts[b.id], item.signals)
        pairs.append(row)
        bitext.extend(rows)
        if settings.clean and row.score >= settings.clean_score:
            for doc_id, paragraphs_out in without_counterpart(row, a, b).items():
                desired[doc_id] |= paragraphs_out
    touched = set()
    if settings.enabled:
        write_parquet(rows_table(pairs, PAIRS_SCHEMA), release / PAIRS_FILE)
        write_parquet(rows_table(bitext, BITEXT_SCHEMA), release / BITEXT_FILE)
        touched = {PAIRS_FILE, BITEXT_FILE}
    # Documents whose removals change: newly removed lines, or lines given back because the
    # pair that justified them is gone (the row is reused as it was published).
    changes: dict[str, dict[str, frozenset[int]]] = defaultdict(dict)
    asked = set(docs.cleaned_rows()) | {k for item in links for k in (item.a, item.b)}
    for k in sorted(asked):
        doc = docs[k]
        target = frozenset(desired.get(doc.id, ()))
        if target != doc.cleaned:
            changes[doc.file][doc.id] = target
    removed = 0
    for file, by_id in sorted(changes.items()):
        removed += _clean_part(release, file, by_id)
        part = file.split("/", 1)[1]
        touched.update({file, f"{FACTS_DIR}/{part}"})
    counts = {
        "pair_candidates": candidate_count,
        "translation_pairs": len(pairs),
        "pairs_reused": len(reused),
        "bitext_segments": len(bitext),
        NO_COUNTERPART: sum(len(paragraphs_out) for paragraphs_out in desired.values()),
    }
    logger.info(
        "corpus step: %s (%s, %d reused), %s, %s removed from the documents (%s rewritten)",
        plural(len(pairs), "translation pair"),
        plural(candidate_count, "candidate"),
        len(reused),
        plural(len(bitext), "bitext segment"),
        plural(counts[NO_COUNTERPART], "line without a counterpart", "lines without a counterpart"),
        plural(removed, "document"),
    )
    return touched, counts


@contextlib.contextmanager
def _found(docs: Sequence[Doc], settings: PairSettings) -> Iterator[Candidates]:
    """The run's candidates, in the temporary folder (``TMPDIR``) for the time of the step:
    9 bytes a candidate (none when the step is off)."""
    if not settings.enabled:
        yield {}
        return
    with candidate_store(docs, settings) as store:
        yield store


def _give_back() -> None:
    """Hand the heap the step's transient columns freed back to the system: glibc keeps
    it otherwise (240,000 generated 1 kB documents: 180 MB after the facts became arrays,
    which the later, differently sized arrays do not reuse). Nothing where there is no
    glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    with contextlib.suppress(AttributeError):
        libc.malloc_trim(0)


@contextlib.contextmanager
def _system_pool() -> Iterator[None]:
    """Arrow on the system allocator for the step, as the duplicates step does: its
    default pool (mimalloc) keeps what the step's transient columns freed (60,000
    generated 1 kB documents: the step's peak RSS 453 -> 327 MB)."""
    pool = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(pool)


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while the facts become Python objects: hundreds
    of thousands of paragraphs, none in a cycle, would set it off again and again over an
    ever larger heap (6,000 20 kB documents: 3.2 -> 1.9 s CPU to build them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _previous_rows(
    previous: Path | None, docs: Sequence[Doc], links: Sequence[Link]
) -> dict[tuple[str, str], tuple[PairRow, list[BitextRow]]]:
    """Rows of the previous release for links between the same two unchanged texts."""
    if previous is None or not (previous / PAIRS_FILE).exists() or not links:
        return {}
    from flows.engine.corpus import read_facts

    try:
        table = read_facts(previous, ("id", "text_sha256", "translation_removed"))
        # Only the linked documents' rows become Python objects.
        linked = sorted({docs[k].id for item in links for k in (item.a, item.b)})
        table = table.filter(pc.is_in(table.column("id"), value_set=pa.array(linked, pa.string())))
        old_pairs = pq.ParquetFile(previous / PAIRS_FILE).read().cast(PAIRS_SCHEMA).to_pylist()
        old_bitext = pq.ParquetFile(previous / BITEXT_FILE).read().cast(BITEXT_SCHEMA).to_pylist()
    except (OSError, pa.ArrowInvalid, KeyError, ValueError) as error:
        logger.warning("previous pairs not used (%s): pairs aligned again", error)
        return {}
    # A text is the same when its published hash and its removals are (the text before
    # the signal is then the same too).
    before = {
        doc_id: (sha, tuple(taken))
        for doc_id, sha, taken in zip(
            *(table.column(c).to_pylist() for c in ("id", "text_sha256", "translation_removed")),
            strict=True,
        )
    }
    wanted = {
        (docs[item.a].id, docs[item.b].id): item
        for item in links
        if all(
            before.get(docs[k].id) == (docs[k].text_sha256, tuple(sorted(docs[k].cleaned)))
            for k in (item.a, item.b)
        )
    }
    segments: dict[tuple[str, str], list[BitextRow]] = defaultdict(list)
    for row in old_bitext:
        key = (row["id_a"], row["id_b"])
        if key in wanted:
            segments[key].append(BitextRow(**row))
    found = {}
    for row in old_pairs:
        key = (row["id_a"], row["id_b"])
        if key in wanted:
            row["aligned"] = tuple(
                AlignedPair(tuple(s["a"]), tuple(s["b"]), s["score"]) for s in row["aligned"]
            )
            row["signals"] = tuple(wanted[key].signals)
            row["unaligned_a"] = tuple(row["unaligned_a"])
            row["unaligned_b"] = tuple(row["unaligned_b"])
            found[key] = (PairRow(**row), segments.get(key, []))
    return found


def _clean_part(release: Path, file: str, by_id: Mapping[str, frozenset[int]]) -> int:
    """Set the no-counterpart removals of some documents of one part: each text is restored
    and the wanted paragraphs taken out again, so the result is the same whatever an
    earlier run removed. The row stays reusable: the next run restores it the same way.
    Updates the facts (text hash, length, removals). Returns the documents rewritten."""
    path = release / file
    rows = pq.ParquetFile(path).read(columns=DOCUMENT_SCHEMA.names).cast(DOCUMENT_SCHEMA)
    rows_list = rows.to_pylist()
    updates: dict[str, tuple[str, int, tuple[int, ...]]] = {}
    for row in rows_list:
        target = by_id.get(row["id"])
        if target is None:
            continue
        before = restore(row["text"], row["removed"])
        others = [r for r in row["removed"] if r["rule"] != NO_COUNTERPART]
        result = take_out(before, target) if target else (before, [])
        if result is None:  # nothing would be left: the document stays whole
            result, target = (before, []), frozenset()
        text, taken = result
        row["text"] = text
        row["text_sha256"] = sha256_hex(text.encode("utf-8"))
        row["text_chars"] = len(text)
        row["removed"] = [
            *others,
            *({"rule": r.rule, "text": r.text, "line": r.line} for r in taken),
        ]
        updates[row["source_path"]] = (row["text_sha256"], row["text_chars"], tuple(sorted(target)))
    if not updates:
        return 0
    write_parquet(pa.Table.from_pylist(rows_list, schema=DOCUMENT_SCHEMA), path)
    facts_path = release / FACTS_DIR / file.split("/", 1)[1]
    facts = pq.ParquetFile(facts_path).read(columns=FACTS_SCHEMA.names).cast(FACTS_SCHEMA)
    facts_rows = facts.to_pylist()
    for row in facts_rows:
        if row["source_path"] in updates:
            row["text_sha256"], row["text_chars"], row["translation_removed"] = updates[
                row["source_path"]
            ]
    write_parquet(pa.Table.from_pylist(facts_rows, schema=FACTS_SCHEMA), facts_path)
    return len(updates)


__all__ = [
    "BITEXT_FILE",
    "FACTS_COLUMNS",
    "NO_COUNTERPART",
    "PAIRS_FILE",
    "PARAGRAPH_COLUMNS",
    "Doc",
    "Link",
    "PairSettings",
    "ParagraphFacts",
    "Paragraphs",
    "apply_pairs",
    "candidates",
    "docs_from_facts",
    "docs_from_table",
    "link",
    "pair_rows",
    "pair_settings",
    "paragraph_facts",
    "read_texts",
    "restore",
    "take_out",
    "url_key",
    "without_counterpart",
]
