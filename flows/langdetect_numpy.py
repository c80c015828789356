"""langdetect's algorithm, faster, with bit-identical results.

:class:`FastDetector` answers exactly what ``Detector.get_probabilities()`` answers for a
detector made by the same ``DetectorFactory`` (same profiles, same seed): the same
languages in the same order with the same floats, and ``LangDetectException`` in the same
cases. Only the way the work is done changes (figures: ``benchmarks/bench_langdetect.py``):

* Text preparation (URL and e-mail removal, Vietnamese normalisation, ``max_text_length``,
  space collapsing, Latin removal) reuses langdetect's own regular expressions and
  ``NGram.normalize_vi``; its per-character string building becomes slicing, ``re.sub``
  and byte counting.
* N-gram extraction: ``NGram.normalize`` is a pure function of one character (it reads
  only the character and constant class-level tables), so it is memoised per code point
  and applied with ``str.translate``. A space stays a space under ``normalize`` and the
  ``NGram`` buffer restarts at every space, so the n-grams of a text are those of its
  space-separated tokens in order, each a function of the token alone (and of whether a
  space follows it): they are memoised per token. Within a word, the 1-, 2- and 3-gram
  ending at each character are looked up unless that character and the one before it are
  both upper case (``NGram.capitalword``).
* Detection: the profiles become one ``float64`` matrix (n-grams x languages). langdetect's
  update ``prob[i] *= weight + row[i]`` becomes numpy's elementwise ``row + weight`` and
  a product: the same IEEE operations on the same operands, in the same order (updates are
  applied one after another, never multiplied together first). The rows of many rounds of
  5 updates are gathered at once; a round is one ``multiply.reduce`` over the normalised
  probabilities followed by its 5 rows, which multiplies each value by them in draw order.
  The normalisation sums with the builtin ``sum()`` over a list of Python floats, as
  langdetect does, so the total is the same on every Python (3.12 made ``sum()``
  compensated). Its maximum is ``max(values) / total``: for a finite positive total,
  correctly rounded division is monotonic, so that is the largest quotient langdetect
  compares; any other total (zero, infinite, NaN) takes langdetect's element-by-element
  path, including its ``ZeroDivisionError``.
* Randomness: langdetect seeds a ``random.Random`` (MT19937) with the factory's seed at
  every call, then draws ``gauss(0.0, 1.0)`` per trial and ``choice(ngrams)`` per update.
  Both are functions of the generator's raw 32-bit outputs (:class:`_Draws` spells them
  out), so the outputs of the seed are generated once per detector, in bulk with
  ``getrandbits``, and every call reads its draws off them with array operations: the
  draws over a list of n n-grams are the outputs whose top ``n.bit_length()`` bits are
  under n. The first detector of a process checks this against ``random.Random`` itself
  and raises ``RuntimeError`` if a Python draws differently.

The matrix for langdetect's 55 profiles takes ~38 MB and is built once per factory
(:meth:`FastDetector.from_factory`, ~0.3 s); build it once per process and reuse it. The
detector copies the factory's profiles, language list and seed when it is built; later
changes to the factory (``set_seed``, more profiles) are not seen. One detector can serve
several threads: the seed's stream only grows (under a lock, into a new array), each call
keeps its own position in it, and the memos only ever gain or lose whole entries.
"""

from __future__ import annotations

import functools
import math
import operator
import random
import re
import threading
from itertools import chain
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from langdetect.detector import Detector
from langdetect.detector_factory import DetectorFactory
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram

