"""Detect the document language with langdetect, reproducibly.

langdetect draws random n-grams; it is deterministic only with a seed, so every detector
here comes from a factory with ``seed`` set. Profiles take ~0.9 s to load, so one factory
is built per process and seed and then reused.

The sample is bounded (detection cost grows with text length, accuracy stops growing
after a few hundred characters) and made of the document's longest lines, so short
scrape leftovers such as menus or a trailing "Loading" never decide the language.

Script evidence overrides langdetect where it cannot be wrong: its Korean profile holds
many Han characters, so it called 41 of 48 Traditional Chinese UDHR paragraphs Korean.
Text with Han or kana but no Hangul is never Korean; it is decided among zh-cn, zh-tw and
ja by a second detector loaded with those three profiles only.

Mixed documents: a bounded, evenly spread sample of the document's lines is detected one
by one; the share of the main language among them (by letters) is recorded, and a
document whose share is under ``mixed_below`` is flagged. :func:`line_languages` gives the
same per-line evidence to other stages (a lone English "Loading" closing a German article
is a boilerplate hint).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from langdetect import DetectorFactory
from langdetect.detector_factory import PROFILES_DIRECTORY
from langdetect.lang_detect_exception import LangDetectException

from flows.langdetect_numpy import FastDetector
from flows.models import parameter_default
from flows.stages.types import Reason, Rejection, Stage

UNDETERMINED = "und"


@dataclass(frozen=True, slots=True)
class LanguageSettings:
    """Knobs of the language stage; defaults are RunParameters' (measurements behind them
    in the README's Language section and benchmarks/bench_language.py)."""

    sample_chars: int = parameter_default("language_sample_chars")
    min_letters: int = parameter_default("language_min_letters")
    min_confidence: float = parameter_default("language_min_confidence")
    seed: int = parameter_default("language_seed")
    # Lines detected one by one for the main-language share; 0 switches the check off.
    paragraph_samples: int = parameter_default("language_paragraph_samples")
    # Not a parameter: langdetect costs ~1.4 ms a call plus ~1.25 ms per 1,000 characters,
    # so lines of at most 200 characters keep the check at ~10 ms a document.
    paragraph_chars: int = 200
    mixed_below: float = parameter_default("language_mixed_below")


@dataclass(frozen=True, slots=True)
class LanguageResult:
    """The detected language (``und`` when unsure) and the probability langdetect gave it.

    ``main_share``: share (by letters) of the sampled lines detected as the main language;
    None when fewer than two lines could be judged. ``mixed``: that share is too low.
    """

    language: str
    confidence: float
    sample_letters: int
    main_share: float | None = None
    mixed: bool = False


@dataclass(frozen=True, slots=True)
class LineLanguage:
    """Language evidence for one line: 1-based line number, langdetect's answer, letters."""

    line: int
    language: str
    confidence: float
    letters: int


_MARKS = frozenset({"Mn", "Mc"})
# Profiles of the languages written with Han characters and/or kana, but without Hangul.
_HAN_LANGUAGES = ("ja", "zh-cn", "zh-tw")


@functools.cache
def _factory(seed: int) -> DetectorFactory:
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(seed)
    return factory


@functools.cache
def _han_factory(seed: int) -> DetectorFactory:
    factory = DetectorFactory()
    factory.load_json_profile(
        [Path(PROFILES_DIRECTORY, name).read_text(encoding="utf-8") for name in _HAN_LANGUAGES]
    )
    factory.set_seed(seed)
    return factory


@functools.cache
def _detector(seed: int, han: bool) -> FastDetector:
    # langdetect's algorithm over its own profiles, 2-4x faster, with identical answers
    # (tests/test_fastdetect.py compares the two); built once per process (~0.2 s).
    return FastDetector.from_factory(_han_factory(seed) if han else _factory(seed))


def warm_up(seed: int = 0) -> None:
    """Load the profiles now, so the first shard does not pay for it inside a timed call."""
    # Positional, as _best calls it: functools.cache keys ``han=False`` apart from ``False``.
    _detector(seed, False)
    _detector(seed, True)


def _is_hangul(code: int) -> bool:
    return 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F


def _is_han_or_kana(code: int) -> bool:
    return (
        0x3040 <= code <= 0x30FF
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3FFFF
    )


# Any character in the Han or kana blocks of _is_han_or_kana; without one, a text has no
# Han or kana letter.
_HAN_OR_KANA = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]"
)


def han_without_hangul(text: str) -> bool:
    """Most letters are Han or kana and none is Hangul: the text cannot be Korean."""
    if not _HAN_OR_KANA.search(text):
        # The common case, decided by one regular-expression scan instead of a loop.
        return False
    han = 0
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        code = ord(ch)
        if _is_hangul(code):
            return False
        letters += 1
        han += _is_han_or_kana(code)
    return han > 0 and 2 * han >= letters


# langdetect averages 7 randomised trials; a single line needs fewer to settle, and each
# trial is most of a call's cost.
_TRIALS = 7
_LINE_TRIALS = 3


