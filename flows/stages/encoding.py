"""Detect the encoding of raw bytes, decode, and normalise the text.

Order of evidence, most certain first:

1. a byte-order mark (UTF-32 before UTF-16: ``FF FE 00 00`` starts with the UTF-16-LE BOM);
2. strict UTF-8, but only when the bytes hold no NUL and no ESC: BOM-less UTF-16/32 is
   NUL-interleaved *valid* UTF-8, and ISO-2022-JP/KR is 7-bit, so a naive UTF-8-first
   check accepts both and publishes garbage;
3. chardet (>= 7) on a bounded prefix; when that guess cannot decode the whole file (a
   748 kB MacRoman file in chardet's corpus has its only non-ASCII byte at offset 53,264),
   chardet again on the whole input; also when the prefix held fewer than 64 non-ASCII
   bytes and the rest of the file holds some (chardet's corpus has a windows-1252 page
   whose first 64 KiB hold 6 non-ASCII bytes: the prefix alone says ISO-8859-15).

Then, on the decoded text: mojibake repair (UTF-8 that was once read as cp1252/latin-1 and
saved again, "FÃ¼r", "â€œ") by ftfy, line by line, only where ftfy's badness heuristic
fires, the fix decodes to UTF-8 and the repaired line has no badness left; every kind of
fix is recorded (``Decoded.repairs``). C1 controls that stand for cp1252 punctuation
(U+0092 for a right single quote) become that punctuation (``fix_c1_controls``). Measured on 226,032 correct lines in 75 languages:
116 lines changed, every one of them mojibake already present in that data; no false repair.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

import chardet
import ftfy
from ftfy.badness import badness, is_bad
from ftfy.chardata import CHARMAP_ENCODINGS

from flows.models import parameter_default
from flows.stages.types import Reason, Rejection, Stage

# UTF-32 BOMs first: the UTF-32-LE BOM begins with the UTF-16-LE one.
BOMS: tuple[tuple[bytes, str], ...] = (
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
# Category Cc is exactly U+0000-001F and U+007F-009F; these are the non-whitespace ones.
_NON_SPACE_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# Every character _LINE_BREAKS, _CONTROLS, _NON_SPACE_CONTROLS or _C1_PUNCTUATION matches.
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# surrogateescape turns each byte that is not valid UTF-8 into one of these.
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")
_VALID_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")
_ASCII_BYTES = bytes(range(128))
# Fewer non-ASCII bytes than this in the prefix is too little evidence to pick a legacy
# code page for the rest of the file (chardet tells the Latin code pages apart by them).
_MIN_PREFIX_EVIDENCE = 64


def _mojibake_gate() -> re.Pattern[str]:
    """Two characters that could be a UTF-8 lead byte and a continuation byte as ftfy's
    single-byte codecs show them. Every mojibake ftfy can undo holds such a pair; its own
    badness regex is ~1 MB/s, this one runs at C speed and lets clean text skip it."""
    import ftfy.bad_codecs  # noqa: F401 - registers the sloppy-windows-* codecs

    lead: set[str] = set()
    cont: set[str] = set()
    for name in CHARMAP_ENCODINGS:
        lead.update(bytes(range(0xC0, 0xF5)).decode(name, errors="ignore"))
        cont.update(bytes(range(0x80, 0xC0)).decode(name, errors="ignore"))

    def char_class(chars: set[str]) -> str:
        return "[" + "".join(re.escape(ch) for ch in sorted(chars)) + "]"

    return re.compile(char_class(lead) + char_class(cont))


_MOJIBAKE_GATE = _mojibake_gate()
# ftfy steps that only ever serve a decode to UTF-8.
_UTF8_TRANSCODES = frozenset(
    {"restore_byte_a0", "replace_lossy_sequences", "decode_inconsistent_utf8"}
)
# ftfy's encoding fixes only: its other fixes (curly quotes, full-width letters,
# ligatures, HTML entities, terminal escapes) would change correct text.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    remove_control_chars=False,
    fix_c1_controls=False,
    normalization=None,
    explain=True,
)


@dataclass(frozen=True, slots=True)
class EncodingSettings:
    """Knobs of the encoding stage; defaults are RunParameters' (where they are justified)."""

    prefix_bytes: int = parameter_default("encoding_prefix_bytes")
    min_confidence: float = parameter_default("min_encoding_confidence")
    flag_confidence: float = parameter_default("encoding_flag_confidence")
    repair_mojibake: bool = parameter_default("repair_mojibake")


