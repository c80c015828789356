"""The pairs step's candidates, found one block of documents at a time and kept on disk.

A key (rare anchor, structure shingle, URL, published day and source) held by k documents
proposes up to k²/2 pairs while k <= ``max_anchor_docs``: in a corpus whose keys come from a
fixed pool, ten times the documents put ten times as many on each key and up to a hundred
times as many pairs (generated 1 kB documents, whose days come from a fixed window: 60,000
-> 240,000 documents, 10,506 -> 169,044 published-day candidates, 25,594 -> 236,606 in
all; 1.4 million at 600,000). The step held them, and every pair of documents sharing a
key before counting, as Python objects and corpus-wide arrays. Here the keys are posting
lists, compact arrays over the documents; the pairs are made for one block of left
documents at a time (cut where the pairs it would make reach a budget), each pair's keys
counted within its block (every pair with its left document in the block is made there),
screened there, and the candidates written to a file read back by memory map: what is
held grows with the documents, not with their pairs.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from flows.engine.pair_blocks import distinct, ranges

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Bits = npt.NDArray[np.uint8]
AnyInts = npt.NDArray[np.signedinteger[Any]]

# A candidate's signals, as bits.
ANCHORS, URL, PUBLISHED, STRUCTURE = 1, 2, 4, 8
_NAMES = (("anchors", ANCHORS), ("published", PUBLISHED), ("structure", STRUCTURE), ("url", URL))

# Pairs (before they are counted and filtered) made at once: about 40 bytes each while a
# block is counted, so a block holds some 40 MB whatever the corpus.
BLOCK_PAIRS = 1 << 20

Enough = Callable[[Ints, Ints, Ints], Bools]


def signal_names(bits: int) -> frozenset[str]:
    """The signals of a candidate's bits."""
    return frozenset(name for name, bit in _NAMES if bits & bit)


@dataclass(frozen=True, slots=True)
class Postings:
    """The keys held by 2 to ``max_docs`` documents as posting lists. Entries are ordered
    by key, then document; for each entry, its document and how many entries follow it in
    its key's list (the pairs it is the left document of). ``by_owner`` lists the entries
    by document (``owner_first[d]`` where document d's begin); ``sizes``: each document's
    distinct keys, the common ones too."""

    owner: Ints
    after: Ints
    by_owner: Ints
    owner_first: Ints
    sizes: Ints

    def load(self) -> Ints:
        """The pairs (before any filter) each document is the left document of."""
        documents = len(self.sizes)
        return np.bincount(self.owner, self.after, minlength=documents).astype(np.int64)


def postings(owner: AnyInts, code: AnyInts, documents: int, max_docs: int) -> Postings:
    """Posting lists of the keys ``code[k]`` held by documents ``owner[k]`` (repeats
    counted once): only the keys of 2 to ``max_docs`` documents block anything (a common
    key's pairs would grow with the square of its documents)."""
    sizes = np.zeros(documents, dtype=np.int64)
    if len(code):
        width = int(code.max()) + 1
        held = _held(owner, code, width)
        owner, code = held // width, held % width
        del held
        sizes = np.bincount(owner, minlength=documents).astype(np.int64)
        frequency = np.bincount(code, minlength=width)
        kept = ((frequency >= 2) & (frequency <= max_docs))[code]
        owner, code = owner[kept], code[kept]
        order = np.lexsort((owner, code))  # by key, then document: members ascend
        owner, code = owner[order], code[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])  # [0] when there is none
    lengths = np.diff(np.r_[starts, len(code)]).astype(np.int64)
    ends = np.repeat(starts + lengths, lengths)
    after = ends - np.arange(len(code), dtype=np.int64) - 1
    by_owner = np.argsort(owner, kind="stable").astype(np.int64)
    count = np.bincount(owner, minlength=documents)
    owner_first = np.zeros(documents + 1, dtype=np.int64)
    owner_first[1:] = np.cumsum(count)
    return Postings(owner.astype(np.int64), after, by_owner, owner_first, sizes)


_RUN_ROWS = 1 << 20  # rows sorted at once (16 MB of keys)


def _held(owner: AnyInts, code: AnyInts, width: int) -> Ints:
    """The distinct ``owner * width + code``, ascending: a run of whole documents at a
    time when the rows come in document order (as the facts give them), so no sort holds
    a key per row of the corpus."""
    if len(owner) > 1 and bool(np.all(owner[1:] >= owner[:-1])):
        runs: list[Ints] = []
        start = 0
        while start < len(owner):
            end = min(len(owner), start + _RUN_ROWS)
            if end < len(owner):  # back to the first row of the document cut ...
                end = int(np.searchsorted(owner, owner[end], "left"))
                if end <= start:  # ... or past a document longer than a run
                    end = int(np.searchsorted(owner, owner[start], "right"))
            runs.append(distinct(owner[start:end].astype(np.int64) * width + code[start:end]))
            start = end
        return np.concatenate(runs)
    return distinct(owner.astype(np.int64) * width + code)


