"""hypothesis properties of the pure stages."""

from __future__ import annotations

import codecs

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.contracts import SourceDocument
from flows.stages.boilerplate import Cleaned, clean
from flows.stages.compose import StageConfig, process_document
from flows.stages.encoding import Decoded, EncodingSettings, decode, normalize_text
from flows.stages.language import detect_language

_FAST = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

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


@_FAST
@given(st.binary(max_size=2048))
def test_decode_never_raises_and_normalises(data: bytes) -> None:
    result = decode(data)
    if isinstance(result, Decoded):
        assert normalize_text(result.text) == result.text
        assert "\r" not in result.text and "\x00" not in result.text
        assert result.text.strip()


@_FAST
@given(st.text(max_size=500))
def test_normalise_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@_FAST
@given(
    # NUL is excluded: by policy a text with NUL bytes is binary (and, without a BOM, NULs
    # make UTF-8 ambiguous with UTF-16/32).
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=300
    ),
    st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"]),
)
def test_unicode_round_trips_through_any_utf(text: str, codec: str) -> None:
    # Mojibake repair is off here: "Ã\x80" is exactly the latin-1 mojibake of "À", and
    # repairing it is the point of that feature (tested in test_encoding.py).
    result = decode(text.encode(codec), EncodingSettings(repair_mojibake=False))
    if isinstance(result, Decoded):
        assert result.text == normalize_text(text)


@_FAST
@given(
    st.text(
        alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), min_size=1, max_size=300
    )
)
def test_decode_then_normalise_is_idempotent_through_bytes(text: str) -> None:
    first = decode(text.encode("utf-8"))
    if isinstance(first, Decoded):
        second = decode(first.text.encode("utf-8"))
        assert isinstance(second, Decoded)
        assert second.text == first.text


@_FAST
@given(_DOC_TEXT)
def test_cleaning_is_idempotent_and_never_adds_text(default_config: StageConfig, text: str) -> None:
    text = normalize_text(text)
    first = clean(text, default_config.rules)
    if not isinstance(first, Cleaned):
        return
    assert len(first.text) <= len(text)
    kept = {line.rstrip() for line in text.split("\n")}
    assert all(line in kept for line in first.text.split("\n"))
    second = clean(first.text, default_config.rules)
    assert isinstance(second, Cleaned)
    assert second.text == first.text
    assert second.removed == ()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_DOC_TEXT)
def test_language_is_reproducible(text: str) -> None:
    assert detect_language(text) == detect_language(text)


@_FAST
@given(st.binary(max_size=1024) | _DOC_TEXT.map(lambda t: t.encode("utf-8")))
def test_process_document_never_raises(default_config: StageConfig, data: bytes) -> None:
    doc = SourceDocument(source_path="x.txt", doc_id="x", size=len(data))
    row = process_document(doc, data, default_config)
    assert row.source_path == "x.txt"


def test_bom_codecs_are_covered() -> None:
    assert codecs.lookup("utf-8-sig").name == "utf-8-sig"
