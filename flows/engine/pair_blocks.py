"""The pairing step's facts as flat arrays, and the candidate blocks found on them in numpy.

:mod:`flows.engine.pairs` finds candidates among thousands of documents and screens tens of
thousands of them (:mod:`flows.stages.align_batch`). Done one document or one candidate at
a time in Python, that cost more than the rest of the step (6,000 generated 5 kB documents:
about 2 s CPU for 50,834 candidates). Here the same decisions are made on arrays built once
per corpus (:class:`FactArrays`): the paragraph-length profiles and their sorted
neighbourhoods, the structure shingles, the anchors as integer codes, and the anchors each
candidate's two documents share, as the per-paragraph bit masks the array screen reads.
Every float is computed with the operations, in the order, of the Python it replaces, so
the candidates and the screen's values are those of the per-document code.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flows.stages.align_batch import MASK_BITS, Packed, SharedArrays

Ints = npt.NDArray[np.int64]
# Per anchor token (eight a paragraph, tens of millions at a million documents): 4 bytes.
Int32s = npt.NDArray[np.int32]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# Kinds of anchor codes (the prefix of the anchor string).
OTHER, NUMBER, NAME = 0, 1, 2


class ParagraphColumns(Protocol):
    """A document's paragraph facts as columns (:class:`flows.engine.pairs.ParagraphFacts`)."""

    @property
    def chars(self) -> Sequence[int]: ...
    @property
    def short(self) -> Sequence[bool]: ...
    @property
    def anchors(self) -> Sequence[str]: ...
    @property
    def sentences(self) -> Sequence[int]: ...
    @property
    def clauses(self) -> Sequence[int]: ...


@dataclass(frozen=True, slots=True)
class FactArrays:
    """Every document's paragraphs (:class:`~flows.stages.align_batch.Packed`), its
    language as a code, and every anchor token as one row: the document, the paragraph
    (index within the document) and the anchor's code; ``kind`` per code."""

    packed: Packed
    language: Ints
    anchor_doc: Int32s
    anchor_paragraph: Int32s
    anchor_code: Int32s
    kind: npt.NDArray[np.int8]

    @property
    def documents(self) -> int:
        return len(self.language)

    @property
    def codes(self) -> int:
        return len(self.kind)


def fact_arrays(facts: Sequence[ParagraphColumns], languages: Sequence[str]) -> FactArrays:
    """The arrays of documents given by their paragraph facts and languages."""
    counts = np.fromiter((len(f.chars) for f in facts), dtype=np.int64, count=len(facts))
    total = int(counts.sum())

    def flat(column: str, dtype: type) -> npt.NDArray[np.generic]:
        return np.fromiter(
            itertools.chain.from_iterable(getattr(f, column) for f in facts),
            dtype=dtype,
            count=total,
        )

    strings = pa.array(
        itertools.chain.from_iterable(f.anchors for f in facts), pa.large_string(), size=total
    )
    return _arrays(
        counts,
        flat("chars", np.float64).astype(np.float64),
        flat("short", np.bool_).astype(np.bool_),
        flat("sentences", np.int64).astype(np.int64),
        flat("clauses", np.int64).astype(np.int64),
        strings,
        languages,
    )


def table_arrays(table: pa.Table) -> FactArrays:
    """The arrays of the documents of a facts table (its ``language`` and paragraph
    columns), straight from its Arrow lists: no Python object per paragraph or anchor.
    Flattened, split and encoded chunk by chunk (one facts part each), never one copy of
    every anchor string: at 240,000 generated 1 kB documents, 6 million tokens."""

    def flat(name: str) -> pa.ChunkedArray:
        return pc.list_flatten(table.column(name))

    def numbers(name: str, dtype: type) -> npt.NDArray[np.generic]:
        return np.asarray(flat(name).to_numpy(), dtype=dtype)

    lengths = pc.list_value_length(table.column("paragraph_chars")).to_numpy()
    strings = flat("paragraph_anchors")
    return _arrays(
        np.asarray(lengths, dtype=np.int64),
        numbers("paragraph_chars", np.float64).astype(np.float64),
        numbers("paragraph_short", np.bool_).astype(np.bool_),
        numbers("paragraph_sentences", np.int64).astype(np.int64),
        numbers("paragraph_clauses", np.int64).astype(np.int64),
        strings,
        table.column("language"),
    )


