"""Per-document quality signals (Gopher, C4, FineWeb) and the threshold filters over them. Pure.

The signals follow datatrove's implementations of the three rule sets
(``gopher_quality_filter.py``, ``gopher_repetition_filter.py``, ``c4_filters.py``,
``fineweb_quality_filter.py``) and their published thresholds are the presets. Words are
whitespace-separated tokens, except in scripts written without spaces (Han, kana, Thai,
Lao, Khmer, Myanmar, Tibetan), where each character is one token; a document whose tokens
are mostly such characters is measured in ``characters`` mode (README: Quality signals).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from flows.stages.types import Reason, Rejection, Stage

# Scripts written without spaces between words: one character, one token.
_NO_SPACE = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u31f0-\u31ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\U00020000-\U0002fa1f"
)
# The combining marks of those scripts (Thai vowel signs, tone marks, ...) stay with the
# character before them: a token is a character as a reader sees it.
_MARKS = "".join(
    re.escape(chr(c))
    for c in range(0x0E00, 0x1100)
    if unicodedata.category(chr(c)) in ("Mn", "Mc") and chr(c).isprintable()
)
_TOKEN = re.compile(f"[{_NO_SPACE}][{_MARKS}]*|[^\\s{_NO_SPACE}]+")
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")
_ALNUM = re.compile(r"[^\W_]")
_LETTER = re.compile(r"[^\W\d_]")
# Sentence-ending punctuation of every script the language stage detects (Latin, CJK full
# width, Devanagari danda, Urdu full stop, Arabic question mark, Ethiopic, Myanmar, Khmer,
# Tibetan, Armenian, Greek question mark); closing quotes and brackets after it are skipped.
TERMINAL = tuple(".!?…。！？｡।॥۔؟።፧၊။។៕།༎։;")
_CLOSERS = " \t\"'”’»›)]}」』】〕）"
# Full-width and Indic marks end a sentence wherever they are (no space follows them in CJK).
_FULL_STOPS = tuple("。！？｡।॥۔؟።፧။។៕།༎։")
_FULL_STOP = re.compile(f"[{''.join(_FULL_STOPS)}]")
_NON_WORD = re.compile(r"\W")
# A whole token (one per line) without a letter or digit; without a letter.
_SYMBOL_TOKEN = re.compile(r"^(?:[^\w\n]|_)+$", re.MULTILINE)
_UNLETTERED_TOKEN = re.compile(r"^(?:[^\w\n]|[\d_])+$", re.MULTILINE)
BULLETS = ("•", "-", "*", "‣", "◦", "▪", "–", "·", "●")
ELLIPSES = ("...", "…")
SHORT_LINE_CHARS = 30  # FineWeb's short line, in characters, for texts with spaces
SHORT_LINE_CHARS_NO_SPACE = 10  # the same amount of text in Han/kana/Thai characters


@dataclass(frozen=True, slots=True)
class QualitySignals:
    """The quality signals of one document's cleaned text (the ``quality`` column)."""

    segmentation: str  # "words", or "characters" for scripts without spaces
    word_count: int  # tokens holding a letter or digit
    mean_word_length: float | None  # of those tokens; None in characters mode
    symbol_word_ratio: float  # max('#' count, '...'/'…' count) / tokens
    alpha_words: float  # share of tokens holding a letter
    punct_lines: float  # share of non-blank lines ending in sentence punctuation
    short_lines: float  # share of non-blank lines of at most 30 (10) characters
    bullet_lines: float  # share of lines starting with a bullet
    ellipsis_lines: float  # share of lines ending with an ellipsis
    dup_lines: float  # share of lines that repeat an earlier line
    dup_paragraphs: float  # share of paragraphs that repeat an earlier one
    dup_line_chars: float  # share of characters in repeated lines
    dup_paragraph_chars: float  # share of characters in repeated paragraphs
    top_2gram_chars: float  # characters covered by the most frequent 2-gram
    top_3gram_chars: float
    top_4gram_chars: float
    newline_word_ratio: float  # line breaks per token (FineWeb's list ratio)
    c4_sentences: int  # sentences in the lines C4 keeps
    curly_bracket: bool  # '{' in a line C4 keeps
    lorem_ipsum: bool  # 'lorem ipsum' in a line C4 keeps


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(items that repeat an earlier one, their characters): datatrove's find_duplicates."""
    seen: set[str] = set()
    repeated = chars = 0
    for item in items:
        if item in seen:
            repeated += 1
            chars += len(item)
        else:
            seen.add(item)
    return repeated, chars