@dataclass(frozen=True, slots=True)
class Decoded:
    """Normalised text and what was learnt on the way."""

    text: str
    encoding: str  # Python codec name, e.g. "utf-8", "cp1252", "utf-16-le"
    confidence: float  # 1.0 for a BOM or valid UTF-8, chardet's confidence otherwise
    method: str  # "bom", "utf-8", "utf-8-replaced", "chardet", "chardet-full"
    low_confidence: bool = False  # a chardet guess below ``flag_confidence``
    repairs: tuple[str, ...] = ()  # mojibake fixes applied, e.g. "sloppy-windows-1252>utf-8"


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
    for bom, encoding in BOMS:
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
    # A legacy file fails the test in its first 4 KiB already: only the survivors pay for
    # counting the whole file (this test runs on every file that is not strict UTF-8).
    for sample in (data[:4096], data) if len(data) > 4096 else (data,):
        text = sample.decode("utf-8", errors="surrogateescape")
        invalid = len(_ESCAPED_BYTES.findall(text))
        valid = len(_VALID_NON_ASCII.findall(text))
        # A sample cut inside a character ends in up to 3 escaped bytes: not evidence.
        if valid < 10 * max(invalid - (3 if sample is not data else 0), 0):
            return None
    if invalid == 0:
        return None
    return _ESCAPED_BYTES.sub("\ufffd", text), valid / (valid + invalid)


def _detect(data: bytes, max_bytes: int) -> tuple[str | None, float, str | None]:
    # chardet's own (5.x-compatible) names, then Python's codec for them. Measured on the
    # labelled corpus (benchmarks/bench_encoding.py): ``prefer_superset`` turns ISO-8859-5
    # into cp1251 and ISO-8859-2 into cp1250 (31 + 7 files garbled), and ``compat_names=False``
    # names shift_jis_2004 / euc_jis_2004, whose tables turn every "~" into an overline.
    # The superset remap is not needed here anyway: a guess that cannot decode the whole
    # file sends it back to chardet with every byte.
    guess = chardet.detect(data, max_bytes=max_bytes, prefer_superset=False)
    encoding = guess["encoding"]
    return (
        codec_name(encoding) if encoding else None,
        float(guess["confidence"] or 0.0),
        guess.get("mime_type"),
    )


def _control_share(text: str) -> float:
    if not text:
        return 0.0
    return len(_NON_SPACE_CONTROLS.findall(text)) / len(text)


def _non_ascii(data: bytes) -> int:
    return len(data.translate(None, _ASCII_BYTES))


def _fix_names(steps: list[tuple[str, str]]) -> list[str]:
    """ftfy's steps as names: an encode/decode pair is "<wrongly read as>><real codec>"."""
    names: list[str] = []
    pending: str | None = None
    for action, parameter in steps:
        if action == "encode":
            pending = parameter
        elif action == "decode" and pending is not None:
            names.append(f"{pending}>{parameter}")
            pending = None
        elif action != "decode":
            names.append(parameter)
    return names


def _is_utf8_fix(name: str) -> bool:
    return ">utf-8" in name or name in _UTF8_TRANSCODES


def repair_mojibake(text: str) -> tuple[str, tuple[str, ...]]:
    """Undo mojibake line by line; return the text and the distinct fixes applied.

    A line is touched only when ftfy's badness heuristic fires on it and the repaired line
    has no badness left: a partial repair is not a certain one, so such lines stay as they
    were. Measured on the 226,032 lines of the language corpus (benchmarks/bench_encoding.py)
    it changes 116, each of them mojibake already present in that data, and no other.
    """
    if text.isascii() or not _MOJIBAKE_GATE.search(text):
        return text, ()
    out: list[str] = []
    fixes: dict[str, None] = {}
    changed = False
    for line in text.splitlines(keepends=True):
        if line.isascii() or not _MOJIBAKE_GATE.search(line) or not is_bad(line):
            out.append(line)
            continue
        fixed = ftfy.fix_and_explain(line, _FTFY_CONFIG)
        names = _fix_names([(step.action, step.parameter) for step in fixed.explanation or ()])
        # Only fixes that decode to UTF-8 undo mojibake; ftfy's other guesses (C1 controls
        # read as cp1252, latin-1 -> cp1252) change legacy text that was decoded right:
        # measured, they garbled TIS-620 and EBCDIC files of the labelled corpus.
        if (
            fixed.text == line
            or badness(fixed.text) > 0
            or not names
            or not all(_is_utf8_fix(name) for name in names)
        ):
            out.append(line)
            continue
        out.append(fixed.text)
        changed = True
        fixes.update(dict.fromkeys(names))
    return ("".join(out) if changed else text), tuple(fixes)


# C1 controls left in decoded text are cp1252 bytes that a latin-1 reader (or a UTF-8 writer
# after one) kept as code points: U+0092 is the "\u2019" of "d\u2019Agriculture". Deleting them
# glues words together; cp1252 gives them back. U+0085 is not among them: it is NEL, the
# line break of EBCDIC text, and stays a line break.
_C1_PUNCTUATION = re.compile("[\x80-\x84\x86-\x9f]")
# Codecs whose text can hold C1 code points that stand for cp1252 characters; a legacy
# 8-bit codec (EBCDIC, KOI8, Mac) that yields one means a control, not punctuation.
_C1_REPAIRABLE = frozenset(
    {"iso8859-1", "utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"}
)
C1_REPAIR = "fix_c1_controls"  # ftfy's name for the fix, as recorded in ``repairs``