def _best(sample: str, seed: int, trials: int | None = None) -> tuple[str, float] | None:
    """langdetect's best language and probability for ``sample``; None if it has no answer."""
    detector = _detector(seed, han_without_hangul(sample))
    try:
        lang, prob = detector.probabilities(sample, n_trial=trials or _TRIALS)[0]
    except (LangDetectException, IndexError):
        # No usable n-grams (digits, symbols, a script langdetect has no profile for).
        return None
    return str(lang), round(float(prob), 4)


def sample_text(text: str, limit: int) -> str:
    """The longest lines of ``text`` in document order, up to ``limit`` characters."""
    lines = [(i, line.strip()) for i, line in enumerate(text.split("\n")) if line.strip()]
    chosen: list[tuple[int, str]] = []
    budget = limit
    for index, line in sorted(lines, key=lambda item: (-len(item[1]), item[0])):
        if budget <= 0:
            break
        piece = line[:budget]
        chosen.append((index, piece))
        budget -= len(piece) + 1
    return "\n".join(line for _, line in sorted(chosen))


def _is_wide(ch: str) -> bool:
    # Han, kana and Hangul syllables: one character carries about a syllable or a word.
    code = ord(ch)
    return _is_han_or_kana(code) or 0xAC00 <= code <= 0xD7AF


def letter_weight(text: str) -> int:
    """Letters in ``text``, where an ideograph, kana or Hangul syllable counts twice.

    Combining marks count too: Indic and Thai vowel signs are marks, not letters, and
    without them a Bengali sentence weighed half its length (measured on lingua's test
    sentences: under 40 were 52 % of Bengali and 37 % of Tamil ones, now 16 % and 10 %;
    English 12 %).
    """
    return sum(map(_WEIGHTS.__getitem__, text))


class _CharWeights(dict[str, int]):
    """Character -> its weight in letter_weight, worked out once per distinct character:
    called for every line of every document, a lookup per character is what it can afford."""

    def __missing__(self, ch: str) -> int:
        if ch.isalpha():
            weight = 2 if _is_wide(ch) else 1
        elif ch > "\u02ff" and unicodedata.category(ch) in _MARKS:
            weight = 1
        else:
            weight = 0
        self[ch] = weight
        return weight


_WEIGHTS = _CharWeights()


def detect_language(text: str, settings: LanguageSettings | None = None) -> LanguageResult:
    """Detect the language of ``text``; ``und`` when it is too short or langdetect unsure."""
    settings = settings or LanguageSettings()
    sample = sample_text(text, settings.sample_chars)
    letters = letter_weight(sample)
    if letters < settings.min_letters:
        return LanguageResult(UNDETERMINED, 0.0, letters)
    best = _best(sample, settings.seed)
    if best is None:
        return LanguageResult(UNDETERMINED, 0.0, letters)
    language, confidence = best
    if confidence < settings.min_confidence:
        language = UNDETERMINED
    share, mixed = main_language_share(text, language, settings, confidence)
    return LanguageResult(language, confidence, letters, share, mixed)


def _spread(items: list[int], count: int) -> list[int]:
    """``count`` items evenly spread over ``items`` (first and last included)."""
    if len(items) <= count:
        return items
    if count == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def line_languages(
    text: str,
    line_numbers: Iterable[int] | None = None,
    settings: LanguageSettings | None = None,
    min_letters: int = 1,
) -> list[LineLanguage]:
    """Per-line language evidence: langdetect on each chosen line on its own.

    ``line_numbers`` are 1-based (default: every line); lines with fewer than
    ``min_letters`` letters are skipped, and each line is cut to ``paragraph_chars``. No
    ``und`` floor is applied: the caller weighs ``confidence`` and ``letters`` (langdetect
    is 61 % right under 10 characters, 89 % at 20-40, 98 % from 40). Evidence for
    boilerplate: a short line at the start or end of a document, detected as another
    language than the document's with high confidence (the English "Loading" closing a
    German article comes back ``en`` at 0.99999). Costs ~1.5 ms a line: pass only the
    lines in question.
    """
    settings = settings or LanguageSettings()
    lines = text.split("\n")
    wanted = range(1, len(lines) + 1) if line_numbers is None else line_numbers
    found: list[LineLanguage] = []
    for number in wanted:
        if not 1 <= number <= len(lines):
            continue
        line = lines[number - 1].strip()[: settings.paragraph_chars]
        letters = letter_weight(line)
        if letters < max(min_letters, 1):
            continue
        best = _best(line, settings.seed, _LINE_TRIALS)
        language, confidence = best if best is not None else (UNDETERMINED, 0.0)
        found.append(LineLanguage(number, language, confidence, letters))
    return found


# The per-line check starts with this many lines; it looks at ``paragraph_samples`` only
# when they, or the whole sample (a probability under _CERTAIN), say the text is mixed.
_PROBE_LINES = 2
_CERTAIN = 0.99