def _top(keys: npt.NDArray[np.int64]) -> tuple[int, int, npt.NDArray[np.int64]]:
    """(position of the first occurrence, count) of the most frequent key -- ties go to the
    one seen first, as ``Counter.most_common`` gives them -- and each key's dense id."""
    order = np.argsort(keys)
    ordered = keys[order]
    new = np.empty(len(keys), np.bool_)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(keys)))
    most = counts.max()
    dense = np.empty(len(keys), np.int64)
    dense[order] = np.cumsum(new) - 1
    # Each key's first occurrence: the smallest position in its run of the sorted keys.
    first = np.minimum.reduceat(order, starts)
    return int(first[counts == most].min()), int(most), dense


def _top_ngram_chars(words: Sequence[str], separator: int) -> tuple[int, int, int]:
    """Characters covered by the most frequent 2-, 3- and 4-gram (length times count).

    datatrove counts n-grams of strings in a Counter; here words become integer ids and
    n-grams integer keys counted by one numpy sort each (same answers, a third of the
    time): 2-gram keys ``a*n+b``; 3- and 4-grams from the 2-grams' dense ids, so no key
    overflows."""
    n = len(words)
    if n < 2:
        return 0, 0, 0
    # map() with setdefault keeps the loop in C: a word's id is the position it was first
    # seen at (unique, below n), so every key below is below n * n.
    vocabulary: dict[str, int] = {}
    ids = np.fromiter(map(vocabulary.setdefault, words, itertools.count()), np.int64, n)
    lengths = np.fromiter(map(len, words), np.int64, n)
    first, count, dense = _top(ids[:-1] * n + ids[1:])
    found = [(int(lengths[first : first + 2].sum()) + separator) * count]
    if n >= 3:
        first, count, _ = _top(dense[:-1] * n + ids[2:])
        found.append((int(lengths[first : first + 3].sum()) + 2 * separator) * count)
    if n >= 4:
        first, count, _ = _top(dense[:-2] * n + dense[2:])
        found.append((int(lengths[first : first + 4].sum()) + 3 * separator) * count)
    found += [0] * (3 - len(found))
    return found[0], found[1], found[2]


def _words(tokens: list[str]) -> tuple[list[str], int, int]:
    """The tokens holding a letter or digit (in order), how many hold a letter, and their
    letters and digits. str methods mapped in C settle the plain words; the few tokens with
    punctuation in them are judged together, one per line, by one regex pass each."""
    mixed = list(itertools.filterfalse(str.isalnum, tokens))
    joined = "\n".join(mixed)
    symbols = _SYMBOL_TOKEN.findall(joined)  # no letter or digit: not words
    unique = set(symbols)
    words = list(itertools.filterfalse(unique.__contains__, tokens)) if unique else tokens
    unlettered = len(_UNLETTERED_TOKEN.findall(joined)) - len(symbols)
    digits_only = sum(map(str.isdecimal, words))  # "2024" (\d: "一" is a letter here)
    # Punctuation inside words: all of it, less the line breaks and the symbol tokens'.
    glued = len(_NON_WORD.findall(joined)) - max(0, len(mixed) - 1)
    glued -= len(_NON_WORD.findall("".join(symbols)))
    return words, len(words) - unlettered - digits_only, sum(map(len, words)) - glued


def _tokens(text: str) -> tuple[list[str], bool]:
    """The text's tokens, and whether it is measured in characters mode (most tokens are
    single characters of scripts without spaces)."""
    if _NO_SPACE_CHAR.search(text) is None:
        return text.split(), False
    tokens = _TOKEN.findall(text)
    return tokens, 2 * len(_NO_SPACE_CHAR.findall(text)) > len(tokens)


def _sentences(kept: Sequence[str]) -> int:
    """Sentences in C4's kept lines: each line ends one; inside a line, a Latin mark before
    a space ends one, a full-width or Indic mark anywhere (no space follows them)."""
    joined = "\n".join(kept)
    inner = sum(joined.count(mark) for mark in (". ", "! ", "? "))
    full = len(_FULL_STOP.findall(joined)) if not joined.isascii() else 0
    ending_full = sum(1 for line in kept if line.rstrip(_CLOSERS).endswith(_FULL_STOPS))
    return len(kept) + inner + full - ending_full


def _ends_sentence(line: str) -> bool:
    return line.rstrip(_CLOSERS).endswith(TERMINAL)


def _c4_lines(lines: Sequence[str], characters: bool, mentions: bool = True) -> list[str]:
    """The lines C4 keeps: ending in sentence punctuation (not an ellipsis), at least three
    words (characters mode: three characters), no 'javascript'."""
    kept = []
    for line in lines:
        if not _ends_sentence(line) or line.endswith(ELLIPSES):
            continue
        # split(None, 3): three words are enough to know, the rest need not be split.
        if (len(line) if characters else len(line.split(None, 3))) < 3:
            continue
        if mentions and "javascript" in line.lower():
            continue
        kept.append(line)
    return kept


