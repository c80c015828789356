"""Translation evidence and paragraph alignment of two documents (Gale-Church with anchors).

A translation keeps what no language translates: numbers (years, percentages, amounts),
Latin-script names and URLs -- the *anchors* -- and, paragraph by paragraph, a length in
proportion to the original's. :func:`paragraphs` reads both from a text (one paragraph per
non-blank line); :func:`align` finds the cheapest sequence of moves 1-1, 1-2, 2-1, 1-0 and
0-1 over two documents' paragraphs (Gale & Church 1993, on the log of the length ratio so
that scripts of very different density compare, plus shared and missing anchors), and
scores every aligned pair and the document pair. Pure: no IO, no Prefect.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from flows.stages.maincontent import ends_sentence

# A short line without a sentence end (a caption, a label, a title) is what the cleaning
# signal may remove when its translation has no counterpart for it.
SHORT_CHARS = 100
MAX_ANCHORS = 24  # per paragraph: enough to anchor it, bounded facts

_NUMBER = re.compile(r"\d+(?:[.,\u00a0\u202f' ]\d+)*")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s\"'<>()]+|\b[\w-]+(?:\.[\w-]+)*\.(?:org|com|net|de|uk|fr)\b"
)
# A Latin-script word that starts with a capital (names, acronyms, brands).
_LATIN_NAME = re.compile(r"\b[A-Z][A-Za-z\u00c0-\u024f'-]{2,}")


def _number_key(raw: str) -> str | None:
    """One spelling for the numbers of any script and locale: ``204.000``, ``204,000`` and
    ``204 000`` are ``204000``; ``2,5`` is ``2.5``. One-digit numbers are too common to anchor."""
    digits = "".join(str(unicodedata.decimal(ch)) if ch.isdigit() else ch for ch in raw)
    groups = re.split(r"[.,\u00a0\u202f' ]", digits)
    if len(groups) > 1 and all(len(g) == 3 for g in groups[1:]):
        value = "".join(groups)
    elif len(groups) == 2:
        value = f"{groups[0]}.{groups[1]}"
    else:
        value = "".join(groups)
    value = value.lstrip("0") or "0"
    return None if len(value) < 2 else value


def anchors(line: str) -> frozenset[str]:
    """The language-independent tokens of a line: ``n:`` numbers, ``u:`` URLs and domains,
    ``w:`` Latin-script capitalised words (folded); at most :data:`MAX_ANCHORS`."""
    found: set[str] = set()
    for match in _URL.finditer(line):
        found.add("u:" + match.group(0).lower().rstrip(".,;:").removeprefix("https://"))
    for match in _NUMBER.finditer(line):
        key = _number_key(match.group(0).strip())
        if key is not None:
            found.add("n:" + key)
    for match in _LATIN_NAME.finditer(line):
        found.add("w:" + match.group(0).casefold())
    return frozenset(sorted(found)[:MAX_ANCHORS])


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One non-blank line of a text: where it is, how long, what anchors it."""

    line: int  # 0-based line number in the text
    chars: int
    anchors: frozenset[str]
    short: bool  # under SHORT_CHARS and no sentence end: a caption, label or title


def paragraphs(text: str) -> list[Paragraph]:
    """The paragraphs of a published text (one per non-blank line)."""
    out = []
    for number, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if stripped:
            short = len(stripped) < SHORT_CHARS and not ends_sentence(stripped)
            out.append(Paragraph(number, len(stripped), anchors(stripped), short))
    return out


@dataclass(frozen=True, slots=True)
class Bead:
    """One step of an alignment: paragraphs of each side (indexes into the paragraph
    lists; one side empty for 1-0 and 0-1) and how sure the step is (0..1)."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    score: float


@dataclass(frozen=True, slots=True)
class Alignment:
    """Two documents aligned: every step, the score of the pair, and the evidence."""

    beads: tuple[Bead, ...]
    score: float
    shared_anchors: int
    length_ratio: float  # characters of b per character of a

    @property
    def aligned(self) -> list[Bead]:
        return [bead for bead in self.beads if bead.a and bead.b]

    def unaligned(self, side: str) -> list[int]:
        return [i for bead in self.beads if not (bead.a and bead.b) for i in getattr(bead, side)]


# Gale & Church's priors of each move (1993, Table 5), as costs; a short line left out
# costs less than a paragraph: captions and labels are what one side adds most often.
_MOVES: tuple[tuple[int, int, float], ...] = (
    (1, 1, -math.log(0.89)),
    (1, 0, -math.log(0.0099)),
    (0, 1, -math.log(0.0099)),
    (2, 1, -math.log(0.089 / 2)),
    (1, 2, -math.log(0.089 / 2)),
)
_SKIP_SHORT = 2.0
_RELATIVE_VARIANCE = 0.02  # floor of the variance of log(length ratio): long paragraphs
_CHAR_VARIANCE = 6.8  # Gale & Church's s^2: short paragraphs vary more
_SHARED_BONUS = 1.5  # per shared anchor (up to three)
_NUMBER_PENALTY = 1.0  # per number on one side only (up to three)
_MAX_COST = 12.0


def _normal_tail(z: float) -> float:
    """Two-sided tail probability of a standard normal."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _length_z(la: int, lb: int, ratio: float) -> float:
    """How far the log length ratio of a step is from the documents' ratio, in deviations."""
    expected = la * ratio
    variance = _RELATIVE_VARIANCE + _CHAR_VARIANCE / max(1.0, (expected + lb) / 2.0)
    return math.log((lb + 1.0) / (expected + 1.0)) / math.sqrt(variance)


