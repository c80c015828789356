"""Many candidate pairs' alignment evidence at once (numpy): a cheap screen before align.

:func:`flows.stages.align.quick_evidence` and the first pass of
:func:`flows.stages.align.align` (the whole-text length ratio, a band around the diagonal)
computed for every candidate pair of a corpus in a few array operations instead of one
Python loop per pair and paragraph. Same steps, same formulas and the same order of
operations, so the values are :func:`~flows.stages.align.align`'s to rounding (a logarithm
may differ in its last bit): a caller uses them to leave out the pairs that cannot reach a
threshold, and aligns the others as before. Shared anchors are counted exactly through
per-candidate bit masks over the anchors the two documents share (:func:`shared_masks`).
Pure: no IO.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from flows.stages.align import (
    _FAR_COMMAS,
    _MERGE_COST,
    _NAME_BONUS,
    _NEAR_COMMAS,
    _NUMBER_PENALTY,
    _OTHER_SENTENCES,
    _SAME_SENTENCES,
    _SHARED_BONUS,
    _SKIP_PROSE,
    _SKIP_SHORT,
    _UNRELATED_VARIANCE,
    _VARIANCE_CHARS,
    _VARIANCE_FLOOR,
    _WORST_STEP,
    Paragraph,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Masks = npt.NDArray[np.uint64]

# Candidates per array batch: bounded memory whatever the corpus (cells = pairs x n x m),
# and each table's temporaries within a core's cache (2 MiB L2): 6,000 generated 5 kB
# documents, 23,756 first passes in 0.57 s CPU at 400,000 cells, 0.30-0.33 s at 100,000
# (25,000: 0.37 s, more batches).
_BATCH_CELLS = 100_000
MASK_BITS = 64  # shared anchors one candidate's masks can hold


@dataclass(frozen=True, slots=True)
class Packed:
    """The paragraphs of many documents in flat arrays, document k at
    ``starts[k] : starts[k] + counts[k]``."""

    starts: Ints
    counts: Ints
    chars: Floats
    short: npt.NDArray[np.bool_]
    sentences: Ints
    clauses: Ints
    numbers: Ints
    # Numbers of a paragraph and the next one counted on their union (a 2-1 step).
    pair_numbers: Ints
    prose_chars: Floats  # per document: characters of its non-short paragraphs
    all_chars: Floats


def pack(documents: Sequence[Sequence[Paragraph]]) -> Packed:
    """Flat arrays of the documents' paragraphs (:class:`Packed`)."""
    return pack_columns(
        [
            Columns(
                tuple(p.chars for p in d),
                tuple(p.short for p in d),
                tuple(p.sentences for p in d),
                tuple(p.clauses for p in d),
                tuple(" ".join(p.anchors) for p in d),
                tuple(p.numbers for p in d),
            )
            for d in documents
        ]
    )


@dataclass(frozen=True, slots=True)
class Columns:
    """One document's paragraphs as columns (anchors space-separated per paragraph), so
    the pairing step packs its facts without a Paragraph object per paragraph."""

    chars: Sequence[int]
    short: Sequence[bool]
    sentences: Sequence[int]
    clauses: Sequence[int]
    anchors: Sequence[str]
    numbers: Sequence[int]


def pack_columns(documents: Sequence[Columns]) -> Packed:
    """Flat arrays of the documents' paragraphs (:class:`Packed`), from their columns."""
    counts = np.array([len(d.chars) for d in documents], dtype=np.int64)
    starts = np.zeros(len(documents), dtype=np.int64)
    if len(documents) > 1:
        starts[1:] = np.cumsum(counts)[:-1]
    pair_numbers = []
    for d in documents:
        numbers = d.numbers
        for k, count in enumerate(numbers):
            last = k + 1 == len(numbers)
            following = 0 if last else numbers[k + 1]
            if last or not count + following:
                pair_numbers.append(0)
            elif not count or not following:
                pair_numbers.append(count + following)
            else:  # a number in both counts once
                both = set(d.anchors[k].split()) & set(d.anchors[k + 1].split())
                twice = sum(1 for x in both if x.startswith("n:"))
                pair_numbers.append(count + following - twice)

    def flat(column: str, dtype: type) -> npt.NDArray[Any]:
        return np.fromiter(
            itertools.chain.from_iterable(getattr(d, column) for d in documents),
            dtype=dtype,
            count=int(counts.sum()),
        )

    chars = flat("chars", np.float64)
    short = flat("short", np.bool_)
    owner = np.repeat(np.arange(len(documents)), counts)
    prose: Floats = np.bincount(owner, np.where(short, 0.0, chars), len(documents)).astype(
        np.float64
    )
    every: Floats = np.bincount(owner, chars, len(documents)).astype(np.float64)
    return Packed(
        starts,
        counts,
        chars,
        short,
        flat("sentences", np.int64),
        flat("clauses", np.int64),
        flat("numbers", np.int64),
        np.array(pair_numbers, dtype=np.int64),
        prose,
        every,
    )