def quality_signals(text: str) -> QualitySignals:
    """Every signal of one text; cheap (a few regex passes and counters)."""
    tokens, characters = _tokens(text)
    words, lettered, letters = _words(tokens)
    lines = [line.strip() for line in text.split("\n")]
    nonblank = [line for line in lines if line]
    short = SHORT_LINE_CHARS_NO_SPACE if characters else SHORT_LINE_CHARS
    # str.split, not datatrove's re.split(r"\n{2,}") and re.split(r"\n+"): the same pieces
    # (blank ones aside) at a fifth of the cost.
    paragraphs = [p for p in (p.strip("\n") for p in text.strip().split("\n\n")) if p]
    dup_paragraphs, dup_paragraph_chars = _duplicates(paragraphs)
    split_lines = [line for line in text.split("\n") if line]
    dup_lines, dup_line_chars = _duplicates(split_lines)
    # Lowered once for the whole text: a line is lowered only when it mentions JavaScript.
    mentions = "javascript" in text.lower()
    kept = _c4_lines(nonblank, characters, mentions)
    kept_lower = "\n".join(kept).lower()
    length = len(text)
    top2, top3, top4 = _top_ngram_chars(words, 0 if characters else 1)
    return QualitySignals(
        segmentation="characters" if characters else "words",
        word_count=len(words),
        # Without the punctuation glued to words ("dog." is 3 letters), as a tokenizer that
        # splits punctuation off (datatrove's) counts it.
        mean_word_length=None if characters or not words else letters / len(words),
        symbol_word_ratio=_ratio(
            max(text.count("#"), text.count("...") + text.count("…")), len(tokens)
        ),
        alpha_words=_ratio(lettered, len(tokens)),
        punct_lines=_ratio(sum(1 for line in nonblank if _ends_sentence(line)), len(nonblank)),
        short_lines=_ratio(sum(1 for line in nonblank if len(line) <= short), len(nonblank)),
        bullet_lines=_ratio(sum(1 for line in nonblank if line.startswith(BULLETS)), len(nonblank)),
        ellipsis_lines=_ratio(
            sum(1 for line in nonblank if line.endswith(ELLIPSES)), len(nonblank)
        ),
        dup_lines=_ratio(dup_lines, len(split_lines)),
        dup_paragraphs=_ratio(dup_paragraphs, len(paragraphs)),
        dup_line_chars=_ratio(dup_line_chars, length),
        dup_paragraph_chars=_ratio(dup_paragraph_chars, length),
        top_2gram_chars=_ratio(top2, length),
        top_3gram_chars=_ratio(top3, length),
        top_4gram_chars=_ratio(top4, length),
        newline_word_ratio=_ratio(text.count("\n"), len(tokens)),
        c4_sentences=_sentences(kept),
        curly_bracket="{" in kept_lower,
        lorem_ipsum="lorem ipsum" in kept_lower,
    )


@dataclass(frozen=True, slots=True)
class Bound:
    """A signal's accepted range; either end may be open."""

    min: float | None = None
    max: float | None = None


Thresholds = Mapping[str, Bound]

# The published thresholds of each rule set (datatrove's defaults). C4's line filters
# become document signals here: a document is rejected, its lines are never rewritten.
PRESETS: dict[str, Thresholds] = {
    "gopher": {
        "word_count": Bound(50, 100_000),
        "mean_word_length": Bound(3, 10),
        "symbol_word_ratio": Bound(max=0.1),
        "bullet_lines": Bound(max=0.9),
        "ellipsis_lines": Bound(max=0.3),
        "alpha_words": Bound(min=0.8),
        "dup_lines": Bound(max=0.3),
        "dup_paragraphs": Bound(max=0.3),
        "dup_line_chars": Bound(max=0.2),
        "dup_paragraph_chars": Bound(max=0.2),
        "top_2gram_chars": Bound(max=0.2),
        "top_3gram_chars": Bound(max=0.18),
        "top_4gram_chars": Bound(max=0.16),
    },
    "c4": {
        "c4_sentences": Bound(min=5),
        "curly_bracket": Bound(max=0),
        "lorem_ipsum": Bound(max=0),
    },
    "fineweb": {
        "punct_lines": Bound(min=0.12),
        "short_lines": Bound(max=0.67),
        "dup_line_chars": Bound(max=0.01),
        "newline_word_ratio": Bound(max=0.3),
    },
}

