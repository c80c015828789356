"""Stage 1: detect the encoding of raw bytes, decode, and normalise the text.

Order of evidence, most certain first:

1. a byte-order mark (UTF-32 before UTF-16: ``FF FE 00 00`` starts with the UTF-16-LE BOM);
2. strict UTF-8, but only when the bytes hold no NUL and no ESC: BOM-less UTF-16/32 is
   NUL-interleaved *valid* UTF-8, and ISO-2022-JP/KR is 7-bit, so a naive UTF-8-first
   check accepts both and publishes garbage;
3. chardet (>= 7) on a bounded prefix; when that guess cannot decode the whole file (a
   748 kB MacRoman file in chardet's corpus has its only non-ASCII byte at offset 53,264),
   chardet again on the whole input.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

import chardet

from flows.stages.types import Reason, Rejection, Stage

# UTF-32 BOMs first: the UTF-32-LE BOM begins with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Every line break Unicode knows becomes "\n"; \v and \f are page/line breaks in text files,
# so they become line breaks rather than vanish and glue two words together.
_LINE_BREAKS = re.compile("\r\n|[\r\u0085\u2028\u2029\x0b\x0c]")
# C0/C1 controls except \t and \n, DEL, and U+FEFF (a BOM that survived inside the text).
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff]")
# Controls that are not whitespace: more than this share of them means "not text".
_MAX_CONTROL_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class EncodingSettings:
    """Knobs of the encoding stage (copied from the run parameters)."""

    prefix_bytes: int = 65_536
    min_confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Decoded:
    """Normalised text and what was learnt on the way."""

    text: str
    encoding: str  # Python codec name, e.g. "utf-8", "cp1252", "utf-16-le"
    confidence: float  # 1.0 for a BOM or valid UTF-8, chardet's confidence otherwise
    method: str  # "bom", "utf-8", "utf-8-replaced", "chardet", "chardet-full"


def normalize_text(text: str) -> str:
    """NFC, ``\\n`` line endings, no control characters but ``\\n`` and ``\\t``. Idempotent.

    Controls go before NFC: removing one between a base letter and a combining mark lets
    the two compose, and composing first would leave the result not in NFC.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _CONTROLS.sub("", text)
    return unicodedata.normalize("NFC", text)


def codec_name(label: str) -> str:
    """The canonical Python codec name for any alias chardet or a BOM gives."""
    return codecs.lookup(label).name


def _from_bom(data: bytes) -> tuple[str, bytes] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, data[len(bom) :]
    return None


def _strict_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding, errors="strict")
    except (UnicodeDecodeError, LookupError):
        return None


def _mostly_utf8(data: bytes) -> tuple[str, float] | None:
    """UTF-8 with a few invalid bytes (a truncated or spliced scrape): U+FFFD for those.

    Only when valid multi-byte sequences outnumber the invalid bytes ten to one; a legacy
    8-bit file has almost no valid multi-byte sequences, so it still goes to chardet instead
    of being turned into replacement characters.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    invalid = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    valid = sum(1 for ch in text if ord(ch) > 0x7F) - invalid
    if invalid == 0 or valid < 10 * invalid:
        return None
    mended = "".join("\ufffd" if "\udc80" <= ch <= "\udcff" else ch for ch in text)
    return mended, valid / (valid + invalid)


def _detect(data: bytes, max_bytes: int) -> tuple[str | None, float, str | None]:
    guess = chardet.detect(data, max_bytes=max_bytes, compat_names=False, prefer_superset=True)
    encoding = guess["encoding"]
    return (
        codec_name(encoding) if encoding else None,
        float(guess["confidence"] or 0.0),
        guess.get("mime_type"),
    )


def _control_share(text: str) -> float:
    if not text:
        return 0.0
    controls = sum(
        1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\x0b\x0c"
    )
    return controls / len(text)


def _finish(text: str, encoding: str, confidence: float, method: str) -> Decoded | Rejection:
    # A NUL never occurs in real text; a file that decodes with NULs inside is binary
    # or corrupted, and dropping them silently would hide that.
    if "\x00" in text:
        return Rejection(
            Stage.ENCODING, Reason.BINARY, f"decoded as {encoding} but contains NUL characters"
        )
    share = _control_share(text)
    if share > _MAX_CONTROL_SHARE:
        return Rejection(
            Stage.ENCODING,
            Reason.BINARY,
            f"decoded as {encoding} but {share:.1%} of characters are control characters",
        )
    normalized = normalize_text(text)
    if not normalized.strip():
        return Rejection(Stage.ENCODING, Reason.EMPTY, "no visible characters after decoding")
    return Decoded(normalized, encoding, round(confidence, 4), method)


def decode(data: bytes, settings: EncodingSettings | None = None) -> Decoded | Rejection:
    """Decode raw document bytes into normalised text, or say why that is impossible."""
    settings = settings or EncodingSettings()
    if not data:
        return Rejection(Stage.ENCODING, Reason.EMPTY, "file is empty (0 bytes)")

    bom = _from_bom(data)
    if bom is not None:
        bom_codec, body = bom
        text = _strict_decode(body, bom_codec)
        if text is None:
            return Rejection(
                Stage.ENCODING, Reason.UNDECODABLE, f"{bom_codec} byte-order mark, invalid body"
            )
        return _finish(text, bom_codec, 1.0, "bom")

    if b"\x00" not in data and b"\x1b" not in data:
        text = _strict_decode(data, "utf-8")
        if text is not None:
            return _finish(text, "utf-8", 1.0, "utf-8")
        mended = _mostly_utf8(data)
        if mended is not None:
            return _finish(mended[0], "utf-8", mended[1], "utf-8-replaced")

    guess, confidence, mime = _detect(data, settings.prefix_bytes)
    method = "chardet"
    if guess is None:
        return Rejection(Stage.ENCODING, Reason.BINARY, f"not text (looks like {mime or 'binary'})")
    encoding: str = guess
    text = _strict_decode(data, encoding)
    if text is None and len(data) > settings.prefix_bytes:
        # The prefix was not representative: look at everything before giving up.
        guess, confidence, mime = _detect(data, len(data))
        method = "chardet-full"
        if guess is None:
            return Rejection(
                Stage.ENCODING, Reason.BINARY, f"not text (looks like {mime or 'binary'})"
            )
        encoding = guess
        text = _strict_decode(data, encoding)
    if text is None:
        return Rejection(
            Stage.ENCODING,
            Reason.UNDECODABLE,
            f"best guess {encoding} (confidence {confidence:.2f}) cannot decode the file",
        )
    if confidence < settings.min_confidence:
        return Rejection(
            Stage.ENCODING,
            Reason.LOW_ENCODING_CONFIDENCE,
            f"best guess {encoding} has confidence {confidence:.2f} "
            f"< {settings.min_confidence:.2f}",
        )
    return _finish(text, encoding, confidence, method)
