"""The per-document facts keep their units: dedup units, MinHash and paragraph anchors of real
strings in many scripts, pinned to values the regex-based code computed before it was made
faster (issue 16), and the fast units equal to the regex definition on any text."""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.engine.pairs import paragraph_facts
from flows.stages import align, dedup
from flows.stages.dedup import normalise, shingles, signature, units
from tests.conftest import SHARED_BENCHMARKS

# name -> (text, its units, norm_sha256[:16], sha256(minhash)[:16], paragraph facts)
CASES: dict[str, tuple[str, list[str], str, str, tuple[object, ...]]] = {
    "english": (
        "The Quick brown fox, born in 1999, jumped over 3 lazy dogs at "
        'https://example.com/a?b=1.\nIt said: "Hello again!" Then it left…',
        [
            "the",
            "quick",
            "brown",
            "fox",
            "born",
            "in",
            "1999",
            "jumped",
            "over",
            "3",
            "lazy",
            "dogs",
            "at",
            "https",
            "example",
            "com",
            "a",
            "b",
            "1",
            "it",
            "said",
            "hello",
            "again",
            "then",
            "it",
            "left",
        ],
        "3a27a7de8331d45f",
        "2ad9bad495efdcdf",
        (
            (88, 37),
            (False, False),
            ("n:1999 u:example.com/a?b=1 w:quick w:the", "w:hello w:then"),
            (1, 2),
            (3, 1),
            (),
        ),
    ),
    "german": (
        "Straße und STRASSE: Die Grüße aus München kosten 1.234,50 Euro. Ärger? Nein.",
        [
            "strasse",
            "und",
            "strasse",
            "die",
            "grüsse",
            "aus",
            "münchen",
            "kosten",
            "1",
            "234",
            "50",
            "euro",
            "ärger",
            "nein",
        ],
        "bf1adc1c9f35ac06",
        "0406e71692b9837d",
        (
            (76,),
            (False,),
            ("n:123450 w:die w:euro w:grüsse w:münchen w:nein w:strasse",),
            (3,),
            (2,),
            (),
        ),
    ),
    "turkish": (
        "İstanbul'da İLK ışık; DİYARBAKIR ve Iğdır.",
        # casefold makes İ "i" + a combining dot, which stays in its word now
        ["i\u0307stanbul", "da", "i\u0307lk", "ışık", "di\u0307yarbakir", "ve", "iğdır"],
        "5d43cbdf38f5a2aa",
        "0e10bfebd5c31200",
        ((42,), (False,), ("w:di̇yarbakir w:iğdır",), (2,), (1,), ()),
    ),
    "chinese": (
        "今天天气很好。我们去公园散步，看见了许多花。2024年",
        [*"今天天气很好我们去公园散步看见了许多花", "2024", "年"],
        "417d2039faabbd37",
        "cfaf610f037a9939",
        ((27,), (True,), ("n:2024",), (1,), (1,), ()),
    ),
    "japanese": (
        "東京々は、カタカナ・ひらがなを使います。ｶﾀｶﾅ半角も",
        [*"東京々はカタカナ・ひらがなを使います", "ｶﾀｶﾅ", *"半角も"],
        "922a7ad99662b4e2",
        "9a35e8cf56e45472",
        ((27,), (True,), ("",), (1,), (1,), ()),
    ),
    "thai": (
        "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ ผู้คนอ่านได้ง่าย",
        list("ภาษาไทยไม่มีการเว้นวรรคระหว่างคำผู้คนอ่านได้ง่าย"),
        "2d703acdb487aa7b",
        "22193ebf68de3491",
        ((49,), (True,), ("",), (1,), (0,), ()),
    ),
    "arabic": (
        "في عام ٢٠٢٤ قال الرئيس: السلام عليكم؟ نعم.",
        ["في", "عام", "٢٠٢٤", "قال", "الرئيس", "السلام", "عليكم", "نعم"],
        "37a682404b592d2f",
        "1ff4fd8818522b06",
        ((42,), (False,), ("n:2024",), (2,), (1,), ()),
    ),
    "hindi": (  # vowel signs and the virama are in their words (not split there)
        "भारत एक विशाल देश है। यहाँ कई भाषाएँ बोली जाती हैं॥",
        ["भारत", "एक", "विशाल", "देश", "है", "यहाँ", "कई", "भाषाएँ", "बोली", "जाती", "हैं"],
        "109e41befffbcb5f",
        "f626ad118448e6d1",
        ((51,), (False,), ("",), (2,), (0,), ()),
    ),
    "mixed": (
        "Café\u0301 naïve coöp — ﬁne_tuning x_y 𠀀𠀁 😀 emoji; Ⅻ ½ ²",
        ["café\u0301", "naïve", "coöp", "fine_tuning", "x_y", "𠀀", "𠀁", "emoji", "ⅻ", "½", "²"],
        "99640472139e4f04",
        "611aa2fe25ff91ad",
        ((51,), (True,), ("w:café",), (1,), (1,), ()),
    ),
    "lao_khmer_myanmar": (
        "ພາສາລາວ ភាសាខ្មែរ မြန်မာဘာသာ",
        list("ພາສາລາວភាសាខ្មែរမြန်မာဘာသာ"),
        "1e734069b2636bb5",
        "3d0d2b46fbd01c90",
        ((28,), (True,), ("",), (1,), (0,), ()),
    ),
    "short": (
        "Two words",
        ["two", "words"],
        "a03f1d611645eb53",
        "0d5aaf258e93849e",
        ((9,), (True,), ("w:two",), (1,), (0,), ()),
    ),
    "blank": ("  \n\t ", [], "e3b0c44298fc1c14", "c316be94fa916f3d", ((), (), (), (), (), ())),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_units_signature_and_paragraph_facts_are_unchanged(name: str) -> None:
    text, expected_units, norm, minhash, paragraphs = CASES[name]
    assert units(normalise(text)) == expected_units
    found = signature(text)
    assert found.norm_sha256[:16] == norm
    assert hashlib.sha256(found.minhash).hexdigest()[:16] == minhash
    assert dataclasses.astuple(paragraph_facts(text)) == paragraphs


# The units by their definition, one character at a time: a character of a script written
# without spaces is a unit; so is a run of word characters (what regex \\w matches:
# str.isalnum, '_') and combining marks (a Devanagari vowel sign or virama, an Arabic haraka
# stays in its word).
_UNSPACED = (
    (0x0E00, 0x0E7F),
    (0x0E80, 0x0EFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x3005, 0x3007),
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x3134F),
)