@dataclass(frozen=True, slots=True)
class SharedMasks:
    """Per candidate, the anchors its two documents share as bits: each paragraph's mask
    (of the bits it holds) on either side, and which bits are numbers and names."""

    left: tuple[int, ...]
    right: tuple[int, ...]
    numbers: int
    names: int


def where_anchors(paragraphs: Sequence[Paragraph]) -> dict[str, int]:
    """Each anchor of a document and the paragraphs that hold it, as bits (index k: 1 << k):
    computed once per document, so a candidate's masks cost what the two share."""
    found: dict[str, int] = {}
    for k, p in enumerate(paragraphs):
        for x in p.anchors:
            found[x] = found.get(x, 0) | 1 << k
    return found


def shared_masks(
    where_a: dict[str, int], n: int, where_b: dict[str, int], m: int, shared: Iterable[str]
) -> SharedMasks | None:
    """The bit masks of the anchors two documents share (``where_*``: :func:`where_anchors`
    of each, ``n`` and ``m`` their paragraphs); None when there are more than
    :data:`MASK_BITS` (the caller aligns that pair in Python)."""
    ordered = sorted(shared)
    if len(ordered) > MASK_BITS:
        return None
    left, right = [0] * n, [0] * m
    numbers = names = 0
    for k, x in enumerate(ordered):
        bit = 1 << k
        if x.startswith("n:"):
            numbers |= bit
        elif x.startswith("w:"):
            names |= bit
        for side, holding in ((left, where_a[x]), (right, where_b[x])):
            rest = holding
            while rest:  # each paragraph bit set in ``holding``
                low = rest & -rest
                side[low.bit_length() - 1] |= bit
                rest ^= low
    return SharedMasks(tuple(left), tuple(right), numbers, names)


@dataclass(frozen=True, slots=True)
class SharedArrays:
    """:class:`SharedMasks` of many candidates in flat arrays: per candidate k, how many
    anchors its documents share (held as bits when 1 to :data:`MASK_BITS`; more, and the
    caller aligns it in Python), which bits are numbers and names, and the masks of its
    left document's paragraphs at ``left[left_offsets[k]:]`` (right likewise)."""

    count: Ints
    numbers: Masks
    names: Masks
    left: Masks
    left_offsets: Ints
    right: Masks
    right_offsets: Ints

    @property
    def held(self) -> npt.NDArray[np.bool_]:
        return (self.count > 0) & (self.count <= MASK_BITS)

    def take(self, rows: Ints) -> SharedArrays:
        """The candidates ``rows`` (their masks stay where they are)."""
        return SharedArrays(
            self.count[rows],
            self.numbers[rows],
            self.names[rows],
            self.left,
            self.left_offsets[rows],
            self.right,
            self.right_offsets[rows],
        )


def shared_arrays(masks: Sequence[SharedMasks | None]) -> SharedArrays:
    """The :class:`SharedArrays` of candidates given one by one (None: nothing shared)."""
    left_lengths = np.array([len(m.left) if m else 0 for m in masks], dtype=np.int64)
    right_lengths = np.array([len(m.right) if m else 0 for m in masks], dtype=np.int64)

    def flat(side: str) -> Masks:
        return np.fromiter(
            itertools.chain.from_iterable(getattr(m, side) for m in masks if m), dtype=np.uint64
        )

    def bits(kind: str) -> Masks:
        return np.array([getattr(m, kind) if m else 0 for m in masks], dtype=np.uint64)

    count = np.array(
        [int(m.numbers | m.names).bit_count() + _other_bits(m) if m else 0 for m in masks],
        dtype=np.int64,
    )
    return SharedArrays(
        count,
        bits("numbers"),
        bits("names"),
        flat("left"),
        np.cumsum(left_lengths) - left_lengths,
        flat("right"),
        np.cumsum(right_lengths) - right_lengths,
    )


def _other_bits(masks: SharedMasks) -> int:
    """Shared anchors neither numbers nor names (URLs): their bits, counted once."""
    every = 0
    for mask in (*masks.left, *masks.right):
        every |= mask
    return int(every & ~(masks.numbers | masks.names)).bit_count()