__all__ = ["FastDetector", "prepare_text"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
WordArray = npt.NDArray[np.uint32]

# langdetect's parameters, read from its Detector class so they cannot drift.
ALPHA_DEFAULT: Final[float] = float(Detector.ALPHA_DEFAULT)
_ALPHA_WIDTH: Final[float] = float(Detector.ALPHA_WIDTH)
_ITERATION_LIMIT: Final[int] = int(Detector.ITERATION_LIMIT)
_PROB_THRESHOLD: Final[float] = float(Detector.PROB_THRESHOLD)
_CONV_THRESHOLD: Final[float] = float(Detector.CONV_THRESHOLD)
_BASE_FREQ: Final[int] = int(Detector.BASE_FREQ)
_N_GRAM: Final[int] = int(NGram.N_GRAM)
# Detector() sets max_text_length = 10000 in __init__ (not a class attribute).
MAX_TEXT_LENGTH: Final[int] = 10_000

_URL_RE: Final[re.Pattern[str]] = Detector.URL_RE
_MAIL_RE: Final[re.Pattern[str]] = Detector.MAIL_RE
# normalize_vi only changes a vowel followed by one of these combining marks.
_VI_MARK: Final = re.compile("[" + NGram.DMARK_CLASS + "]")
_SPACE_RUN: Final = re.compile(" {2,}")
# cleaning_text: 'A' <= ch <= 'z' is "Latin"; every ch >= U+0300 is "non-Latin" (langdetect
# compares unicode_block()'s int with the string 'Latin Extended Additional', which never
# matches). Both are counted on the UTF-8 bytes: bytes 0x41-0x7A only occur as those ASCII
# characters, and a character >= U+0300 is exactly one lead byte >= 0xCC.
_LATIN_BYTES: Final = bytes(range(ord("A"), ord("z") + 1))
_BELOW_NON_LATIN_LEAD: Final = bytes(range(0xCC))
_LATIN_RUN: Final = re.compile("[A-z]+")
# Tokens remembered per detector before the memo is emptied (it then holds ~15 MB).
_CACHE_LIMIT: Final = 50_000
# random.gauss's constant.
_TWOPI: Final = 2.0 * math.pi
# Rounds of updates gathered at the start of a trial (half of the trials on the benchmark
# corpora settle within 8); each further gathering doubles.
_FIRST_ROUNDS: Final = 8
# Raw outputs generated, then scanned for draws, at least at a time.
_STREAM_CHUNK: Final = 1024


class _NormalizedChars(dict[int, str]):
    """Code point -> ``NGram.normalize(chr(code))``, computed on first use (for ``translate``)."""

    def __missing__(self, code: int) -> str:
        normalized = str(NGram.normalize(chr(code)))
        self[code] = normalized
        return normalized


_NORMALIZED: Final = _NormalizedChars()


def prepare_text(text: str, max_text_length: int = MAX_TEXT_LENGTH) -> str:
    """``Detector.append(text)`` then ``Detector.cleaning_text()``: the text n-grams come from.

    Each step is skipped when it cannot change the text (no "http", no "@", no Vietnamese
    combining mark, no double space, nothing at or above U+0300).
    """
    if "http" in text:
        text = _URL_RE.sub(" ", text)
    if "@" in text:
        text = _MAIL_RE.sub(" ", text)
    if _VI_MARK.search(text):
        text = str(NGram.normalize_vi(text))
    text = text[: max(max_text_length, 0)]
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    if not text.isascii():
        encoded = text.encode("utf-8", "surrogatepass")
        non_latin = len(encoded.translate(None, _BELOW_NON_LATIN_LEAD))
        latin = len(encoded) - len(encoded.translate(None, _LATIN_BYTES))
        if latin * 2 < non_latin:
            text = _LATIN_RUN.sub("", text)
    return text


class FastDetector:
    """langdetect's ``Detector`` for one factory, answering ``get_probabilities()`` faster."""

    __slots__ = ("_grams", "_index", "_langs", "_matrix", "_seed", "_stream", "_tokens")

    def __init__(
        self,
        langs: list[str],
        grams: list[str],
        matrix: FloatArray,
        seed: Any = None,
    ) -> None:
        """``matrix[k, j]``: probability of n-gram ``grams[k]`` in language ``langs[j]``."""
        if matrix.shape != (len(grams), len(langs)) or matrix.dtype != np.float64:
            raise ValueError(f"matrix must be float64 of shape {(len(grams), len(langs))}")
        if len(langs) == 0:
            raise ValueError("no languages")
        self._langs = list(langs)
        self._grams = list(grams)
        # langdetect never uses the 1-gram " " (``w != ' '`` in _extract_ngrams).
        self._index = {gram: row for row, gram in enumerate(self._grams) if gram != " "}
        self._matrix = matrix
        self._seed = seed
        self._tokens: dict[str, tuple[int, ...]] = {}
        _check_emulation()
        # Every call starts from the seed, so all calls read the one stream of the seed.
        self._stream = None if seed is None else _Stream(seed)

    @classmethod
    def from_factory(cls, factory: DetectorFactory) -> FastDetector:
        """Copy the profiles, language list and seed of a loaded ``DetectorFactory``."""
        if _N_GRAM != 3:  # _word_rows spells out the 1-, 2- and 3-grams
            raise NotImplementedError(f"NGram.N_GRAM is {_N_GRAM}, not 3")
        langs = [str(lang) for lang in factory.langlist]
        if not langs:
            raise LangDetectException(ErrorCode.NeedLoadProfileError, "Need to load profiles.")
        width = len(langs)
        table: dict[str, list[float]] = factory.word_lang_prob_map
        # langdetect only ever looks up 1- to 3-grams.
        grams = [gram for gram in table if 1 <= len(gram) <= _N_GRAM]
        rows = [table[gram] for gram in grams]
        # load_profile sizes rows by the directory's entry count, which can exceed the
        # number of languages; langdetect reads the first len(langlist) values only.
        if any(len(row) < width for row in rows):
            raise ValueError("a profile row is shorter than the language list")
        flat = chain.from_iterable(row if len(row) == width else row[:width] for row in rows)
        matrix = np.fromiter(flat, dtype=np.float64, count=len(grams) * width)
        return cls(langs, grams, matrix.reshape(len(grams), width), factory.seed)

    @property
    def languages(self) -> list[str]:
        """The factory's language list (langdetect's column order)."""
        return list(self._langs)

    def ngrams(self, text: str) -> list[str]:
        """The n-grams langdetect samples from for ``text``, in its order (for checking)."""
        grams = self._grams
        return [grams[row] for row in self._rows(prepare_text(text))]

    def probabilities(
        self, text: str, n_trial: int = 7, *, alpha: float = ALPHA_DEFAULT
    ) -> list[tuple[str, float]]:
        """``(language, probability)`` pairs over 0.1, most probable first.

        Exactly ``[(l.lang, l.prob) for l in d.get_probabilities()]`` for
        ``d = factory.create(alpha); d.n_trial = n_trial; d.append(text)``. Raises
        ``LangDetectException`` (code ``CantDetectError``) when the text has no n-gram of
        the profiles, as langdetect does.
        """
        rows = self._rows(prepare_text(text))
        if not rows:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        langprob = np.zeros(len(self._langs), dtype=np.float64)
        draws = _Draws(self._random_stream(), rows)
        for _ in range(n_trial):
            trial_alpha = alpha + draws.gauss() * _ALPHA_WIDTH
            prob = self._trial(draws, trial_alpha / _BASE_FREQ)
            langprob += prob / n_trial
        found = [
            (lang, p)
            for lang, p in zip(self._langs, langprob.tolist(), strict=True)
            if p > _PROB_THRESHOLD
        ]
        # Language.__lt__ compares prob; list.sort(reverse=True) keeps ties in order.
        found.sort(key=operator.itemgetter(1), reverse=True)
        return found

    def _random_stream(self) -> _Stream:
        """The seed's stream; without a seed (langdetect then seeds from the system) a new one."""
        return _Stream(None) if self._stream is None else self._stream

    def _rows(self, text: str) -> list[int]:
        """Matrix rows of ``Detector._extract_ngrams()`` for the prepared ``text``.

        Every space stays a space under ``NGram.normalize``, and the n-gram buffer restarts
        at each space, so the rows of the text are those of its space-separated tokens in
        order; a token's rows depend only on the token and on whether a space follows it.
        """
        tokens = text.split(" ")
        last = tokens.pop()
        memo = self._tokens
        if len(memo) > _CACHE_LIMIT:
            memo.clear()
        rows: list[int] = []
        for token in tokens:
            if token:
                found = memo.get(token)
                if found is None:
                    found = memo[token] = self._token_rows(token, True)
                rows += found
        if last:
            rows += self._token_rows(last, False)
        return rows

    def _token_rows(self, token: str, space_after: bool) -> tuple[int, ...]:
        """Rows of one space-free token of the prepared text (normalising may split it)."""
        parts = token.translate(_NORMALIZED).split(" ")
        rows: list[int] = []
        for number, part in enumerate(parts, start=1):
            if part:
                rows += self._word_rows(part, space_after or number < len(parts))
        return tuple(rows)

    def _word_rows(self, word: str, space_after: bool) -> list[int]:
        """Rows of the n-grams NGram yields over a normalised word without spaces.

        The buffer holds the space before the word, then at most the last 3 characters; at
        each character NGram yields the 1-, 2- and 3-gram ending there (the 1-gram " " is
        not in the index), unless that character and the one before it are upper case
        (``capitalword``; ``islower()`` rules that out for the whole word at once).
        """
        get = self._index.get
        padded = " " + word + " " if space_after else " " + word
        upper = None if word.islower() else [char.isupper() for char in padded]
        rows: list[int] = []
        append = rows.append
        for end in range(1, len(padded)):
            if upper is not None and upper[end] and upper[end - 1]:
                continue
            row = get(padded[end])
            if row is not None:
                append(row)
            row = get(padded[end - 1 : end + 1])
            if row is not None:
                append(row)
            if end >= 2:
                row = get(padded[end - 2 : end + 1])
                if row is not None:
                    append(row)
        return rows

    def _trial(self, draws: _Draws, weight: float) -> FloatArray:
        """One trial of ``Detector._detect_block``: the normalised probabilities at its end.

        langdetect updates once, normalises (i = 0), then normalises after every 5th update
        and stops when the largest probability exceeds CONV_THRESHOLD or at ITERATION_LIMIT.
        No update draws randomness, so the rows of many rounds are gathered (and ``weight``
        added) at once, before they are used; the draws a trial did not use are left to the
        next trial. A round's 5 updates are one ``multiply.reduce`` over the normalised
        probabilities followed by the 5 rows: a reduction multiplies in index order, so each
        value goes through the same 5 multiplications, in draw order, as langdetect's.
        """
        n_langs = len(self._langs)
        matrix = self._matrix
        rounds = _FIRST_ROUNDS
        drawn = draws.peek(1 + 5 * rounds)
        prob: FloatArray = np.full(n_langs, 1.0 / n_langs, dtype=np.float64)
        prob = prob * (matrix[drawn[0]] + weight)
        block = _round_block(matrix, drawn[1:], weight)
        done = 0  # rounds of 5 updates applied; langdetect's i is 5 * done
        here = 0  # the next round's index in block
        while True:
            values: list[float] = prob.tolist()
            total = sum(values)
            finite = 0.0 < total < math.inf
            if finite:
                # Every value is finite (else the total would not be) and one is positive.
                maxp = max(values) / total
            else:
                maxp, normalized = _normalize_literally(values, total)
            if maxp > _CONV_THRESHOLD or done * 5 >= _ITERATION_LIMIT:
                draws.consume(1 + 5 * done)
                return prob / total if finite else normalized
            if here == len(block):
                rounds *= 2
                drawn = draws.peek(1 + 5 * (done + rounds))[1 + 5 * done :]
                block = _round_block(matrix, drawn, weight)
                here = 0
            if finite:
                np.divide(prob, total, out=block[here, 0])
            else:
                block[here, 0] = normalized
            prob = np.multiply.reduce(block[here], axis=0)
            here += 1
            done += 1


def _round_block(matrix: FloatArray, drawn: IntArray, weight: float) -> FloatArray:
    """Rounds of updates, shape (rounds, 6, languages): per round a slot that receives the
    normalised probabilities, then ``weight`` plus the rows of its 5 draws, in draw order."""
    count = len(drawn) // 5
    index = np.empty((count, 6), dtype=np.intp)
    index[:, 1:] = drawn[: 5 * count].reshape(count, 5)
    index[:, 0] = index[:, 1]  # any row: the slot is overwritten before it is read
    block: FloatArray = matrix.take(index, axis=0)
    block += weight  # langdetect's weight + row[j], elementwise
    return block


class _Stream:
    """The raw 32-bit outputs of ``random.Random(seed)`` in order, generated as far as asked.

    ``getrandbits(32 * m)`` is m outputs, the first one the least significant 32 bits.
    Generating is guarded by a lock; the arrays handed out are never changed afterwards.
    """

    __slots__ = ("_lock", "_random", "_words")

    def __init__(self, seed: Any) -> None:
        self._random = random.Random(seed)
        self._words: WordArray = np.empty(0, dtype=np.uint32)
        self._lock = threading.Lock()

    def words(self, count: int) -> WordArray:
        """The outputs so far, at least ``count`` of them."""
        words = self._words
        if len(words) < count:
            with self._lock:
                words = self._words
                if len(words) < count:
                    more = max(count - len(words), len(words), _STREAM_CHUNK)
                    raw = self._random.getrandbits(32 * more).to_bytes(4 * more, "little")
                    fresh = np.frombuffer(raw, dtype="<u4").astype(np.uint32)
                    words = self._words = np.concatenate([words, fresh])
        return words


class _Draws:
    """langdetect's random draws in one ``get_probabilities``, read off a :class:`_Stream`.

    langdetect calls ``gauss(0.0, 1.0)`` once per trial and ``choice(ngrams)`` once per
    update. ``choice(seq)`` is ``seq[_randbelow(len(seq))]``, and ``_randbelow(n)`` repeats
    ``getrandbits(k)`` (k = ``n.bit_length()``) until it is under n; for k <= 32 that is one
    output shifted right by 32 - k. As n is the same for every update of a call, the draws
    are the outputs whose shifted value is under n, in stream order: they are found for a
    whole stretch of the stream at once. ``gauss`` takes two ``random()`` (each two outputs
    a, b: ``((a >> 5) * 2**26 + (b >> 6)) / 2**53``) and keeps its second value for the
    next call, as ``random.Random`` does.
    """

    __slots__ = (
        "_accepted",
        "_covered",
        "_drawn",
        "_first",
        "_gauss_next",
        "_pos",
        "_rows",
        "_shift",
        "_size",
        "_stream",
    )

    def __init__(self, stream: _Stream, rows: list[int]) -> None:
        if not 0 < len(rows) < 2**32:
            raise ValueError("rows must be a non-empty list shorter than 2**32")
        self._stream = stream
        self._rows: IntArray = np.array(rows, dtype=np.intp)
        self._size = len(rows)
        self._shift = 32 - self._size.bit_length()
        self._pos = 0  # the next output not yet used
        self._first = 0  # index in _accepted of the first output at or after _pos
        self._gauss_next: float | None = None
        self._covered = 0  # outputs scanned for draws
        self._accepted: IntArray = np.empty(0, dtype=np.intp)  # positions of the draws
        self._drawn: IntArray = np.empty(0, dtype=np.intp)  # their rows

    def gauss(self) -> float:
        """``random.Random.gauss(0.0, 1.0)``."""
        z = self._gauss_next
        self._gauss_next = None
        if z is None:
            pos = self._pos
            a, b, c, d = self._stream.words(pos + 4)[pos : pos + 4].tolist()
            self._pos = pos + 4
            x2pi = _uniform(a, b) * _TWOPI
            g2rad = math.sqrt(-2.0 * math.log(1.0 - _uniform(c, d)))
            z = math.cos(x2pi) * g2rad
            self._gauss_next = math.sin(x2pi) * g2rad
        return 0.0 + z * 1.0

    def peek(self, count: int) -> IntArray:
        """The rows ``choice(rows)`` returns the next ``count`` times (nothing is used up)."""
        first = int(np.searchsorted(self._accepted, self._pos))
        while len(self._accepted) - first < count:
            self._scan(max(2 * self._covered, self._pos + 4 * count, _STREAM_CHUNK))
            first = int(np.searchsorted(self._accepted, self._pos))
        self._first = first
        return self._drawn[first : first + count]

    def consume(self, count: int) -> None:
        """Use up the first ``count`` draws of the last :meth:`peek`."""
        if count > 0:
            self._pos = int(self._accepted[self._first + count - 1]) + 1

    def _scan(self, upto: int) -> None:
        words = self._stream.words(upto)[:upto]
        candidates = words >> np.uint32(self._shift)
        accepted = np.flatnonzero(candidates < self._size)
        self._accepted = accepted
        self._drawn = self._rows[candidates[accepted]]
        self._covered = upto


def _uniform(a: int, b: int) -> float:
    """``random.random()`` from its two outputs (C ``random_random``)."""
    return ((a >> 5) * 67108864.0 + (b >> 6)) * (1.0 / 9007199254740992.0)


@functools.cache
def _check_emulation() -> None:
    """Fail loudly if this Python's ``random`` draws differently from :class:`_Draws`.

    Compares gauss and choice against ``random.Random`` itself, for several list lengths
    and calls of several sizes (once per process; about a millisecond).
    """
    for seed in (0, 7):
        for size in (1, 2, 3, 5, 64, 1000, 1025, 40_000):
            expected = random.Random(seed)
            draws = _Draws(_Stream(seed), list(range(size)))
            for trial, count in enumerate((1, 6, 41, 3, 300)):
                ok = expected.gauss(0.0, 1.0) == draws.gauss()
                want = [expected.choice(range(size)) for _ in range(count)]
                got = draws.peek(count + trial).tolist()[:count]
                draws.consume(count)
                if not ok or got != want:
                    raise RuntimeError(
                        "random.Random draws differ from what FastDetector reproduces "
                        f"(seed {seed}, list length {size}): this Python is not supported"
                    )


def _normalize_literally(values: list[float], total: float) -> tuple[float, FloatArray]:
    """``Detector._normalize_prob`` as written, for a zero, infinite or NaN total."""
    quotients = [value / total for value in values]  # ZeroDivisionError, as langdetect
    maxp = 0.0
    for quotient in quotients:
        maxp = max(maxp, quotient)  # max() replaces only when quotient > maxp, like langdetect
    return maxp, np.array(quotients, dtype=np.float64)