def _arrays(
    counts: Ints,
    chars: Floats,
    short: Bools,
    sentences: Ints,
    clauses: Ints,
    strings: pa.Array | pa.ChunkedArray,
    languages: Sequence[str] | pa.ChunkedArray,
) -> FactArrays:
    """:class:`FactArrays` from the flat paragraph columns (``counts`` per document) and
    the anchor strings (one per paragraph, space-separated), split and encoded in Arrow."""
    documents = len(counts)
    total = int(counts.sum())
    starts = np.zeros(documents, dtype=np.int64)
    if documents > 1:
        starts[1:] = np.cumsum(counts)[:-1]
    owner = np.repeat(np.arange(documents, dtype=np.int64), counts)
    wide = np.int32 if total < 2**31 else np.int64
    pieces = strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]
    token_chunks: list[pa.Array] = []
    rows: list[npt.NDArray[np.signedinteger[Any]]] = []
    present: list[Bools] = []
    first = 0
    for piece in pieces:
        split = pc.split_pattern(piece, " ")
        tokens = split.flatten()
        # The paragraph of each token and whether it is one (an empty string splits into
        # one empty token), from the offsets of the lists and strings: no pass over them.
        rows.append(np.repeat(np.arange(first, first + len(split), dtype=wide), _lengths(split)))
        present.append(_lengths(tokens) > 0)
        token_chunks.append(tokens)
        first += len(split)
    del pieces, strings
    # One dictionary over the chunks, codes in order of first appearance.
    kind_of = token_chunks[0].type if token_chunks else pa.large_string()
    encoded = pc.dictionary_encode(pa.chunked_array(token_chunks, kind_of))
    dictionary = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], kind_of)
    kind = np.where(
        np.asarray(pc.starts_with(dictionary, "n:"), dtype=np.bool_),
        NUMBER,
        np.where(np.asarray(pc.starts_with(dictionary, "w:"), dtype=np.bool_), NAME, OTHER),
    ).astype(np.int8)
    code = np.concatenate(
        [np.zeros(0, dtype=np.int32)]
        + [
            np.asarray(chunk.indices, dtype=np.int32)[kept]
            for chunk, kept in zip(encoded.chunks, present, strict=True)
        ]
    )
    del encoded, token_chunks, dictionary
    row = np.concatenate(
        [np.zeros(0, dtype=wide)] + [r[kept] for r, kept in zip(rows, present, strict=True)]
    )
    del rows, present
    # Numbers per paragraph: the anchor tokens that are numbers (as the facts' strings
    # count them), and per paragraph and the next one, counted on their union (a 2-1 step).
    is_number = kind[code] == NUMBER
    numbers = np.bincount(row[is_number], minlength=total).astype(np.int64)
    number_rows = row[is_number].astype(np.int64)
    number_codes = code[is_number].astype(np.int64)
    del is_number
    pair_numbers = _pair_numbers(numbers, number_rows, number_codes, owner, starts, counts)
    del number_rows, number_codes
    prose: Floats = np.bincount(owner, np.where(short, 0.0, chars), documents).astype(np.float64)
    every: Floats = np.bincount(owner, chars, documents).astype(np.float64)
    packed = Packed(
        starts, counts, chars, short, sentences, clauses, numbers, pair_numbers, prose, every
    )
    anchor_doc = owner[row].astype(np.int32)
    del owner
    paragraph = (row - starts[anchor_doc]).astype(np.int32)
    return FactArrays(packed, _language_codes(languages), anchor_doc, paragraph, code, kind)


def _language_codes(languages: Sequence[str] | pa.ChunkedArray) -> Ints:
    """Each document's language as its rank among the distinct languages."""
    if isinstance(languages, pa.ChunkedArray):
        names = pa.array(sorted(pc.unique(languages).to_pylist()), pa.string())
        at = pc.index_in(languages, value_set=names)
        return np.asarray(at.to_numpy(), dtype=np.int64)
    ranks = {language: k for k, language in enumerate(sorted(set(languages)))}
    return np.array([ranks[x] for x in languages], dtype=np.int64)