def _share(evidence: Sequence[LineLanguage], main: str, settings: LanguageSettings) -> float | None:
    """Letters of the lines in ``main`` (or, for ``und``, the commonest line language)."""
    weights: dict[str, int] = {}
    for line in evidence:
        if line.language != UNDETERMINED and line.confidence >= settings.min_confidence:
            weights[line.language] = weights.get(line.language, 0) + line.letters
    if (
        sum(
            1
            for line in evidence
            if line.language in weights and line.confidence >= settings.min_confidence
        )
        < 2
    ):
        return None
    if main == UNDETERMINED:
        main = max(sorted(weights), key=lambda lang: weights[lang])
    return round(weights.get(main, 0) / sum(weights.values()), 4)


def _is_eligible(line: str, settings: LanguageSettings) -> bool:
    """A line long enough for the per-line check."""
    return (
        len(line) >= settings.min_letters // 2
        and letter_weight(line[: settings.paragraph_chars]) >= settings.min_letters
    )


def _eligible(lines: list[str], numbers: range, settings: LanguageSettings) -> list[int]:
    """The 1-based ``numbers`` of the lines eligible for the per-line check."""
    return [number for number in numbers if _is_eligible(lines[number - 1], settings)]


def _first_and_last(lines: list[str], settings: LanguageSettings) -> list[int]:
    """The first and the last eligible line (1-based); fewer when under two are eligible."""
    first = next(
        (n for n in range(1, len(lines) + 1) if _is_eligible(lines[n - 1], settings)), None
    )
    if first is None:
        return []
    last = next(n for n in range(len(lines), first - 1, -1) if _is_eligible(lines[n - 1], settings))
    return [first] if last == first else [first, last]


def main_language_share(
    text: str, main: str, settings: LanguageSettings | None = None, confidence: float = 0.0
) -> tuple[float | None, bool]:
    """Share (by letters) of a sample of lines detected as ``main``, and whether it is mixed.

    Lines with at least ``min_letters`` letters, evenly spread over the document, are
    detected one by one; lines langdetect is unsure of (under ``min_confidence``) do not
    count. Two lines first (first and last): when both are the main language and the whole
    sample was certain of it (``confidence``), the document is one language and the check
    stops there -- each line costs ~3 ms, and most documents are not mixed. Otherwise up to
    ``paragraph_samples`` lines decide. With ``main`` = ``und`` the most common line
    language is the main one. None (and not mixed) when fewer than two lines count.
    """
    settings = settings or LanguageSettings()
    if settings.paragraph_samples <= 0:
        return None, False
    lines = text.split("\n")
    eligible: list[int] | None = None
    if min(_PROBE_LINES, settings.paragraph_samples) == 2:
        # The probes are the first and the last eligible line: found without judging
        # every line in between, which most documents never need.
        probes = _first_and_last(lines, settings)
    else:
        eligible = _eligible(lines, range(1, len(lines) + 1), settings)
        probes = _spread(eligible, min(_PROBE_LINES, settings.paragraph_samples))
    if len(probes) < 2:
        return None, False
    evidence = line_languages(text, probes, settings, settings.min_letters)
    share = _share(evidence, main, settings)
    if share == 1.0 and confidence >= _CERTAIN and main != UNDETERMINED:
        return share, False
    if eligible is None:
        eligible = _eligible(lines, range(probes[0], probes[1] + 1), settings)
    done = set(probes)
    more = [n for n in _spread(eligible, settings.paragraph_samples) if n not in done]
    share = _share(
        evidence + line_languages(text, more, settings, settings.min_letters), main, settings
    )
    if share is None:
        return None, False
    return share, share < settings.mixed_below


def primary_subtag(tag: str) -> str:
    """``en-US`` -> ``en``; langdetect's ``zh-cn`` -> ``zh``; Norwegian ``nb``/``nn`` -> ``no``."""
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return "no" if primary in {"nb", "nn"} else primary


def check_language(
    detected: LanguageResult,
    declared: str | None,
    allowed: frozenset[str],
    reject_mismatch: bool,
) -> tuple[bool, Rejection | None]:
    """Compare with the declared language and the allow-list.

    Returns ``(mismatch, rejection)``: ``mismatch`` is recorded in the row either way; the
    rejection is set when policy says the document must not be published.
    """
    mismatch = (
        declared is not None
        and detected.language != UNDETERMINED
        and primary_subtag(declared) != primary_subtag(detected.language)
    )
    if mismatch and reject_mismatch:
        return True, Rejection(
            Stage.LANGUAGE,
            Reason.LANGUAGE_MISMATCH,
            f"metadata declares {declared!r}, text detected as {detected.language!r} "
            f"(p={detected.confidence:.2f})",
        )
    if allowed and primary_subtag(detected.language) not in allowed:
        return mismatch, Rejection(
            Stage.LANGUAGE,
            Reason.LANGUAGE_NOT_ALLOWED,
            f"detected {detected.language!r}, allowed: {', '.join(sorted(allowed))}",
        )
    return mismatch, None
