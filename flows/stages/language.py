"""Stage 2: detect the document language with langdetect, reproducibly.

langdetect draws random n-grams; it is deterministic only with a seed, so every detector
here comes from a factory with ``seed`` set. Profiles take ~0.9 s to load, so one factory
is built per process and seed and then reused.

The sample is bounded (detection cost grows with text length, accuracy stops growing
after a few hundred characters) and made of the document's longest lines, so short
scrape leftovers such as menus or a trailing "Loading" never decide the language.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from langdetect import DetectorFactory
from langdetect.detector_factory import PROFILES_DIRECTORY
from langdetect.lang_detect_exception import LangDetectException

from flows.stages.types import Reason, Rejection, Stage

UNDETERMINED = "und"


@dataclass(frozen=True, slots=True)
class LanguageSettings:
    """Knobs of the language stage (copied from the run parameters)."""

    sample_chars: int = 2_000
    # Seeded langdetect is 61 % right under 10 letters, 89 % at 20-40, 98 % at 40-80:
    # below 40 letters we say "und" rather than guess (CJK characters count twice).
    min_letters: int = 40
    min_confidence: float = 0.80
    seed: int = 0


@dataclass(frozen=True, slots=True)
class LanguageResult:
    """The detected language (``und`` when unsure) and the probability langdetect gave it."""

    language: str
    confidence: float
    sample_letters: int


@functools.cache
def _factory(seed: int) -> DetectorFactory:
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(seed)
    return factory


def warm_up(seed: int = 0) -> None:
    """Load the profiles now, so the first shard does not pay for it inside a timed call."""
    _factory(seed)


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
    return (
        0x3040 <= code <= 0x30FF
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3FFFF
    )


def letter_weight(text: str) -> int:
    """Letters in ``text``, where an ideograph, kana or Hangul syllable counts twice."""
    return sum(2 if _is_wide(ch) else 1 for ch in text if ch.isalpha())


def detect_language(text: str, settings: LanguageSettings | None = None) -> LanguageResult:
    """Detect the language of ``text``; ``und`` when it is too short or langdetect unsure."""
    settings = settings or LanguageSettings()
    sample = sample_text(text, settings.sample_chars)
    letters = letter_weight(sample)
    if letters < settings.min_letters:
        return LanguageResult(UNDETERMINED, 0.0, letters)
    detector = _factory(settings.seed).create()
    detector.append(sample)
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        # No usable n-grams (digits, symbols, a script langdetect has no profile for).
        return LanguageResult(UNDETERMINED, 0.0, letters)
    confidence = round(float(best.prob), 4)
    if confidence < settings.min_confidence:
        return LanguageResult(UNDETERMINED, confidence, letters)
    return LanguageResult(str(best.lang), confidence, letters)


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