def _lengths(values: pa.Array) -> Ints:
    """The lengths of the items of a list or string array, from its offsets buffer."""
    width = (
        np.int64
        if pa.types.is_large_list(values.type) or pa.types.is_large_string(values.type)
        else np.int32
    )
    offsets = np.frombuffer(values.buffers()[1], dtype=width)
    return np.diff(offsets[values.offset : values.offset + len(values) + 1]).astype(np.int64)


def _pair_numbers(
    numbers: Ints, row: Ints, code: Ints, owner: Ints, starts: Ints, counts: Ints
) -> Ints:
    """:func:`flows.stages.align_batch.pack_columns`' count of the numbers of a paragraph
    and the next one on their union: 0 for a document's last paragraph, else the two
    counts less the numbers both hold."""
    total = len(numbers)
    following = np.zeros(total, dtype=np.int64)
    following[:-1] = numbers[1:]
    out = numbers + following
    if total:
        last = starts + counts - 1
        out[last[counts > 0]] = 0
    # A number held by paragraphs k and k + 1 of one document (rows are global, so
    # consecutive rows of one code in the order (code, row) that differ by one).
    order = np.lexsort((row, code))
    c, r = code[order], row[order]
    twice = (c[1:] == c[:-1]) & (r[1:] == r[:-1] + 1)
    at = r[:-1][twice]
    at = at[owner[at] == owner[at + 1]]
    np.subtract.at(out, at, 1)
    return out


def profiles(arrays: FactArrays) -> tuple[Floats, Bools, Ints]:
    """:func:`flows.engine.pairs._profile` of every document ([documents, 4], whether it
    has one) and its prose paragraph count: where its three longest prose paragraphs sit,
    as shares of its prose characters, and the longest one's share."""
    packed = arrays.packed
    n = arrays.documents
    owner = np.repeat(np.arange(n, dtype=np.int64), packed.counts)
    prose = ~packed.short
    p_owner = owner[prose]
    p_chars = packed.chars[prose].astype(np.int64)
    count = np.bincount(p_owner, minlength=n).astype(np.int64)
    total = np.bincount(p_owner, p_chars, minlength=n).astype(np.int64)
    firsts = np.zeros(n, dtype=np.int64)
    if n > 1:
        firsts[1:] = np.cumsum(count)[:-1]
    # Characters before each prose paragraph within its document (exact ints).
    preceding = np.cumsum(p_chars) - p_chars
    before = preceding - preceding[firsts[p_owner]] if len(preceding) else preceding
    safe = np.maximum(total, 1)[p_owner]
    middle = (before + p_chars / 2) / safe
    position = np.arange(len(p_chars), dtype=np.int64)
    # Longest first, the earlier first among equals (Python's stable sort on -chars).
    order = np.lexsort((position, -p_chars, p_owner))
    rank = np.arange(len(order), dtype=np.int64) - firsts[p_owner[order]]
    out = np.zeros((n, 4), dtype=np.float64)
    for place in range(3):
        chosen = order[rank == place]
        out[p_owner[chosen], place] = middle[chosen]
    longest = order[rank == 0]
    out[p_owner[longest], 3] = p_chars[longest] / safe[longest]
    valid = (count >= 3) & (total != 0)
    return out, valid, count


_SCAN = 64  # documents looked at each way in a sorted neighbourhood
_PLACE = 0.06  # how far (share of the prose) a long paragraph may move in translation
_LONG = 12  # prose paragraphs from which a text's profile must agree in all three places