@dataclass(frozen=True, slots=True)
class _Side:
    """One side of a batch of candidates, padded to its longest document: [pairs, n]."""

    chars: Floats
    short: npt.NDArray[np.bool_]
    sentences: Ints
    clauses: Ints
    numbers: Ints
    pair_numbers: Ints
    masks: Masks
    counts: Ints


def _side(
    packed: Packed, docs: Ints, width: int, masks: Masks, offsets: Ints, held: npt.NDArray[np.bool_]
) -> _Side:
    """One side of a batch; ``masks[offsets[r] + p]`` the shared-anchor bits of paragraph p
    of row r's document, for the rows ``held``."""
    offsets_row = np.arange(width, dtype=np.int64)
    counts = packed.counts[docs]
    inside = offsets_row[None, :] < counts[:, None]
    index = np.where(inside, packed.starts[docs][:, None] + offsets_row[None, :], 0)
    with_masks = inside & held[:, None]
    if with_masks.any():
        at = np.where(with_masks, offsets[:, None] + offsets_row[None, :], 0)
        mask_rows = np.where(with_masks, masks[at], np.uint64(0))
    else:
        mask_rows = np.zeros((len(docs), width), dtype=np.uint64)
    return _Side(
        np.where(inside, packed.chars[index], 1.0),
        np.where(inside, packed.short[index], False),
        packed.sentences[index],
        packed.clauses[index],
        np.where(inside, packed.numbers[index], 0),
        np.where(inside, packed.pair_numbers[index], 0),
        mask_rows,
        counts,
    )


def _gain(
    la: Floats,
    lb: Floats,
    ratio: Floats,
    same: npt.NDArray[np.bool_],
    near: npt.NDArray[np.bool_],
    numbers: Ints,
    shared: Masks | None,
    number_bits: Masks,
    name_bits: Masks,
    merge: Floats | float,
) -> Floats:
    """:func:`flows.stages.align._step` on arrays (broadcast), in the same order."""
    expected = la * ratio
    variance = _VARIANCE_FLOOR + _VARIANCE_CHARS / np.maximum(1.0, (expected + lb) / 2.0)
    r = np.log((lb + 1.0) / (expected + 1.0))
    llr = 0.5 * np.log(_UNRELATED_VARIANCE / variance) - r * r / (2.0 * variance)
    llr = llr + r * r / (2.0 * _UNRELATED_VARIANCE)
    if shared is None:  # no anchor shared in the whole batch
        llr = llr - _NUMBER_PENALTY * np.minimum(numbers, 3)
    else:
        every = np.bitwise_count(shared).astype(np.int64)
        names = np.bitwise_count(shared & name_bits).astype(np.int64)
        shared_numbers = np.bitwise_count(shared & number_bits).astype(np.int64)
        bonus = _SHARED_BONUS * np.minimum(every - names, 3) + _NAME_BONUS * np.minimum(names, 2)
        llr = llr + bonus
        llr = llr - _NUMBER_PENALTY * np.minimum(numbers - 2 * shared_numbers, 3)
    llr = llr + np.where(same, _SAME_SENTENCES, _OTHER_SENTENCES)
    llr = llr + np.where(near, _NEAR_COMMAS, _FAR_COMMAS)
    return np.maximum(llr - merge, _WORST_STEP)


def _sides_gain(
    x: _Side,
    y: _Side,
    ratio: Floats,
    held: bool,
    number_bits: Masks,
    name_bits: Masks,
    merged: bool,
) -> Floats:
    """:func:`_gain` of every paragraph of ``x`` against every paragraph of ``y``
    ([pairs, n, m]); ``merged`` when one side's paragraphs are two merged into one."""
    merge: Floats | float = 0.0
    if merged:
        merge = _MERGE_COST + np.where(x.short[:, :, None] | y.short[:, None, :], 2.0, 0.0)
    return _gain(
        x.chars[:, :, None],
        y.chars[:, None, :],
        ratio,
        x.sentences[:, :, None] == y.sentences[:, None, :],
        np.abs(x.clauses[:, :, None] - y.clauses[:, None, :]) <= 1,
        x.numbers[:, :, None] + y.numbers[:, None, :],
        x.masks[:, :, None] & y.masks[:, None, :] if held else None,
        number_bits,
        name_bits,
        merge,
    )


