"""Encoding stage: labelled byte inputs -> codec, text, or rejection reason."""

from __future__ import annotations

import codecs

import pytest

from flows.stages.encoding import Decoded, EncodingSettings, decode, normalize_text
from flows.stages.types import Reason, Rejection

GERMAN = "Grüße aus Köln: Die Straße ist schön, die Bäume blühen und Öl ist teuer. " * 3
RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. Это предложение. " * 3
JAPANESE = (
    "日本語のテキストです。これは文字コードの検出のためのサンプルです。東京は晴れています。" * 3
)
GREEK = "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο. Καλημέρα σας. " * 3

# (label, raw bytes, expected codec, expected text)
LABELLED = [
    ("ascii", b"Plain ASCII text.\n", "utf-8", "Plain ASCII text.\n"),
    ("utf-8", GERMAN.encode("utf-8"), "utf-8", GERMAN),
    ("utf-8 with BOM", codecs.BOM_UTF8 + GERMAN.encode("utf-8"), "utf-8", GERMAN),
    ("utf-16-le BOM", codecs.BOM_UTF16_LE + GERMAN.encode("utf-16-le"), "utf-16-le", GERMAN),
    ("utf-16-be BOM", codecs.BOM_UTF16_BE + RUSSIAN.encode("utf-16-be"), "utf-16-be", RUSSIAN),
    ("utf-32-le BOM", codecs.BOM_UTF32_LE + JAPANESE.encode("utf-32-le"), "utf-32-le", JAPANESE),
    ("utf-32-be BOM", codecs.BOM_UTF32_BE + GERMAN.encode("utf-32-be"), "utf-32-be", GERMAN),
    ("utf-16-le no BOM", GERMAN.encode("utf-16-le"), "utf-16-le", GERMAN),
    ("utf-16-be no BOM", RUSSIAN.encode("utf-16-be"), "utf-16-be", RUSSIAN),
    ("cp1252", GERMAN.encode("cp1252"), None, GERMAN),
    ("koi8-r", RUSSIAN.encode("koi8-r"), "koi8-r", RUSSIAN),
    ("windows-1251", RUSSIAN.encode("cp1251"), "cp1251", RUSSIAN),
    ("shift_jis", JAPANESE.encode("shift_jis"), None, JAPANESE),
    ("euc-jp", JAPANESE.encode("euc_jp"), None, JAPANESE),
    ("iso-2022-jp", JAPANESE.encode("iso2022_jp"), None, JAPANESE),
    ("iso-8859-7", GREEK.encode("iso8859_7"), None, GREEK),
]


@pytest.mark.parametrize(("label", "data", "codec", "text"), LABELLED, ids=[c[0] for c in LABELLED])
def test_labelled_encodings_decode_to_the_original_text(
    label: str, data: bytes, codec: str | None, text: str
) -> None:
    result = decode(data)
    assert isinstance(result, Decoded), result
    assert result.text == text
    if codec is not None:
        assert result.encoding == codec
    assert 0.0 <= result.confidence <= 1.0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reason.EMPTY),
        (b"   \n\t\r\n  ", Reason.EMPTY),
        (codecs.BOM_UTF8, Reason.EMPTY),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, Reason.BINARY),
        (b"PK\x03\x04" + bytes(range(256)) * 8, Reason.BINARY),
        (
            b"This text has a NUL \x00 byte in the middle of it, which text never has.",
            Reason.BINARY,
        ),
        (bytes(range(32)) * 20, Reason.BINARY),
        (codecs.BOM_UTF8 + b"caf\xe9 \xff\xfe invalid", Reason.UNDECODABLE),
    ],
    ids=[
        "empty",
        "whitespace",
        "bom-only",
        "png",
        "zip",
        "nul-in-text",
        "controls",
        "bad-bom-body",
    ],
)
def test_rejections(data: bytes, reason: Reason) -> None:
    result = decode(data)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert result.detail


def test_mostly_utf8_with_a_few_bad_bytes_keeps_the_text() -> None:
    data = (GERMAN * 3).encode("utf-8") + b"\xff" + b"Schluss."
    result = decode(data)
    assert isinstance(result, Decoded)
    assert result.encoding == "utf-8"
    assert result.method == "utf-8-replaced"
    assert result.text.endswith("\ufffdSchluss.")
    assert result.confidence < 1.0


def test_detection_beyond_the_prefix() -> None:
    # One non-ASCII byte after the prefix: a prefix-only guess ("ascii") cannot decode it.
    data = b"a" * 5000 + "é".encode("cp1252") + b" fin."
    result = decode(data, EncodingSettings(prefix_bytes=1024))
    assert isinstance(result, Decoded)
    assert result.text.endswith("é fin.")


def test_confidence_floor_rejects() -> None:
    result = decode(GERMAN.encode("cp1252")[:60], EncodingSettings(min_confidence=0.99))
    assert isinstance(result, Rejection)
    assert result.reason == Reason.LOW_ENCODING_CONFIDENCE


def test_bom_and_utf8_are_certain() -> None:
    result = decode(codecs.BOM_UTF8 + b"abc")
    assert isinstance(result, Decoded)
    assert (result.confidence, result.method) == (1.0, "bom")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\r\nb\rc\n", "a\nb\nc\n"),
        ("e\u0301", "\u00e9"),  # NFC
        ("tab\tstays", "tab\tstays"),
        ("bell\x07gone\x1b", "bellgone"),
        ("c1\x85line", "c1\nline"),
        ("page\x0cbreak", "page\nbreak"),
        ("zero\ufeffwidth bom", "zerowidth bom"),
        ("e\x07\u0301", "\u00e9"),  # control removed before NFC composes
        ("\u2028ls\u2029ps", "\nls\nps"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected
    assert normalize_text(expected) == expected
