"""Per-document quality signals (Gopher, C4, FineWeb) and the threshold filters over them. Pure.

The signals follow datatrove's implementations of the three rule sets
(``gopher_quality_filter.py``, ``gopher_repetition_filter.py``, ``c4_filters.py``,
``fineweb_quality_filter.py``) and their published thresholds are the presets. Words are
whitespace-separated tokens, except in scripts written without spaces (Han, kana, Thai,
Lao, Khmer, Myanmar, Tibetan), where each character is one token; a document whose tokens
are mostly such characters is measured in ``characters`` mode (README: Quality signals).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from flows.stages.types import Reason, Rejection, Stage

# Scripts written without spaces between words: one character, one token.
_NO_SPACE_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # Han
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
)
# The combining marks of those scripts (Thai vowel signs, tone marks, ...) stay with the
# character before them: a token is a character as a reader sees it.
_MARK_CODES = frozenset(
    c
    for c in range(0x0E00, 0x1100)
    if unicodedata.category(chr(c)) in ("Mn", "Mc") and chr(c).isprintable()
)
# Sentence-ending punctuation of every script the language stage detects (Latin, CJK full
# width, Devanagari danda, Urdu full stop, Arabic question mark, Ethiopic, Myanmar, Khmer,
# Tibetan, Armenian, Greek question mark); closing quotes and brackets after it are skipped.
TERMINAL = tuple(".!?…。！？｡।॥۔؟።፧၊။។៕།༎։;")
_CLOSERS = " \t\"'”’»›)]}」』】〕）"
# Full-width and Indic marks end a sentence wherever they are (no space follows them in CJK).
_FULL_STOPS = tuple("。！？｡।॥۔؟።፧။។៕།༎։")
_FULL_STOP = re.compile(f"[{''.join(_FULL_STOPS)}]")
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


# Each character's class, one bit each, looked up for a whole text at once (numpy): tokens,
# words and letters are then counted without a Python step per token. The bits follow the
# str methods, which are also what str.split and the regex classes \s, \w and \d test
# (\w: a letter or digit, or '_').
_SPACE, _ALNUM, _LETTER, _NO_SPACE, _MARK, _STOP = (1 << i for i in range(6))
_BMP = 0x10000


@functools.lru_cache(maxsize=4096)
def _char_class(code: int) -> int:
    """The class bits of one character (the table below holds them for the BMP)."""
    char = chr(code)
    bits = _SPACE if char.isspace() else 0
    if char.isalnum():
        bits |= _ALNUM | (0 if char.isdecimal() else _LETTER)
    bits |= _NO_SPACE if any(lo <= code <= hi for lo, hi in _NO_SPACE_RANGES) else 0
    bits |= _MARK if code in _MARK_CODES else 0
    return bits | (_STOP if char in _FULL_STOPS else 0)


def _bmp_classes() -> npt.NDArray[np.uint8]:
    """``_char_class`` of every BMP character, by str methods mapped in C (a few ms)."""
    chars = np.arange(_BMP, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    alnum = np.fromiter(map(str.isalnum, chars), np.bool_, _BMP)
    decimal = np.fromiter(map(str.isdecimal, chars), np.bool_, _BMP)
    table = np.where(np.fromiter(map(str.isspace, chars), np.bool_, _BMP), _SPACE, 0)
    table |= np.where(alnum, _ALNUM, 0) | np.where(alnum & ~decimal, _LETTER, 0)
    for lo, hi in _NO_SPACE_RANGES:
        table[lo : min(hi, _BMP - 1) + 1] |= _NO_SPACE
    table[sorted(_MARK_CODES)] |= _MARK
    table[[ord(c) for c in _FULL_STOPS]] |= _STOP
    return table.astype(np.uint8)


_CLASSES = _bmp_classes()


def _classes(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
    """The class bits of each code point of a text."""
    if not codes.size or codes.max() < _BMP:
        return _CLASSES[codes]
    classes = _CLASSES[np.minimum(codes, _BMP - 1)]
    wide = np.flatnonzero(codes >= _BMP)
    classes[wide] = [_char_class(int(code)) for code in codes[wide]]
    return classes


@dataclass(frozen=True, slots=True)
class _Tokens:
    """Where a text's tokens start and end (code point offsets), and its segmentation."""

    starts: npt.NDArray[np.intp]
    ends: npt.NDArray[np.intp]
    characters: bool

    @classmethod
    def of(cls, classes: npt.NDArray[np.uint8], present: int) -> _Tokens:
        """Tokens as str.split() finds them; where a script without spaces appears, each of
        its characters (with the marks after it) is one token and the other runs of
        non-space characters are tokens between them. Characters mode: most tokens are
        single characters of those scripts. ``present``: every class bit in the text."""
        space = np.ones(len(classes) + 2, np.uint8)
        np.bitwise_and(classes, _SPACE, out=space[1:-1])
        if not present & _NO_SPACE:
            # Runs of non-space characters: they start and end where spaces do.
            edges = np.flatnonzero(space[1:] != space[:-1])
            return cls(edges[::2], edges[1::2], False)
        spaced = space[1:-1].view(np.bool_)  # 0 or 1: _SPACE is the lowest bit
        no_space = (classes & _NO_SPACE).astype(np.bool_)
        other = ~(spaced | no_space)
        start = other.copy()
        start[1:] &= ~other[:-1]
        joined = (classes & _MARK).astype(np.bool_)  # a mark after such a character
        joined[1:] &= no_space[:-1]
        joined[0] = False
        start |= no_space & ~joined
        # A token ends before the next one starts or at a space.
        last = ~spaced
        last[:-1] &= start[1:] | spaced[1:]
        starts, ends = np.flatnonzero(start), np.flatnonzero(last) + 1
        return cls(starts, ends, 2 * int(np.count_nonzero(no_space)) > len(starts))


