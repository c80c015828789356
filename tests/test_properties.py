"""hypothesis properties of the pure stages."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.contracts import SourceDocument
from flows.stages.boilerplate import Cleaned, clean
from flows.stages.compose import StageConfig, process_document
from flows.stages.encoding import Decoded, EncodingSettings, decode, normalize_text
from flows.stages.language import LanguageSettings, detect_language
from flows.stages.types import Reason, Rejection, Stage

_FAST = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Properties that hold only for some outcomes (decoded, cleaned) are checked in an inner
# @given function that counts the outcomes: the test then shows that most examples reached
# the property, and every other example is checked for the one rejection it may give.

# Text that looks like scraped documents: words, boilerplate phrases, line breaks.
_WORDS = st.sampled_from(
    [
        "the",
        "strike",
        "Loading",
        "Share",
        "Home",
        "Advertisement",
        "Die",
        "Straße",
        "©",
        "2024",
        "Read more",
        "Photo:",
        "Reuters",
        "|",
        "»",
        ".",
        "!",
        "cookies",
        "We use cookies",
        "日本",
        "é",
    ]
)
_LINES = st.lists(st.lists(_WORDS, max_size=12).map(" ".join), max_size=15)
_DOC_TEXT = st.one_of(_LINES.map("\n".join), st.text(max_size=400))
# Prose long enough for langdetect to sample (mixed languages make the sampling matter).
_SENTENCES = [
    "The workers at the plant voted to continue the strike after the union proposed a deal.",
    "Die Beschäftigten im Werk stimmten dafür, den Streik fortzusetzen, trotz des Angebots.",
    "Les enseignants de l'académie ont manifesté pendant trois jours contre la réforme.",
    "El sindicato rompió las negociaciones con los estudios después de tres semanas.",
    "組合は三週間の交渉の後、スタジオとの話し合いを打ち切りました。",
]
_PROSE = st.lists(st.sampled_from(_SENTENCES), min_size=1, max_size=4).map(" ".join)


_ENCODED_TEXT = st.builds(
    lambda text, codec: text.encode(codec, errors="replace"),
    st.text(max_size=600),
    st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig", "cp1252", "latin-1", "shift_jis"]),
)


def test_decode_never_raises_and_normalises() -> None:
    reached: Counter[str] = Counter()

    @_FAST
    @given(st.binary(max_size=2048) | _ENCODED_TEXT)
    def check(data: bytes) -> None:
        result = decode(data)
        if isinstance(result, Decoded):
            assert normalize_text(result.text) == result.text
            assert "\r" not in result.text and "\x00" not in result.text
            assert result.text.strip()
        else:
            assert result.stage == Stage.ENCODING and result.detail
            assert result.reason in {Reason.EMPTY, Reason.BINARY, Reason.UNDECODABLE}
        reached[type(result).__name__] += 1

    check()
    assert reached["Decoded"] >= 0.3 * reached.total(), reached


@_FAST
@given(st.text(max_size=500))
def test_normalise_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


def test_unicode_round_trips_through_any_utf() -> None:
    reached: Counter[str] = Counter()

    @_FAST
    @given(
        # NUL is excluded: by policy a text with NUL bytes is binary (and, without a BOM,
        # NULs make UTF-8 ambiguous with UTF-16/32); so are other control characters, of
        # which a text may hold only a few.
        st.text(
            alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters="\n\t\r"),
            max_size=300,
        ),
        st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"]),
    )
    def check(text: str, codec: str) -> None:
        # Mojibake repair is off here: "Ã\x80" is exactly the latin-1 mojibake of "À", and
        # repairing it is the point of that feature (tested in test_encoding.py).
        result = decode(text.encode(codec), EncodingSettings(repair_mojibake=False))
        if isinstance(result, Decoded):
            assert result.text == normalize_text(text)
        else:  # only a text with nothing visible is rejected
            assert result.reason == Reason.EMPTY, result
            assert not normalize_text(text).strip()
        reached[type(result).__name__] += 1

    check()
    assert reached["Decoded"] >= 0.8 * reached.total(), reached


def test_decode_then_normalise_is_idempotent_through_bytes() -> None:
    reached: Counter[str] = Counter()

    @_FAST
    @given(
        st.text(
            alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]),
            min_size=1,
            max_size=300,
        )
    )
    def check(text: str) -> None:
        first = decode(text.encode("utf-8"))
        if isinstance(first, Decoded):
            second = decode(first.text.encode("utf-8"))
            assert isinstance(second, Decoded)
            assert second.text == first.text
        else:  # only a text with nothing visible is rejected
            assert first.reason == Reason.EMPTY, first
            assert not normalize_text(text).strip()
        reached[type(first).__name__] += 1

    check()
    assert reached["Decoded"] >= 0.8 * reached.total(), reached


def test_cleaning_is_idempotent_and_never_adds_text(default_config: StageConfig) -> None:
    reached: Counter[str] = Counter()

    @_FAST
    @given(_DOC_TEXT)
    def check(text: str) -> None:
        text = normalize_text(text)
        first = clean(text, default_config.rules)
        reached[type(first).__name__] += 1
        if isinstance(first, Rejection):
            assert (first.stage, first.reason) == (Stage.BOILERPLATE, Reason.ONLY_BOILERPLATE)
            return
        assert first.text.strip()
        assert len(first.text) <= len(text)
        kept = {line.rstrip() for line in text.split("\n")}
        assert all(line in kept for line in first.text.split("\n"))
        second = clean(first.text, default_config.rules)
        assert isinstance(second, Cleaned)
        assert second.text == first.text
        assert second.removed == ()

    check()
    assert reached["Cleaned"] >= 0.5 * reached.total(), reached


def test_language_does_not_depend_on_earlier_calls_or_global_random_state() -> None:
    """The same texts give the same results in another order, after other detections and
    after every global random stream moved on (cross-process runs: test_language.py)."""
    reached: Counter[str] = Counter()
    min_letters = LanguageSettings().min_letters

    @settings(max_examples=60, deadline=None)
    @given(st.lists(_DOC_TEXT | _PROSE, min_size=2, max_size=4), st.integers(0, 2**32 - 1))
    def check(texts: list[str], salt: int) -> None:
        first = [detect_language(text) for text in texts]
        random.seed(salt)
        random.random()
        np.random.seed(salt)
        np.random.random()
        again = [detect_language(text) for text in reversed(texts)][::-1]
        assert again == first
        reached["detected"] += sum(r.sample_letters >= min_letters for r in first)
        reached["texts"] += len(texts)

    check()
    assert reached["detected"] >= 0.2 * reached["texts"], reached


@_FAST
@given(st.binary(max_size=1024) | _DOC_TEXT.map(lambda t: t.encode("utf-8")))
def test_process_document_never_raises(default_config: StageConfig, data: bytes) -> None:
    doc = SourceDocument(source_path="x.txt", doc_id="x", size=len(data))
    row = process_document(doc, data, default_config)
    assert row.source_path == "x.txt"