def structure_pairs(arrays: FactArrays, window: int, least_prose: int) -> Ints:
    """:func:`flows.engine.pairs._by_structure` in arrays: the pairs (as ``i * documents +
    j``, i < j, ascending, distinct) that the sorted neighbourhoods propose. In the order of
    each place, each document and the next ``window`` documents of another language on
    either side (at most ``_SCAN`` looked at each way, stopping where the place differs by
    more than ``_PLACE``), kept when their prose counts are within 0.6-1.67 of each other
    and their profiles agree."""
    profile, valid, count = profiles(arrays)
    n = arrays.documents
    keyed = np.flatnonzero(valid & (count >= least_prose))
    found: list[Ints] = []
    for axis in range(3):
        order = keyed[np.lexsort((keyed, profile[keyed, axis]))]
        value = profile[order, axis]
        language = arrays.language[order]
        for step in (1, -1):
            xs = np.arange(len(order), dtype=np.int64)
            near = np.zeros(len(order), dtype=np.int64)
            for distance in range(1, _SCAN + 1):
                ys = xs + step * distance
                inside = (ys >= 0) & (ys < len(order))
                xs, ys, near = xs[inside], ys[inside], near[inside]
                close = np.abs(value[ys] - value[xs]) <= _PLACE
                xs, ys, near = xs[close], ys[close], near[close]
                other = language[ys] != language[xs]
                near = near + other
                i, j = order[xs[other]], order[ys[other]]
                agree = _agree(profile, count, i, j)
                left, right = np.minimum(i, j)[agree], np.maximum(i, j)[agree]
                found.append(left * n + right)
                going = ~(other & (near >= window))
                xs, near = xs[going], near[going]
                if not len(xs):
                    break
    if not found:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(found))


def _agree(profile: Floats, count: Ints, i: Ints, j: Ints) -> Bools:
    """The prose-count ratio and :func:`flows.engine.pairs._agree` of pairs (i, j)."""
    ratio = count[i] / count[j]
    long = np.minimum(count[i], count[j]) >= _LONG
    place = np.where(long, _PLACE / 3, _PLACE)
    places = np.zeros(len(i), dtype=np.int64)
    for axis in range(3):
        places += np.abs(profile[i, axis] - profile[j, axis]) <= place
    share = profile[i, 3] / profile[j, 3]
    agree: Bools = (
        (ratio >= 0.6)
        & (ratio <= 1 / 0.6)
        & (places >= np.where(long, 3, 2))
        & (share >= 0.67)
        & (share <= 1.5)
    )
    return agree


def shape_codes(arrays: FactArrays, least_prose: int) -> tuple[Ints, Ints]:
    """:func:`flows.engine.pairs.shapes` of the documents of ``least_prose`` prose
    paragraphs or more, as (document, shingle code) rows: three consecutive prose
    paragraphs' sentence counts (up to 5) and whether each is much longer or shorter than
    the one before."""
    packed = arrays.packed
    n = arrays.documents
    owner = np.repeat(np.arange(n, dtype=np.int64), packed.counts)
    prose = ~packed.short
    p_owner = owner[prose]
    count = np.bincount(p_owner, minlength=n)
    chars = packed.chars[prose]
    sentences = np.minimum(packed.sentences[prose], 5)
    if len(p_owner) < 3:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = np.arange(len(p_owner) - 2)
    keep = (p_owner[first] == p_owner[first + 2]) & (count[p_owner[first]] >= least_prose)
    first = first[keep]

    def step(one: Ints, following: Ints) -> Ints:
        ratio = chars[following] / np.maximum(1.0, chars[one])
        return np.where(ratio > 1.3, 1, np.where(ratio < 1 / 1.3, -1, 0)).astype(np.int64)

    code = sentences[first] * 36 + sentences[first + 1] * 6 + sentences[first + 2]
    code = (code * 3 + step(first, first + 1) + 1) * 3 + step(first + 1, first + 2) + 1
    return p_owner[first], code.astype(np.int64)


@dataclass(frozen=True, slots=True)
class AnchorIndex:
    """What :func:`shared_anchors` looks up, made once for a corpus read in many blocks of
    candidates: each document's distinct anchor codes that another document holds too
    (``held_doc``, ``held_code``, by document then code; ``doc_first`` and ``doc_count``
    where each document's are), and where each document's anchor rows begin
    (``row_first``, one more than the documents: the rows are in document order)."""

    held_doc: Int32s
    held_code: Int32s
    doc_first: Ints
    doc_count: Ints
    row_first: Ints