@dataclass(frozen=True, slots=True)
class _Words:
    """The tokens holding a letter or digit: their offsets, how many hold a letter, and
    their letters and digits (``_`` too, as ``\\w`` counts it)."""

    starts: npt.NDArray[np.intp]
    ends: npt.NDArray[np.intp]
    lettered: int
    letters: int

    @classmethod
    def of(
        cls, tokens: _Tokens, codes: npt.NDArray[np.uint32], classes: npt.NDArray[np.uint8]
    ) -> _Words:
        # Only the few characters that are neither spaces nor letters are looked at one by
        # one: a token made of nothing else holds no letter; of nothing but the ones that are
        # not digits either, no letter or digit (not a word).
        plain = ((classes & (_SPACE | _LETTER)) == 0).nonzero()[0]
        symbol = (classes[plain] & _ALNUM) == 0
        owner = tokens.starts.searchsorted(plain, "right") - 1
        count = len(tokens.starts)
        lengths = tokens.ends - tokens.starts
        unlettered = np.bincount(owner, minlength=count) == lengths
        unworded = np.bincount(owner[symbol], minlength=count) == lengths
        # Letters and digits of the words: their characters less the glued punctuation
        # (\\W: not '_').
        glued = symbol & (codes[plain] != ord("_")) & ~unworded[owner]
        if np.logical_or.reduce(unworded):
            starts, ends = tokens.starts[~unworded], tokens.ends[~unworded]
        else:
            starts, ends = tokens.starts, tokens.ends
        letters = int(np.add.reduce(lengths) - np.add.reduce(lengths[unworded]))
        letters -= int(np.count_nonzero(glued))
        return cls(starts, ends, count - int(np.count_nonzero(unlettered)), letters)


# A polynomial hash of each word (mod 2**64, numpy's wrapping uint64 arithmetic) gives word
# ids without a Python step per word; equal hashes are then checked character by character.
_HASH = 0x9E3779B97F4A7C15
_UNHASH = pow(_HASH, -1, 1 << 64)
_POWERS_CACHED = 1 << 20  # texts up to a million characters share one table of powers


@functools.lru_cache(maxsize=4)
def _power_table(base: int, count: int) -> npt.NDArray[np.uint64]:
    powers = np.full(count, base, np.uint64)
    powers[0] = 1
    np.cumprod(powers, out=powers)
    powers.flags.writeable = False
    return powers


def _powers(base: int, count: int) -> npt.NDArray[np.uint64]:
    """base**0 .. base**(count-1) mod 2**64."""
    if count > _POWERS_CACHED:
        return _power_table.__wrapped__(base, count)
    return _power_table(base, max(1 << 16, 1 << (count - 1).bit_length()))[:count]