def _reference_units(text: str) -> list[str]:
    found: list[str] = []
    word: list[str] = []
    for char in text:
        unspaced = any(low <= ord(char) <= high for low, high in _UNSPACED)
        if not unspaced and (
            char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")
        ):
            word.append(char)
            continue
        if word:
            found.append("".join(word))
            word = []
        if unspaced:
            found.append(char)
    return [*found, "".join(word)] if word else found


_SAMPLE = (
    "aZ_ 0٣\t\n\u00a0\u3000.,-'éİßﬁ\u0301\u0e01\u0e31\u0e48今カ\u3005\u30fb𠀁𝐀😀\u200b\u2028\x1cـ"
    "क\u093e\u094d\u0902ب\u064e\u0651\u20dd"
)


def _numpy_units(text: str) -> list[str]:
    joined = dedup._joined_units(dedup._codes(text))[0]
    return joined.decode("utf-8", "surrogatepass").split(" ") if joined else []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(_SAMPLE)) | st.text())
def test_units_and_shingles_are_the_defined_units(text: str) -> None:
    """Both ways of finding them (a regex on short texts, numpy on long ones)."""
    normalised = normalise(text)
    reference = _reference_units(normalised)
    assert units(normalised) == _numpy_units(normalised) == reference
    windows = [" ".join(reference[i : i + 5]) for i in range(max(1, len(reference) - 4))]
    expected = windows if reference else [normalised]
    assert shingles(normalised, 5) == expected
    by_numpy = dedup._shingles(normalised, 5, numpy_from=0)
    assert [s.decode("utf-8", "surrogatepass") for s in by_numpy] == expected  # type: ignore[union-attr]


def test_every_character_is_a_unit_character_as_defined() -> None:
    """All of Unicode, one character at a time: a word character, one of a script without
    spaces, or neither."""
    spaced = " ".join("".join(map(chr, range(0x110000))).replace(" ", ""))
    assert _numpy_units(spaced) == units(spaced) == _reference_units(spaced)


def test_long_texts_take_the_numpy_way_and_hash_the_same() -> None:
    # Of the BMP: a text with an astral character takes the numpy way whatever its length.
    bmp = [name for name in sorted(CASES) if max(CASES[name][0], default=" ") < "\U00010000"]
    text = " ".join(CASES[name][0] for name in bmp) * 20
    assert len(normalise(text)) >= dedup._NUMPY_FROM
    by_numpy = dedup._shingles(normalise(text), 5)
    assert isinstance(by_numpy[0], bytes)
    regex = dedup._shingles(normalise(text), 5, numpy_from=len(text) + 1)
    assert isinstance(regex[0], str)
    assert [s.encode() for s in regex] == by_numpy
    assert signature(text).minhash == _reference_signature(text)