def repair_c1_controls(text: str) -> tuple[str, bool]:
    """C1 controls as the cp1252 characters they stand for (ftfy's ``fix_c1_controls``);
    the five bytes cp1252 leaves undefined stay controls (and are removed later)."""
    if not _C1_PUNCTUATION.search(text):
        return text, False

    def one(match: re.Match[str]) -> str:
        try:
            return match.group().encode("latin-1").decode("cp1252")
        except UnicodeDecodeError:
            return match.group()

    fixed = _C1_PUNCTUATION.sub(one, text)
    return fixed, fixed != text


# Blocks real text is written in. Bytes that are not text, read as UTF-16, land in them only
# about half the time (the CJK and Hangul blocks are large), so a 97 % share is strong
# evidence; reading real UTF-16 in the wrong byte order lands in private-use, Yi and CJK
# extension blocks instead.
_TEXT_BLOCKS = re.compile(
    "[\t\n\r\x20-\x7e\u00a0-\u024f\u0370-\u052f\u0590-\u06ff\u0900-\u0dff\u0e00-\u0e7f"
    "\u2000-\u206f\u3000-\u30ff\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]"
)
_MIN_TEXT_SHARE = 0.97
_MIN_WIDE_CHARS = 16


def _bomless_utf16(data: bytes) -> tuple[str, str, float] | None:
    """(codec, text, share) when the bytes read as BOM-less UTF-16 give text in known scripts.

    chardet recognises BOM-less UTF-16 by its NUL bytes, which only Latin-script text has;
    Japanese or Chinese UTF-16 has none, and chardet calls it binary.
    """
    if len(data) % 2 or len(data) < 2 * _MIN_WIDE_CHARS:
        return None
    best: tuple[str, str, float] | None = None
    for codec in ("utf-16-le", "utf-16-be"):
        text = _strict_decode(data, codec)
        if not text:
            continue
        share = len(_TEXT_BLOCKS.findall(text)) / len(text)
        if share >= _MIN_TEXT_SHARE and (best is None or share > best[2]):
            best = (codec, text, share)
    return best


def _finish(
    text: str,
    encoding: str,
    confidence: float,
    method: str,
    settings: EncodingSettings,
) -> Decoded | Rejection:
    # A NUL never occurs in real text; a file that decodes with NULs inside is binary
    # or corrupted, and dropping them silently would hide that.
    if "\x00" in text:
        return Rejection(
            Stage.ENCODING, Reason.BINARY, f"decoded as {encoding} but contains NUL characters"
        )
    # Before the control check and normalisation: UTF-8 read as latin-1 holds C1 controls
    # ("â\x80\x9c" for "“") that ftfy needs to repair it and that would count as binary.
    repairs: tuple[str, ...] = ()
    if settings.repair_mojibake:
        text, repairs = repair_mojibake(text)
    # Nearly every text holds no control, C1 code point or line break other than "\n":
    # one scan then stands for the four below (C1 repair, control share, both substitutions).
    plain = _SPECIAL.search(text) is None
    if settings.repair_mojibake and not plain and codec_name(encoding) in _C1_REPAIRABLE:
        text, c1 = repair_c1_controls(text)
        repairs += (C1_REPAIR,) if c1 else ()
    share = 0.0 if plain else _control_share(text)
    if share > _MAX_CONTROL_SHARE:
        return Rejection(
            Stage.ENCODING,
            Reason.BINARY,
            f"decoded as {encoding} but {share:.1%} of characters are control characters",
        )
    normalized = unicodedata.normalize("NFC", text) if plain else normalize_text(text)
    if not normalized.strip():
        return Rejection(Stage.ENCODING, Reason.EMPTY, "no visible characters after decoding")
    low = method.startswith("chardet") and confidence < settings.flag_confidence
    return Decoded(normalized, encoding, round(confidence, 4), method, low, repairs)


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
        return _finish(text, bom_codec, 1.0, "bom", settings)

    if b"\x00" not in data and b"\x1b" not in data:
        text = _strict_decode(data, "utf-8")
        if text is not None:
            return _finish(text, "utf-8", 1.0, "utf-8", settings)
        mended = _mostly_utf8(data)
        if mended is not None:
            return _finish(mended[0], "utf-8", mended[1], "utf-8-replaced", settings)

    guess, confidence, mime = _detect(data, settings.prefix_bytes)
    method = "chardet"
    if guess is None:
        wide = _bomless_utf16(data)
        if wide is not None:
            return _finish(wide[1], wide[0], wide[2], "utf-16-script", settings)
        return Rejection(Stage.ENCODING, Reason.BINARY, f"not text (looks like {mime or 'binary'})")
    encoding: str = guess
    text = _strict_decode(data, encoding)
    if len(data) > settings.prefix_bytes and (
        text is None
        or (
            _non_ascii(data[: settings.prefix_bytes]) < _MIN_PREFIX_EVIDENCE
            and _non_ascii(data[settings.prefix_bytes :]) > 0
        )
    ):
        # The prefix was not representative (its guess cannot decode the rest) or held too
        # little evidence: look at everything.
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
    return _finish(text, encoding, confidence, method, settings)