def _sorted_runs(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Positions in the order of their keys, ties by position, and where each run of equal
    keys starts in that order. One plain sort of keys and positions packed in one integer
    (a fraction of an argsort's time) where they fit in 63 bits."""
    # ufunc reductions and an in-place sort, not the ndarray.max / np.sort wrappers: on a
    # short text the calls, not the data, are the cost.
    shift = len(keys).bit_length()
    if len(keys) and int(np.maximum.reduce(keys)) < 1 << (63 - shift):
        packed = (keys << shift) | np.arange(len(keys))
        packed.sort()
        order = packed & ((1 << shift) - 1)
        ordered = packed >> shift
    else:
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
    new = np.empty(len(keys), np.bool_)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    return order, new


def _word_ids(text: str, codes: npt.NDArray[np.uint32], words: _Words) -> npt.NDArray[np.intp]:
    """A dense id per word, equal for equal words."""
    prefix = np.zeros(len(codes) + 1, np.uint64)
    np.cumsum(codes * _powers(_HASH, len(codes)), out=prefix[1:])
    hashes = prefix[words.ends] - prefix[words.starts]
    hashes *= _powers(_UNHASH, len(codes))[words.starts]
    # The top bits of each hash (mixed by one more multiplication: a one-character word's
    # hash is its code point), so that the word's position fits beside them.
    hashes *= np.uint64(_HASH)
    keys = (hashes >> np.uint64(len(hashes).bit_length() + 1)).astype(np.int64)
    order, new = _sorted_runs(keys)
    ids = np.empty(len(keys), np.intp)
    ids[order] = np.cumsum(new) - 1
    if _same_words(codes, words, order[new][ids]):
        return ids
    # Two different words with one hash (about one text in 10**12): ids from the words.
    vocabulary: dict[str, int] = {}
    found = map(text.__getitem__, map(slice, words.starts.tolist(), words.ends.tolist()))
    return np.fromiter(map(vocabulary.setdefault, found, itertools.count()), np.intp)


def _same_words(codes: npt.NDArray[np.uint32], words: _Words, match: npt.NDArray[np.intp]) -> bool:
    """Whether each word equals the word ``match`` names (its first one with that hash)."""
    # ndarray methods and ufuncs, not the np.array_equal / np.repeat wrappers (short texts).
    lengths = words.ends - words.starts
    if np.logical_or.reduce(lengths != lengths[match]):
        return False
    again = (match != np.arange(len(match))).nonzero()[0]
    sizes = lengths[again]
    # Offsets of every character of those words, and of the same character of their match.
    step = np.arange(int(np.add.reduce(sizes))) - (sizes.cumsum() - sizes).repeat(sizes)
    mine = words.starts[again].repeat(sizes) + step
    theirs = words.starts[match[again]].repeat(sizes) + step
    return not np.logical_or.reduce(codes[mine] != codes[theirs])


def _top(
    keys: npt.NDArray[np.int64],
) -> tuple[int, int, npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """(position of the first occurrence, count) of the most frequent key -- ties go to the
    one seen first, as ``Counter.most_common`` gives them -- and the sorted runs."""
    order, new = _sorted_runs(keys)
    starts = new.nonzero()[0]
    counts = np.empty_like(starts)  # np.diff(starts, append=len(keys)), without its wrapper
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1] = len(keys) - starts[-1]
    most = np.maximum.reduce(counts)
    # The run of each key starts at its first occurrence (ties are ordered by position).
    return int(np.minimum.reduce(order[starts[counts == most]])), int(most), new, order


def _top_ngram_chars(
    ids: npt.NDArray[np.intp], lengths: npt.NDArray[np.intp], separator: int
) -> tuple[int, int, int]:
    """Characters covered by the most frequent 2-, 3- and 4-gram (length times count).

    datatrove counts n-grams of strings in a Counter; here n-grams of word ids become
    integer keys counted by one numpy sort each (same answers): 2-gram keys ``a*n+b``; 3-
    and 4-grams from the 2-grams' dense ids, so no key overflows."""
    n = len(ids)
    if n < 2:
        return 0, 0, 0
    ids = ids.astype(np.int64)
    first, count, new, order = _top(ids[:-1] * n + ids[1:])
    dense = np.empty(n - 1, np.int64)
    dense[order] = np.cumsum(new) - 1
    found = [(sum(lengths[first : first + 2].tolist()) + separator) * count]
    if n >= 3:
        first, count, _, _ = _top(dense[:-1] * n + ids[2:])
        found.append((sum(lengths[first : first + 3].tolist()) + 2 * separator) * count)
    if n >= 4:
        first, count, _, _ = _top(dense[:-2] * n + dense[2:])
        found.append((sum(lengths[first : first + 4].tolist()) + 3 * separator) * count)
    found += [0] * (3 - len(found))
    return found[0], found[1], found[2]


def _sentences(kept: Sequence[str], stops: bool) -> int:
    """Sentences in C4's kept lines: each line ends one; inside a line, a Latin mark before
    a space ends one, a full-width or Indic mark anywhere (no space follows them).
    ``stops``: whether the text holds any full-width or Indic mark at all."""
    joined = "\n".join(kept)
    inner = sum(joined.count(mark) for mark in (". ", "! ", "? "))
    if not stops:
        return len(kept) + inner
    full = len(_FULL_STOP.findall(joined))
    ending_full = sum(1 for line in kept if line.rstrip(_CLOSERS).endswith(_FULL_STOPS))
    return len(kept) + inner + full - ending_full


def _ends_sentence(line: str) -> bool:
    return line.rstrip(_CLOSERS).endswith(TERMINAL)


def _c4_lines(
    lines: Sequence[str], ending: Sequence[bool], characters: bool, mentions: bool
) -> list[str]:
    """The lines C4 keeps: ending in sentence punctuation (``ending``) but not an ellipsis,
    at least three words (characters mode: three characters), no 'javascript'."""
    kept = []
    for line, ends in zip(lines, ending, strict=True):
        if not ends or line.endswith(ELLIPSES):
            continue
        # split(None, 3): three words are enough to know, the rest need not be split.
        if (len(line) if characters else len(line.split(None, 3))) < 3:
            continue
        if mentions and "javascript" in line.lower():
            continue
        kept.append(line)
    return kept


def quality_signals(text: str) -> QualitySignals:
    """Every signal of one text; cheap (numpy over its code points, str methods per line)."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    classes = _classes(codes)
    present = int(np.bitwise_or.reduce(classes)) if len(classes) else 0
    tokens = _Tokens.of(classes, present)
    characters = tokens.characters
    words = _Words.of(tokens, codes, classes)
    word_count = len(words.starts)
    lengths = words.ends - words.starts
    top2, top3, top4 = _top_ngram_chars(
        _word_ids(text, codes, words) if word_count >= 2 else words.starts,
        lengths,
        0 if characters else 1,
    )
    raw_lines = text.split("\n")
    lines = [line.strip() for line in raw_lines]
    nonblank = [line for line in lines if line]
    ending = [_ends_sentence(line) for line in nonblank]
    short = SHORT_LINE_CHARS_NO_SPACE if characters else SHORT_LINE_CHARS
    # str.split, not datatrove's re.split(r"\n{2,}") and re.split(r"\n+"): the same pieces
    # (blank ones aside) at a fifth of the cost.
    paragraphs = [p for p in (p.strip("\n") for p in text.strip().split("\n\n")) if p]
    dup_paragraphs, dup_paragraph_chars = _duplicates(paragraphs)
    split_lines = [line for line in raw_lines if line]
    dup_lines, dup_line_chars = _duplicates(split_lines)
    # Lowered once for the whole text: a line is lowered only when it mentions JavaScript,
    # C4's kept lines only when the text holds '{' or 'lorem ipsum' at all.
    lowered = text.lower()
    kept = _c4_lines(nonblank, ending, characters, "javascript" in lowered)
    curly = "{" in text and "{" in "\n".join(kept)
    lorem = "lorem ipsum" in lowered and "lorem ipsum" in "\n".join(kept).lower()
    length = len(text)
    n_tokens = len(tokens.starts)
    return QualitySignals(
        segmentation="characters" if characters else "words",
        word_count=word_count,
        # Without the punctuation glued to words ("dog." is 3 letters), as a tokenizer that
        # splits punctuation off (datatrove's) counts it.
        mean_word_length=None if characters or not word_count else words.letters / word_count,
        symbol_word_ratio=_ratio(
            max(text.count("#"), text.count("...") + text.count("…")), n_tokens
        ),
        alpha_words=_ratio(words.lettered, n_tokens),
        punct_lines=_ratio(sum(ending), len(nonblank)),
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
        newline_word_ratio=_ratio(text.count("\n"), n_tokens),
        c4_sentences=_sentences(kept, bool(present & _STOP)),
        curly_bracket=curly,
        lorem_ipsum=lorem,
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