def _reference_signature(text: str) -> bytes:
    """The MinHash of the str shingles, as first computed."""
    import numpy as np
    from rensa import RMinHash

    minhash = RMinHash(num_perm=dedup.SIGNATURE.permutations, seed=dedup.SIGNATURE.seed)
    minhash.update(dedup._shingles(normalise(text), dedup.SIGNATURE.ngram, len(text) + 1))
    return np.asarray(minhash.digest(), dtype="<u4").tobytes()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZAB Q_ 0123\t\n\u00a0.,:;!?'\"-éİ今。٣۔।/wm")))
def test_paragraph_columns_are_the_paragraphs(text: str) -> None:
    """The facts' columns (one pass, no Paragraph objects) say what the paragraphs say."""
    columns = align.paragraph_columns(text)
    found = align.paragraphs(text)
    assert columns.lines == [p.line for p in found]
    assert columns.chars == [p.chars for p in found]
    assert columns.short == [p.short for p in found]
    assert columns.anchors == [" ".join(sorted(p.anchors)) for p in found]
    assert columns.sentences == [p.sentences for p in found]
    assert columns.clauses == [p.clauses for p in found]


# The shard pass makes the signatures of a shard's texts together (dedup.signatures); each
# must be the one dedup.signature makes of the text alone.
_LANGUAGES = SHARED_BENCHMARKS / "language"


def _documents_in(folder: Path) -> list[str]:
    """Texts of one language's sentences: single sentences, a few kB, and longer."""
    found = (folder / "sentences.txt").read_text(encoding="utf-8").splitlines()
    return [*found[:3], "\n".join(found[:40]), "\n\n".join(found[:400]), " ".join(found[5:9])]


@pytest.mark.skipif(not _LANGUAGES.is_dir(), reason="../shared/benchmarks is absent")
def test_signatures_together_are_each_text_s_signature_in_every_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [text for folder in sorted(_LANGUAGES.iterdir()) for text in _documents_in(folder)]
    assert len({path.name for path in _LANGUAGES.iterdir()}) >= 70
    expected = [signature(text) for text in texts]
    assert dedup.signatures(texts) == expected
    # Texts grouped a few at a time: a group's edge falls between any two of them.
    monkeypatch.setattr(dedup, "_GROUP_CHARS", 3_000)
    assert dedup.signatures(texts) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(_SAMPLE)) | st.text(), max_size=6))
def test_signatures_together_are_each_text_s_signature(texts: list[str]) -> None:
    """Short and empty texts, texts without a unit, scripts without spaces, astral planes."""
    long = [text * 60 for text in texts]  # the numpy units of a long text alone, too
    assert dedup.signatures(texts + long) == [signature(text) for text in texts + long]


def test_token_hashes_are_rensa_s() -> None:
    """rensa's own hash of each token, every length branch (0-3, 4-7, 8-16, rounds of 16)."""
    from rensa import RMinHash

    data = bytes(range(256)) * 3 + "naïve 今日 𝐀".encode()
    tokens = [(start, start + size) for size in range(120) for start in (0, 7, 300, 700)]
    tokens = [(a, b) for a, b in tokens if b <= len(data)]
    starts = np.array([a for a, _ in tokens], np.int64)
    ends = np.array([b for _, b in tokens], np.int64)
    expected = RMinHash.hash_token_sets([[data[a:b] for a, b in tokens]])[0]
    assert dedup._token_hashes(data, starts, ends).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(",،、，;；:;:,. a今\n\u00a0")) | st.text())
def test_clauses_are_the_clause_marks_the_pattern_finds(text: str) -> None:
    assert align.clauses(text) == len(align._CLAUSE.findall(text))


def test_signatures_are_rensa_s_own_when_its_token_hash_differs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rensa that hashes tokens otherwise: each text is hashed by rensa itself."""
    texts = [CASES[name][0] * 30 for name in sorted(CASES)]
    monkeypatch.setattr(dedup, "_token_hashes", lambda data, starts, ends: ends.astype(np.uint64))
    dedup._hashes_as_rensa.cache_clear()
    try:
        assert not dedup._hashes_as_rensa()
        assert dedup.signatures(texts) == [signature(text) for text in texts]
    finally:
        dedup._hashes_as_rensa.cache_clear()