def _step(a: Sequence[Paragraph], b: Sequence[Paragraph], ratio: float) -> tuple[float, float]:
    """Cost (without the move's prior) and score of aligning paragraphs a with paragraphs b."""
    z = _length_z(sum(p.chars for p in a), sum(p.chars for p in b), ratio)
    tail = max(_normal_tail(z), 1e-12)
    cost = min(-math.log(tail), _MAX_COST)
    left = frozenset().union(*(p.anchors for p in a))
    right = frozenset().union(*(p.anchors for p in b))
    shared = len(left & right)
    missing = sum(1 for x in left ^ right if x.startswith("n:"))
    cost -= _SHARED_BONUS * min(shared, 3)
    cost += _NUMBER_PENALTY * min(missing, 3)
    # A merge of a caption with a paragraph is rarely a translator's work.
    if len(a) + len(b) > 2 and any(p.short for p in (*a, *b)):
        cost += 2.0
    score = tail
    if shared:
        score = 1.0 - (1.0 - score) * 0.5**shared
    score *= 0.8 ** min(missing, 3)
    return cost, score


def length_ratio(a: Sequence[Paragraph], b: Sequence[Paragraph]) -> float:
    """Characters of b per character of a over their longer paragraphs (captions and
    labels, which one side may add, left out)."""
    left = sum(p.chars for p in a if not p.short) or sum(p.chars for p in a)
    right = sum(p.chars for p in b if not p.short) or sum(p.chars for p in b)
    return max(right, 1) / max(left, 1)


def align(a: Sequence[Paragraph], b: Sequence[Paragraph], band: int = 0) -> Alignment:
    """The cheapest alignment of two paragraph sequences; ``band`` (0: none) bounds how far
    from the diagonal a step may go, for a cheap first look at a candidate pair."""
    n, m = len(a), len(b)
    ratio = length_ratio(a, b)
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, float] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        centre = i * m / n if n else 0
        lo, hi = (0, m) if band <= 0 else (max(0, int(centre) - band), min(m, int(centre) + band))
        for j in range(lo, hi + 1):
            here = cost[i][j]
            if here == inf:
                continue
            for da, db, prior in _MOVES:
                ni, nj = i + da, j + db
                if ni > n or nj > m:
                    continue
                if da and db:
                    step, score = _step(a[i:ni], b[j:nj], ratio)
                else:
                    skipped = a[i] if da else b[j]
                    step, score = (_SKIP_SHORT - prior if skipped.short else 0.0), 0.0
                total = here + prior + step
                if total < cost[ni][nj]:
                    cost[ni][nj] = total
                    back[ni][nj] = (i, j, score)
    beads: list[Bead] = []
    i, j = n, m
    while (i, j) != (0, 0):
        step_back = back[i][j]
        if step_back is None:  # outside the band: the rest as left out
            break
        pi, pj, score = step_back
        beads.append(Bead(tuple(range(pi, i)), tuple(range(pj, j)), score))
        i, j = pi, pj
    beads.reverse()
    shared = len(
        frozenset().union(*(p.anchors for p in a)) & frozenset().union(*(p.anchors for p in b))
    )
    return Alignment(tuple(beads), pair_score(a, b, beads), shared, ratio)


def pair_score(a: Sequence[Paragraph], b: Sequence[Paragraph], beads: Sequence[Bead]) -> float:
    """How sure we are the two documents translate each other (0..1): the characters of
    both sides in aligned steps, weighted by each step's score; captions and labels left
    out count for nothing either way."""
    weight = 0.0
    total = 0.0
    for bead in beads:
        chars = sum(a[i].chars for i in bead.a if not a[i].short)
        chars_b = sum(b[j].chars for j in bead.b if not b[j].short)
        # Each side's characters count as a share of that side (scripts differ in density).
        part = chars / max(1, _prose_chars(a)) + chars_b / max(1, _prose_chars(b))
        total += part
        weight += part * bead.score
    return weight / total if total else 0.0


def _prose_chars(side: Sequence[Paragraph]) -> int:
    return sum(p.chars for p in side if not p.short) or 1


__all__ = [
    "MAX_ANCHORS",
    "SHORT_CHARS",
    "Alignment",
    "Bead",
    "Paragraph",
    "align",
    "anchors",
    "length_ratio",
    "pair_score",
    "paragraphs",
]