def anchor_index(arrays: FactArrays) -> AnchorIndex:
    """The :class:`AnchorIndex` of the documents."""
    held_doc, held_code = _document_codes(arrays)
    n = arrays.documents
    doc_count = np.bincount(held_doc, minlength=n).astype(np.int64)
    doc_first = np.zeros(n, dtype=np.int64)
    if n > 1:
        doc_first[1:] = np.cumsum(doc_count)[:-1]
    row_first = np.zeros(n + 1, dtype=np.int64)
    row_first[1:] = np.cumsum(np.bincount(arrays.anchor_doc, minlength=n))
    return AnchorIndex(held_doc, held_code, doc_first, doc_count, row_first)


def shared_anchors(
    arrays: FactArrays, left: Ints, right: Ints, index: AnchorIndex | None = None
) -> SharedArrays:
    """The anchors each candidate's two documents share, as the array screen reads them
    (:class:`~flows.stages.align_batch.SharedArrays`): per candidate, a bit per shared
    anchor (when there are :data:`~flows.stages.align_batch.MASK_BITS` or fewer), which bits
    are numbers and names, and per paragraph of either side the bits it holds.

    The pairs' shared codes are found a block of 64 left documents at a time: a code held
    by the t-th document of the block sets bit t of its entry in one array over the codes,
    and each candidate's right-document codes are looked up there (the work is the
    candidates' anchors, in a few array operations per block). ``index``: the corpus's
    :class:`AnchorIndex`, made once when the candidates come in many calls."""
    candidates = len(left)
    index = anchor_index(arrays) if index is None else index
    held_code, doc_first, doc_count = index.held_code, index.doc_first, index.doc_count
    mark = np.zeros(max(1, arrays.codes), dtype=np.uint64)
    order = np.argsort(left, kind="stable")
    lefts = left[order]
    block_docs = np.unique(lefts)
    pair_k: list[Ints] = []
    pair_code: list[Ints] = []
    for start in range(0, len(block_docs), 64):
        docs = block_docs[start : start + 64]
        lo = int(np.searchsorted(lefts, docs[0], "left"))
        hi = int(np.searchsorted(lefts, docs[-1], "right"))
        ks = order[lo:hi]
        # Bit t: the t-th document of the block.
        rows = ranges(doc_first[docs], doc_count[docs])
        bit_of = np.repeat(np.arange(len(docs), dtype=np.uint64), doc_count[docs])
        np.bitwise_or.at(mark, held_code[rows], np.left_shift(np.uint64(1), bit_of))
        lookup = ranges(doc_first[right[ks]], doc_count[right[ks]])
        owner = np.repeat(ks, doc_count[right[ks]])
        bit = np.searchsorted(docs, left[owner]).astype(np.uint64)
        codes = held_code[lookup]
        hit = ((mark[codes] >> bit) & np.uint64(1)).astype(np.bool_)
        pair_k.append(owner[hit])
        pair_code.append(codes[hit].astype(np.int64))
        mark[held_code[rows]] = 0
    return _masks(arrays, index, left, right, candidates, pair_k, pair_code)


_CHUNK_ROWS = 1 << 20  # anchor rows sorted at once (16 MB of keys)


def _document_codes(arrays: FactArrays) -> tuple[Int32s, Int32s]:
    """Each document's distinct anchor codes, those held by two documents or more (no
    other can be shared), ordered by document then code. Sorted a run of whole documents
    at a time (the rows are in document order): never a key per anchor row of the corpus."""
    width = max(1, arrays.codes)
    # A code in one anchor row is in one document: left out before the sort.
    several = np.bincount(arrays.anchor_code, minlength=width) >= 2
    n = arrays.documents
    row_first = np.zeros(n + 1, dtype=np.int64)
    row_first[1:] = np.cumsum(np.bincount(arrays.anchor_doc, minlength=n))
    docs: list[Int32s] = []
    codes: list[Int32s] = []
    start = 0
    while start < n:
        end = int(np.searchsorted(row_first, row_first[start] + _CHUNK_ROWS, "right")) - 1
        end = min(n, max(end, start + 1))
        lo, hi = int(row_first[start]), int(row_first[end])
        doc, code = arrays.anchor_doc[lo:hi], arrays.anchor_code[lo:hi]
        rows = several[code]
        key = distinct(doc[rows].astype(np.int64) * width + code[rows])
        docs.append((key // width).astype(np.int32))
        codes.append((key % width).astype(np.int32))
        start = end
    doc = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int32)
    code = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32)
    kept = np.bincount(code, minlength=width)[code] >= 2
    return doc[kept], code[kept]