def block_pairs(found: Postings, language: Ints, lo: int, hi: int, enough: Enough) -> Ints:
    """The pairs (``left * documents + right``, ascending) of documents of different
    languages whose left document is in ``lo .. hi - 1`` that share keys, kept where
    ``enough(shared, keys of left, keys of right)``: all of a pair's shared keys are
    counted here, since each pair is made in the block of its left document."""
    documents = len(language)
    entries = found.by_owner[found.owner_first[lo] : found.owner_first[hi]]
    after = found.after[entries]
    left = np.repeat(found.owner[entries], after)
    right = found.owner[ranges(entries + 1, after)]
    other = language[left] != language[right]
    pair, shared = _counted(left[other] * documents + right[other])
    kept = enough(shared, found.sizes[pair // documents], found.sizes[pair % documents])
    return pair[kept]


def block_bounds(load: Ints, budget: int) -> list[tuple[int, int]]:
    """Consecutive document ranges, each making about ``budget`` pairs or fewer (a
    document making more has a range of its own)."""
    documents = len(load)
    if not documents:
        return []
    total = np.cumsum(load)
    bounds = [0]
    while bounds[-1] < documents:
        start = bounds[-1]
        reached = int(total[start - 1]) if start else 0
        end = int(np.searchsorted(total, reached + budget, "right"))
        bounds.append(min(documents, max(end, start + 1)))
    return list(itertools.pairwise(bounds))


def merge(keys: list[Ints], bits: list[int]) -> tuple[Ints, Bits]:
    """The distinct pairs of several ascending key arrays, each with its signal bit,
    and the bits of every signal that found each."""
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    every = np.concatenate(keys)
    signal = np.concatenate(
        [np.full(len(k), bit, dtype=np.uint8) for k, bit in zip(keys, bits, strict=True)]
    )
    order = np.argsort(every, kind="stable")
    every, signal = every[order], signal[order]
    if not len(every):
        return every, signal
    starts = np.flatnonzero(np.r_[True, every[1:] != every[:-1]])
    return every[starts], np.bitwise_or.reduceat(signal, starts).astype(np.uint8)


def _counted(values: Ints) -> tuple[Ints, Ints]:
    """The distinct values, ascending, and how often each occurs."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)]).astype(np.int64)


class CandidateStore(Mapping[tuple[int, int], frozenset[str]]):
    """The candidates, (i, j) -> their signals, i < j: appended block by block in
    ascending order to two files (the pair as ``i * documents + j``, its signal bits) in a
    temporary folder, then read by memory map: a look-up reads a few pages, a pass over
    all of them one chunk at a time. ``screened``: the candidates the array screen kept,
    the few that are aligned. A context manager: the folder goes at its end."""

    def __init__(self, documents: int, folder: Path | None = None) -> None:
        self.documents = documents
        self.screened: list[tuple[int, int]] = []
        self._folder = tempfile.TemporaryDirectory(
            prefix="pair-candidates-", dir=None if folder is None else str(folder)
        )
        where = Path(self._folder.name)
        self._paths = (where / "keys.bin", where / "bits.bin")
        self._writers = [path.open("wb") for path in self._paths]
        self._count = 0
        self._last = -1
        self._keys: Ints = np.zeros(0, dtype=np.int64)
        self._bits: Bits = np.zeros(0, dtype=np.uint8)

    def append(self, keys: Ints, bits: Bits, screened: Ints) -> None:
        """A block's candidates (ascending, after every earlier block's) and the keys of
        those the screen kept."""
        if len(keys):
            if int(keys[0]) <= self._last:
                raise ValueError("candidate blocks must ascend")
            self._last = int(keys[-1])
        self._writers[0].write(np.ascontiguousarray(keys, dtype=np.int64).tobytes())
        self._writers[1].write(np.ascontiguousarray(bits, dtype=np.uint8).tobytes())
        self._count += len(keys)
        n = self.documents
        self.screened.extend(zip((screened // n).tolist(), (screened % n).tolist(), strict=True))

    def finish(self) -> CandidateStore:
        """Stop writing; the candidates are read from the files from now on."""
        for writer in self._writers:
            writer.close()
        if self._count:
            self._keys = np.memmap(self._paths[0], dtype=np.int64, mode="r", shape=(self._count,))
            self._bits = np.memmap(self._paths[1], dtype=np.uint8, mode="r", shape=(self._count,))
        return self

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._keys, self._bits = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
        with contextlib.suppress(OSError):
            self._folder.cleanup()

    def __enter__(self) -> CandidateStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __len__(self) -> int:
        return self._count

    def bits(self, i: int, j: int) -> int:
        """The signal bits of candidate (i, j) (i < j), 0 when it is none."""
        key = i * self.documents + j
        at = int(np.searchsorted(self._keys, key))
        if at < len(self._keys) and int(self._keys[at]) == key:
            return int(self._bits[at])
        return 0

    def __getitem__(self, pair: tuple[int, int]) -> frozenset[str]:
        bits = self.bits(*pair)
        if not bits:
            raise KeyError(pair)
        return signal_names(bits)

    def __contains__(self, pair: object) -> bool:
        return isinstance(pair, tuple) and len(pair) == 2 and bool(self.bits(*pair))

    def chunks(self, size: int = BLOCK_PAIRS) -> Iterator[tuple[Ints, Ints, Bits]]:
        """(left, right, bits) of the candidates, ``size`` at a time, ascending."""
        n = self.documents
        for start in range(0, self._count, size):
            keys = np.asarray(self._keys[start : start + size], dtype=np.int64)
            yield keys // n, keys % n, np.asarray(self._bits[start : start + size])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for left, right, _ in self.chunks():
            yield from zip(left.tolist(), right.tolist(), strict=True)


__all__ = [
    "ANCHORS",
    "BLOCK_PAIRS",
    "PUBLISHED",
    "STRUCTURE",
    "URL",
    "CandidateStore",
    "Postings",
    "block_bounds",
    "block_pairs",
    "merge",
    "postings",
    "signal_names",
]