def _ratio(packed: Packed, left: Ints, right: Ints) -> Floats:
    """:func:`flows.stages.align.length_ratio` of each pair."""
    a = np.where(packed.prose_chars[left] > 0, packed.prose_chars[left], packed.all_chars[left])
    b = np.where(packed.prose_chars[right] > 0, packed.prose_chars[right], packed.all_chars[right])
    return np.maximum(b, 1.0) / np.maximum(a, 1.0)


def _batches(left: Ints, right: Ints, packed: Packed, held: npt.NDArray[np.bool_]) -> list[Ints]:
    """Candidate indexes in batches of similar sizes, each table within
    :data:`_BATCH_CELLS` cells (pairs x rows x columns, padded); the pairs sharing no
    anchor apart, their batches skip the anchor terms."""
    n, m = packed.counts[left], packed.counts[right]
    order = np.lexsort((m, n, held))
    batches: list[Ints] = []
    start, widest = 0, 0
    kinds = held[order].tolist()
    for k, (rows, columns) in enumerate(zip(n[order].tolist(), m[order].tolist(), strict=True)):
        widest = max(widest, columns)
        full = (k + 1 - start) * (rows + 1) * (widest + 1) > _BATCH_CELLS
        if k > start and (full or kinds[k] != kinds[k - 1]):
            batches.append(order[start:k])
            start, widest = k, columns
    if start < len(order):
        batches.append(order[start:])
    return batches


def _batch_sides(
    packed: Packed, left: Ints, right: Ints, shared: SharedArrays, rows: Ints
) -> tuple[_Side, _Side, Masks, Masks, bool]:
    """Both sides of a batch of candidates (``rows``), the number and name bits of each,
    and whether any holds shared anchors."""
    held = shared.held[rows]
    n_max = int(packed.counts[left[rows]].max())
    m_max = int(packed.counts[right[rows]].max())
    a = _side(packed, left[rows], n_max, shared.left, shared.left_offsets[rows], held)
    b = _side(packed, right[rows], m_max, shared.right, shared.right_offsets[rows], held)
    numbers = np.where(held, shared.numbers[rows], np.uint64(0))
    names = np.where(held, shared.names[rows], np.uint64(0))
    return a, b, numbers, names, bool(held.any())


def quick_evidence(packed: Packed, left: Ints, right: Ints, shared: SharedArrays) -> Floats:
    """:func:`flows.stages.align.quick_evidence` of each pair (left[k], right[k])."""
    out = np.empty(len(left), dtype=np.float64)
    for rows in _batches(left, right, packed, shared.held):
        a, b, number_bits, name_bits, held = _batch_sides(packed, left, right, shared, rows)
        n_max, m_max = a.chars.shape[1], b.chars.shape[1]
        n, m = a.counts[:, None], b.counts[:, None]
        ratio = _ratio(packed, left[rows], right[rows])[:, None, None]
        i = np.arange(n_max)[None, :]
        centre = np.round(i * (m - 1) / np.maximum(1, n - 1)).astype(np.int64)
        best = np.full((len(rows), n_max), -np.inf)
        for shift in (-1, 0, 1):
            j = centre + shift
            valid = (j >= 0) & (j < m) & (i < n)
            jj = np.clip(j, 0, m_max - 1)

            def pick(values: npt.NDArray[np.generic], jj: Ints = jj) -> npt.NDArray[np.generic]:
                return np.take_along_axis(values, jj, axis=1)

            gain = _gain(
                a.chars,
                pick(b.chars),  # type: ignore[arg-type]
                ratio[:, :, 0],
                a.sentences == pick(b.sentences),
                np.abs(a.clauses - pick(b.clauses)) <= 1,  # type: ignore[operator]
                a.numbers + pick(b.numbers),  # type: ignore[operator]
                a.masks & pick(b.masks) if held else None,  # type: ignore[operator]
                number_bits[:, None],
                name_bits[:, None],
                0.0,
            )
            best = np.where(valid, np.maximum(best, gain), best)
        total = np.where(np.arange(n_max)[None, :] < n, best, 0.0).sum(axis=1)
        out[rows] = total / a.counts
    return out


def first_pass_evidence(
    packed: Packed,
    left: Ints,
    right: Ints,
    shared: SharedArrays,
    band: int,
) -> Floats:
    """The evidence of :func:`flows.stages.align.align`'s first pass (``refine=False``) of
    each pair (left[k], right[k]): the same dynamic programme, a row of the table at a time
    for a whole batch of pairs."""
    out = np.empty(len(left), dtype=np.float64)
    for rows in _batches(left, right, packed, shared.held):
        out[rows] = _first_pass(packed, left, right, shared, rows, band)
    return out