def distinct(values: Ints) -> Ints:
    """The distinct values, ascending: by sorting (numpy's ``unique`` hashes, several
    times slower on millions of ints)."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def ranges(firsts: Ints, lengths: Ints) -> Ints:
    """The indexes ``firsts[k] .. firsts[k] + lengths[k] - 1`` of every k, concatenated."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(firsts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def _masks(
    arrays: FactArrays,
    index: AnchorIndex,
    left: Ints,
    right: Ints,
    candidates: int,
    pair_k: list[Ints],
    pair_code: list[Ints],
) -> SharedArrays:
    """The bit masks of the (candidate, shared code) rows: bits numbered per candidate in
    code order, each paragraph's mask the bits of the shared codes it holds."""
    packed = arrays.packed
    k = np.concatenate(pair_k) if pair_k else np.zeros(0, dtype=np.int64)
    code = np.concatenate(pair_code) if pair_code else np.zeros(0, dtype=np.int64)
    order = np.lexsort((code, k))
    k, code = k[order], code[order]
    shared = np.bincount(k, minlength=candidates).astype(np.int64)
    firsts = np.cumsum(shared) - shared
    bit_index = np.arange(len(k), dtype=np.int64) - firsts[k]
    fits = shared[k] <= MASK_BITS
    k, code, bit_index = k[fits], code[fits], bit_index[fits]
    bit = np.left_shift(np.uint64(1), bit_index.astype(np.uint64))
    numbers = np.zeros(candidates, dtype=np.uint64)
    names = np.zeros(candidates, dtype=np.uint64)
    kind = arrays.kind[code]
    np.bitwise_or.at(numbers, k[kind == NUMBER], bit[kind == NUMBER])
    np.bitwise_or.at(names, k[kind == NAME], bit[kind == NAME])
    # Where each (document, code) is held: the anchor rows of the shared codes in the
    # candidates' documents, ordered by document and code.
    width = max(1, arrays.codes)
    involved = np.unique(np.concatenate([left[k], right[k]]))
    first = index.row_first[involved]
    rows = ranges(first, index.row_first[involved + 1] - first)
    wanted_code = np.zeros(width, dtype=np.bool_)
    wanted_code[code] = True
    rows = rows[wanted_code[arrays.anchor_code[rows]]]
    held_key = arrays.anchor_doc[rows].astype(np.int64) * width + arrays.anchor_code[rows]
    held_order = np.argsort(held_key, kind="stable")
    held_key = held_key[held_order]
    held_paragraph = arrays.anchor_paragraph[rows][held_order]
    sides = []
    for docs in (left, right):
        offsets = np.zeros(candidates, dtype=np.int64)
        lengths = packed.counts[docs]
        if candidates > 1:
            offsets[1:] = np.cumsum(lengths)[:-1]
        flat = np.zeros(int(lengths.sum()), dtype=np.uint64)
        wanted = docs[k] * width + code
        lo = np.searchsorted(held_key, wanted, "left")
        hi = np.searchsorted(held_key, wanted, "right")
        found = ranges(lo, hi - lo)
        which = np.repeat(np.arange(len(k), dtype=np.int64), hi - lo)
        np.bitwise_or.at(flat, offsets[k[which]] + held_paragraph[found], bit[which])
        sides.append((flat, offsets))
    (left_flat, left_offsets), (right_flat, right_offsets) = sides
    return SharedArrays(
        shared,
        numbers,
        names,
        left_flat,
        left_offsets,
        right_flat,
        right_offsets,
    )


__all__ = [
    "AnchorIndex",
    "FactArrays",
    "ParagraphColumns",
    "anchor_index",
    "distinct",
    "fact_arrays",
    "profiles",
    "ranges",
    "shape_codes",
    "shared_anchors",
    "structure_pairs",
    "table_arrays",
]