# Signals in column order; every one that can be thresholded (all but segmentation).
SIGNALS: tuple[str, ...] = tuple(f.name for f in fields(QualitySignals))[1:]


def failure(signals: QualitySignals, thresholds: Thresholds) -> tuple[str, str] | None:
    """The first signal (in column order) outside its bounds, and value vs threshold; None
    when the document passes. A signal with no value (mean word length in characters mode)
    passes."""
    for name in SIGNALS:
        bound = thresholds.get(name)
        value = getattr(signals, name)
        if bound is None or value is None:
            continue
        number = float(value)
        if bound.min is not None and number < bound.min:
            return name, f"{name} {_show(number)} < {_show(bound.min)}"
        if bound.max is not None and number > bound.max:
            return name, f"{name} {_show(number)} > {_show(bound.max)}"
    return None


def _show(value: float) -> str:
    return f"{value:.4g}"


def check_quality(signals: QualitySignals, thresholds: Thresholds | None) -> Rejection | None:
    """A rejection naming the first failing signal, or None (also when filters are off)."""
    if not thresholds:
        return None
    failed = failure(signals, thresholds)
    if failed is None:
        return None
    name, detail = failed
    return Rejection(Stage.QUALITY, Reason(name), detail)


# What each signal means, for the report and the dataset card (README: Quality signals).
MEANINGS: dict[str, str] = {
    "word_count": "tokens holding a letter or digit (characters mode: one per character)",
    "mean_word_length": "mean characters per word (null in characters mode)",
    "symbol_word_ratio": "'#' or ellipses per token, whichever is more",
    "alpha_words": "share of tokens holding a letter",
    "punct_lines": "share of non-blank lines ending in sentence punctuation",
    "short_lines": "share of non-blank lines of at most 30 characters (10 in characters mode)",
    "bullet_lines": "share of lines starting with a bullet",
    "ellipsis_lines": "share of lines ending with an ellipsis",
    "dup_lines": "share of lines repeating an earlier line",
    "dup_paragraphs": "share of paragraphs repeating an earlier one",
    "dup_line_chars": "share of characters in repeated lines",
    "dup_paragraph_chars": "share of characters in repeated paragraphs",
    "top_2gram_chars": "share of characters covered by the most frequent word 2-gram",
    "top_3gram_chars": "share of characters covered by the most frequent word 3-gram",
    "top_4gram_chars": "share of characters covered by the most frequent word 4-gram",
    "newline_word_ratio": "line breaks per token",
    "c4_sentences": "sentences in the lines C4 keeps (ending in punctuation, 3+ words)",
    "curly_bracket": "a '{' in a line C4 keeps",
    "lorem_ipsum": "'lorem ipsum' in a line C4 keeps",
}


def anchors(signal: str) -> str:
    """The presets' bounds of one signal, e.g. ``gopher ≥ 50, ≤ 100000; fineweb ≤ 0.3``."""
    said = []
    for preset, thresholds in PRESETS.items():
        bound = thresholds.get(signal)
        if bound is None:
            continue
        ends = [f"≥ {bound.min:g}" if bound.min is not None else ""]
        ends.append(f"≤ {bound.max:g}" if bound.max is not None else "")
        said.append(f"{preset} {', '.join(e for e in ends if e)}")
    return "; ".join(said) or "–"


# Fixed histogram bins (left edges; the last bin is open above) of each signal and of text
# length: per-shard histograms with the same bins merge by adding counts.
def _steps(stop: float, step: float) -> tuple[float, ...]:
    return tuple(round(i * step, 6) for i in range(round(stop / step) + 1))


_SHARE = _steps(0.95, 0.05)  # 0, 0.05, ..., 0.95 (the last bin holds 0.95-1)
_COUNTS = (0, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
BINS: dict[str, tuple[float, ...]] = {
    "word_count": _COUNTS,
    "mean_word_length": _steps(14.5, 0.5),
    "symbol_word_ratio": _steps(0.475, 0.025),
    "newline_word_ratio": _SHARE,
    "c4_sentences": (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200),
    "curly_bracket": (0, 1),
    "lorem_ipsum": (0, 1),
}
LENGTH_BINS: tuple[float, ...] = (0, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
LENGTH_BINS += (100_000, 1_000_000)


def bins(name: str) -> tuple[float, ...]:
    """The left edges of a signal's histogram bins (shares: twenty bins over 0-1)."""
    return BINS.get(name, _SHARE)


__all__ = [
    "BINS",
    "LENGTH_BINS",
    "MEANINGS",
    "PRESETS",
    "SIGNALS",
    "Bound",
    "QualitySignals",
    "Thresholds",
    "anchors",
    "bins",
    "check_quality",
    "failure",
    "quality_signals",
]