def _first_pass(
    packed: Packed, left: Ints, right: Ints, shared: SharedArrays, rows: Ints, band: int
) -> Floats:
    a, b, number_bits, name_bits, held = _batch_sides(packed, left, right, shared, rows)
    n_max, m_max = a.chars.shape[1], b.chars.shape[1]
    pairs = len(rows)
    ratio = _ratio(packed, left[rows], right[rows])[:, None, None]
    nb, mb = number_bits[:, None, None], name_bits[:, None, None]
    # 1-1: a[i] with b[j], [pairs, n, m]
    one = _sides_gain(a, b, ratio, held, nb, mb, merged=False)
    # 2-1: a[i], a[i+1] with b[j]; 1-2: a[i] with b[j], b[j+1] (the last index padded)
    a2, b2 = _twos(a), _twos(b)
    two_one = _sides_gain(a2, b, ratio, held, nb, mb, merged=True)
    one_two = _sides_gain(a, b2, ratio, held, nb, mb, merged=True)
    skip_a = -np.where(a.short, _SKIP_SHORT, _SKIP_PROSE)
    skip_b = -np.where(b.short, _SKIP_SHORT, _SKIP_PROSE)
    # cost of skipping b[0..j-1] in a row: the prefix sums drive the 0-1 moves
    prefix = np.zeros((pairs, m_max + 1))
    prefix[:, 1:] = np.cumsum(skip_b, axis=1)
    n, m = a.counts[:, None], b.counts[:, None]
    columns = np.arange(m_max + 1)[None, :]
    best = np.full((n_max + 1, pairs, m_max + 1), -np.inf)
    open_rows = np.full((n_max + 1, pairs, m_max + 1), -np.inf)  # rows as expandable
    for i in range(n_max + 1):
        here = np.full((pairs, m_max + 1), -np.inf)
        if i == 0:
            here[:, 0] = 0.0
        if i >= 1:
            above = open_rows[i - 1]
            here[:, 1:] = np.maximum(here[:, 1:], above[:, :-1] + one[:, i - 1, :])
            here = np.maximum(here, above + skip_a[:, i - 1 : i])
            if m_max >= 2:
                here[:, 2:] = np.maximum(here[:, 2:], above[:, :-2] + one_two[:, i - 1, :-1])
        if i >= 2:
            here[:, 1:] = np.maximum(here[:, 1:], open_rows[i - 2][:, :-1] + two_one[:, i - 2, :])
        if band <= 0:
            lo, hi = np.zeros_like(n), m
        else:
            centre = np.floor(i * m / n).astype(np.int64)
            lo, hi = np.maximum(0, centre - band), np.minimum(m, centre + band)
        inside = (columns >= lo) & (columns <= hi)
        # 0-1 moves within the row, from a cell k of the band to j (k < j <= hi + 1)
        start = np.maximum.accumulate(np.where(inside, here - prefix, -np.inf), axis=1)
        chained = np.full_like(here, -np.inf)
        chained[:, 1:] = start[:, :-1] + prefix[:, 1:]
        reach = (columns > lo) & (columns <= hi + 1)
        here = np.where(reach, np.maximum(here, chained), here)
        best[i] = here
        open_rows[i] = np.where(inside & (i <= n), here, -np.inf)
    final = best[a.counts, np.arange(pairs), b.counts]
    worst = _WORST_STEP * (a.counts + b.counts)
    return np.where(np.isfinite(final), final, worst)


def _twos(side: _Side) -> _Side:
    """Each paragraph merged with the next (the last one with padding)."""

    def nxt(values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        out = np.empty_like(values)
        out[:, :-1] = values[:, 1:]
        out[:, -1:] = values[:, -1:]
        return out

    return _Side(
        side.chars + nxt(side.chars),  # type: ignore[operator]
        side.short | nxt(side.short),  # type: ignore[operator]
        side.sentences + nxt(side.sentences),  # type: ignore[operator]
        side.clauses + nxt(side.clauses),  # type: ignore[operator]
        side.pair_numbers,
        side.pair_numbers,
        side.masks | nxt(side.masks),  # type: ignore[operator]
        side.counts,
    )


__all__ = [
    "MASK_BITS",
    "Packed",
    "SharedArrays",
    "SharedMasks",
    "first_pass_evidence",
    "pack",
    "quick_evidence",
    "shared_arrays",
    "shared_masks",
]
