"""Duplicate signatures of one cleaned text: its normalised hash and its MinHash. Pure.

The shard pass calls :func:`signature` once per published document and stores the result
in the facts; the corpus step compares signatures only, never texts.

Normalisation (for both the exact hash and the shingles): NFC, case folded, every run of
whitespace collapsed to one space, leading/trailing whitespace dropped. Case is folded
because a re-posted copy often differs only in a title-cased headline or a shouted
"UPDATE"; two texts that differ only in case say the same thing.

Shingles are n-grams of *units*: a unit is a word (a run of word characters and combining
marks, so a Devanagari vowel sign or an Arabic haraka stays in its word) in scripts
written with spaces, and a single character in scripts written without them (Han, kana,
Thai, Lao, Khmer, Myanmar), where a "word" would be a whole sentence. Mixed text is
handled unit by unit, so one n-gram size serves every language (measured in
``benchmarks/bench_dedup.py``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version

import numpy as np
import numpy.typing as npt

# Scripts written without spaces between words: each character is a unit.
_NO_SPACE_RANGES = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3005, 0x3007),  # CJK iteration marks, ideographic zero
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x3134F),  # CJK Extensions B-G
)
_NO_SPACE = "".join(f"{chr(low)}-{chr(high)}" for low, high in _NO_SPACE_RANGES)


def _is_mark(char: str) -> bool:
    """A combining mark outside the unspaced scripts: part of the word it sits in (regex
    \\w leaves out Devanagari's vowel signs and virama, Arabic's harakat, ...)."""
    code = ord(char)
    return unicodedata.category(char)[0] == "M" and not any(
        low <= code <= high for low, high in _NO_SPACE_RANGES
    )


def _bmp_unit_ranges() -> list[tuple[int, int]]:
    """The BMP code point ranges of the characters that make words: letters and digits
    (``str.isalnum``, what regex \\w tests), '_' and :func:`_is_mark`, outside the
    unspaced scripts."""
    chars = np.arange(_BMP, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    word = np.fromiter(map(str.isalnum, chars), np.bool_, _BMP)
    word |= np.fromiter((c[0] == "M" for c in map(unicodedata.category, chars)), np.bool_)
    word[ord("_")] = True
    for low, high in _NO_SPACE_RANGES:
        word[low : min(high, _BMP - 1) + 1] = False
    edges = np.flatnonzero(np.diff(word.astype(np.int8), prepend=0, append=0))
    return list(zip(edges[::2].tolist(), (edges[1::2] - 1).tolist(), strict=True))


_BMP = 0x10000
_UNIT_RANGES = _bmp_unit_ranges()
# A unit: one character of an unspaced script, or a run of word characters and marks. One
# class of BMP ranges scans as fast as \\w alone (sre looks it up in a table); a class of
# astral ranges too, or a second class in an alternation, scans 2.5-5x slower, so a text
# with an astral character takes the numpy way (:func:`_by_regex`).
_UNITS = re.compile(
    f"[{_NO_SPACE}]|["
    + "".join(re.escape(chr(lo)) + "-" + re.escape(chr(hi)) for lo, hi in _UNIT_RANGES)
    + "]+"
)
# From this many characters on, the units are found by numpy (below): one regex scan costs
# less than numpy's fixed cost per call on a short text.
_NUMPY_FROM = 1_200


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """Everything that decides a document's signature; part of the per-document fingerprint,
    so changing any of it computes every signature again."""

    ngram: int = 5
    permutations: int = 112
    bands: int = 14
    rows: int = 8
    seed: int = 42
    library: str = "rensa"

    def __post_init__(self) -> None:
        if self.bands * self.rows != self.permutations:
            raise ValueError("bands x rows must equal permutations")

    def describe(self) -> dict[str, object]:
        """The parameters as recorded in the manifest and the fingerprint."""
        return {
            "normalisation": "NFC, casefold, whitespace collapsed",
            "units": "words with their combining marks; single characters in Han, kana, Thai, Lao, Khmer, Myanmar",
            "ngram": self.ngram,
            "permutations": self.permutations,
            "bands": self.bands,
            "rows": self.rows,
            "seed": self.seed,
            "library": f"{self.library} {_library_version(self.library)}",
        }


SIGNATURE = SignatureParams()


@cache
def _library_version(name: str) -> str:
    return version(name)


@dataclass(frozen=True, slots=True)
class Signature:
    norm_sha256: str  # SHA-256 of the normalised text: equal means exact duplicate
    minhash: bytes  # ``permutations`` little-endian uint32 values


def normalise(text: str) -> str:
    """The text as duplicates are compared: NFC, case folded, whitespace collapsed."""
    folded = unicodedata.normalize("NFC", text).casefold()
    # casefold can leave decomposed sequences (e.g. 'İ' -> 'i̇'); NFC again keeps it canonical.
    # str.split() splits on what regex \s matches (str.isspace): runs collapsed, edges
    # dropped, at a third of a regex substitution's cost.
    return " ".join(unicodedata.normalize("NFC", folded).split())


def units(normalised: str) -> list[str]:
    """Words, and single characters of scripts written without spaces."""
    if _by_regex(normalised, len(normalised) + 1):
        return _UNITS.findall(normalised)
    joined = _joined_units(_codes(normalised))[0]
    return joined.decode("utf-8", "surrogatepass").split(" ") if joined else []


def _by_regex(normalised: str, numpy_from: int) -> bool:
    """Whether :data:`_UNITS` finds this text's units: a short text of the BMP only."""
    return len(normalised) < numpy_from and (not normalised or max(normalised) < "\U00010000")


def shingles(normalised: str, n: int) -> list[str]:
    """The n-grams of units (a text shorter than n units is one shingle)."""
    found = _shingles(normalised, n)
    return [s if isinstance(s, str) else s.decode("utf-8", "surrogatepass") for s in found]


# In a longer text the units are found by a table lookup per code point (numpy) rather than
# by the regex scan (whose findall was a third of the facts' cost): each
# character's class bits, following the str method that the regex class \\w tests
# (``isalnum()``, or '_').
_WORD, _UNSPACED = 1, 2


def _class_table() -> npt.NDArray[np.uint8]:
    chars = np.arange(_BMP, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.where(np.fromiter(map(str.isalnum, chars), np.bool_, _BMP), _WORD, 0)
    table[ord("_")] = _WORD
    for low, high in _UNIT_RANGES:
        table[low : min(high, _BMP - 1) + 1] |= _WORD
    for low, high in _NO_SPACE_RANGES:
        table[low : min(high, _BMP - 1) + 1] |= _UNSPACED
    return table.astype(np.uint8)


_CLASSES = _class_table()


def _classes(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
    if not codes.size or int(np.maximum.reduce(codes)) < _BMP:
        return _CLASSES[codes]
    classes = _CLASSES[np.minimum(codes, _BMP - 1)]
    for i in np.flatnonzero(codes >= _BMP).tolist():  # rare: one at a time
        char = chr(int(codes[i]))
        unspaced = any(low <= ord(char) <= high for low, high in _NO_SPACE_RANGES)
        word = char.isalnum() or _is_mark(char)
        classes[i] = (_WORD if word else 0) | (_UNSPACED if unspaced else 0)
    return classes


def _codes(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")


def _joined_units(
    codes: npt.NDArray[np.uint32],
) -> tuple[bytes, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The units of a text joined by single spaces, in UTF-8, and where each unit starts and
    ends in those bytes: every n-gram of units is then one slice of them, not a join of n
    strings (rensa hashes a str as its UTF-8 bytes, so the bytes give the same MinHash)."""
    joined, starts, ends, _ = _located_units(codes)
    return joined, starts, ends


def _located_units(
    codes: npt.NDArray[np.uint32],
) -> tuple[bytes, npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """:func:`_joined_units`, and where each unit starts in ``codes``."""
    classes = _classes(codes)
    unspaced = (classes & _UNSPACED).astype(np.bool_)
    word = np.zeros(len(codes) + 2, np.bool_)
    word[1:-1] = (classes & _WORD).astype(np.bool_) & ~unspaced
    # A unit is a run of word characters, or one character of an unspaced script.
    first = np.flatnonzero((word[1:-1] & ~word[:-2]) | unspaced)
    if not len(first):
        return b"", first, first, first
    last = np.flatnonzero((word[1:-1] & ~word[2:]) | unspaced) + 1
    lengths = last - first
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    out = np.full(int(starts[-1] + lengths[-1]), ord(" "), "<u4")
    inside = np.flatnonzero(word[1:-1] | unspaced)
    out[inside + np.repeat(starts - first, lengths)] = codes[inside]
    ends = starts + lengths
    joined = out.tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogatepass")
    if len(joined) > len(out):  # not ASCII: offsets in code points become offsets in bytes
        size = 1 + (out >= 0x80).astype(np.intp) + (out >= 0x800) + (out >= _BMP)
        offsets = np.zeros(len(out) + 1, np.intp)
        np.cumsum(size, out=offsets[1:])
        starts, ends = offsets[starts], offsets[ends]
    return joined, starts, ends, first


def _shingles(normalised: str, n: int, numpy_from: int = _NUMPY_FROM) -> list[str] | list[bytes]:
    """:func:`shingles`; from ``numpy_from`` characters on as UTF-8 bytes, which rensa hashes
    as it hashes the str."""
    if _by_regex(normalised, numpy_from):
        found = _UNITS.findall(normalised)
        if len(found) <= n:
            return [" ".join(found) if found else normalised]
        # n staggered views zipped (the shortest, the last, ends it): the windows without a
        # slice per window (2.5x faster).
        return list(map(" ".join, zip(*(found[i:] for i in range(n)), strict=False)))
    joined, starts, ends = _joined_units(_codes(normalised))
    if len(starts) <= n:
        return [joined or normalised.encode("utf-8", "surrogatepass")]
    # A comprehension of slices: faster than map(getitem, map(slice, ...)) here.
    windows = zip(starts[: 1 - n].tolist(), ends[n - 1 :].tolist(), strict=True)
    return [joined[a:b] for a, b in windows]


# rensa's token hash (``calculate_hash_fast`` in its src/utils.rs, version 0.5): a
# two-lane multiply-mix over the bytes, then one multiplication and a rotation.
_SEED1, _SEED2 = np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344)
_ZERO_GUARD = np.uint64(0xA4093822299F31D0)
_K = np.uint64(0xF1357AEA2E62A9C5)
_LOW = np.uint64(0xFFFFFFFF)
_32, _26, _38, _8 = np.uint64(32), np.uint64(26), np.uint64(38), np.uint64(8)


def _multiply_mix(x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The low and high halves of the 128-bit product x * y, xor-ed (from 32-bit halves)."""
    xl, xh, yl, yh = x & _LOW, x >> _32, y & _LOW, y >> _32
    ll, lh, hl = xl * yl, xl * yh, xh * yl
    middle = (ll >> _32) + (lh & _LOW) + (hl & _LOW)
    low = (middle << _32) | (ll & _LOW)
    high = xh * yh + (lh >> _32) + (hl >> _32) + (middle >> _32)
    result: npt.NDArray[np.uint64] = low ^ high
    return result


def _token_hashes(
    data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint64]:
    """rensa's hash of each token ``data[start:end]``, for all of them at once: what it
    computes from each token's bytes when it updates a MinHash with them."""
    padded = np.frombuffer(data + bytes(16), np.uint8)
    # Little-endian words at any byte offset: unaligned, overlapping views of the bytes.
    word64 = np.ndarray((len(data) + 9,), "<u8", padded, 0, (1,))
    word32 = np.ndarray((len(data) + 13,), "<u4", padded, 0, (1,))
    lengths = ends - starts
    s0 = np.full(len(starts), _SEED1, np.uint64)
    s1 = np.full(len(starts), _SEED2, np.uint64)
    eight = np.flatnonzero((lengths >= 8) & (lengths <= 16))
    s0[eight] ^= word64[starts[eight]]
    s1[eight] ^= word64[ends[eight] - 8]
    four = np.flatnonzero((lengths >= 4) & (lengths < 8))
    s0[four] ^= word32[starts[four]].astype(np.uint64)
    s1[four] ^= word32[ends[four] - 4].astype(np.uint64)
    few = np.flatnonzero((lengths > 0) & (lengths < 4))
    s0[few] ^= padded[starts[few]].astype(np.uint64)
    s1[few] ^= (padded[ends[few] - 1].astype(np.uint64) << _8) | padded[
        starts[few] + lengths[few] // 2
    ].astype(np.uint64)
    long = np.flatnonzero(lengths > 16)
    if len(long):
        # 16 bytes a round while more than 16 are left; the longest first, so the tokens
        # still in play in a round are a prefix.
        rounds = (lengths[long] - 1) // 16
        order = np.argsort(-rounds, kind="stable")
        long, rounds = long[order], rounds[order]
        first, second = s0[long], s1[long]
        at = starts[long]
        for r in range(int(rounds[0])):
            k = int(np.count_nonzero(rounds > r))
            x = word64[at[:k] + 16 * r]
            y = word64[at[:k] + 16 * r + 8]
            mixed = _multiply_mix(first[:k] ^ x, _ZERO_GUARD ^ y)
            first[:k] = second[:k]
            second[:k] = mixed
        s0[long] = first ^ word64[ends[long] - 16]
        s1[long] = second ^ word64[ends[long] - 8]
    hashes = (_multiply_mix(s0, s1) ^ lengths.astype(np.uint64)) * _K
    result: npt.NDArray[np.uint64] = (hashes << _26) | (hashes >> _38)
    return result


@cache
def _hashes_as_rensa() -> bool:
    """Whether :func:`_token_hashes` is the installed rensa's token hash, on tokens of every
    length branch: another rensa version may hash otherwise (then each text is hashed
    alone, by rensa itself, and the signatures stay rensa's)."""
    from rensa import RMinHash

    data = "".join(map(chr, range(32, 600))).encode("utf-8") * 2
    ranges = [(start, start + size) for size in range(70) for start in (0, 3, 301)]
    expected = RMinHash.hash_token_sets([[data[a:b] for a, b in ranges]])[0]
    starts, ends = (np.array(column, np.int64) for column in zip(*ranges, strict=True))
    return bool(_token_hashes(data, starts, ends).tolist() == expected)


def signature(text: str, params: SignatureParams = SIGNATURE) -> Signature:
    """The exact hash and the MinHash of one cleaned text."""
    from rensa import RMinHash  # the Rust extension costs nothing until a text is hashed

    normalised = normalise(text)
    minhash = RMinHash(num_perm=params.permutations, seed=params.seed)
    minhash.update(_shingles(normalised, params.ngram))
    return Signature(
        norm_sha256=hashlib.sha256(normalised.encode("utf-8")).hexdigest(),
        minhash=np.asarray(minhash.digest(), dtype="<u4").tobytes(),
    )


def signatures(texts: Sequence[str], params: SignatureParams = SIGNATURE) -> list[Signature]:
    """:func:`signature` of each text, equal to it, at a fraction of the cost on long texts:
    the shingles of many texts are never made as Python objects. Their units are found in
    one pass over the texts joined by spaces (a space is in no unit, so each text's units
    are its own), each shingle is hashed in numpy exactly as rensa hashes a token's bytes
    (:func:`_token_hashes`), and rensa makes every MinHash from those hashes in one call."""
    from rensa import RMinHash

    if not _hashes_as_rensa():
        return [signature(text, params) for text in texts]
    normalised = [normalise(text) for text in texts]
    minhashes: list[bytes] = []
    for group in _groups(normalised):
        data, starts, ends, offsets = _group_shingles(group, params.ngram)
        hashes = _token_hashes(data, starts, ends)
        rows = RMinHash.digest_matrix_from_flat_token_hashes(
            hashes, offsets, params.permutations, params.seed
        ).to_rows()
        minhashes += [np.asarray(row, dtype="<u4").tobytes() for row in rows]
    return [
        Signature(hashlib.sha256(text.encode("utf-8")).hexdigest(), minhash)
        for text, minhash in zip(normalised, minhashes, strict=True)
    ]


# Texts are joined into groups of about this many characters: one numpy pass each, its
# arrays (about 40 bytes per character) bounded whatever the shard holds.
_GROUP_CHARS = 1 << 15


def _groups(texts: Sequence[str]) -> Iterator[list[str]]:
    group: list[str] = []
    size = 0
    for text in texts:
        if group and size + len(text) > _GROUP_CHARS:
            yield group
            group, size = [], 0
        group.append(text)
        size += len(text) + 1
    if group:
        yield group


def _group_shingles(
    texts: Sequence[str], n: int
) -> tuple[bytes, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """Every shingle of the (normalised) texts as a byte range of one UTF-8 buffer, and
    where each text's shingles start among them: the same shingles :func:`_shingles` makes
    (a text of at most n units is one shingle; of none, the text itself)."""
    joined, unit_starts, unit_ends, unit_firsts = _located_units(_codes(" ".join(texts)))
    # Which text each unit is in: the texts' first code points in the joined string.
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    firsts = np.cumsum(lengths + 1) - (lengths + 1)
    bounds = np.searchsorted(unit_firsts, np.append(firsts, firsts[-1] + lengths[-1] + 1))
    units = np.diff(bounds)
    windows = np.maximum(units - n + 1, 1)
    text_of = np.repeat(np.arange(len(texts)), windows)
    offsets = np.zeros(len(texts) + 1, np.uint64)
    np.cumsum(windows, out=offsets[1:])
    first = bounds[:-1][text_of] + (np.arange(len(text_of)) - offsets[:-1][text_of].astype(np.intp))
    last = np.minimum(first + n - 1, bounds[1:][text_of] - 1)
    if len(unit_starts):
        starts, ends = unit_starts[np.minimum(first, len(unit_starts) - 1)], unit_ends[last]
    else:  # no unit in any text: each range is set below
        starts, ends = np.zeros(len(first), np.intp), np.zeros(len(first), np.intp)
    empty = np.flatnonzero(units == 0)
    if len(empty):  # no unit at all: the shingle is the text itself, put after the units
        data = bytearray(joined)
        for k, position in zip(
            empty.tolist(), offsets[empty].astype(np.intp).tolist(), strict=True
        ):
            piece = texts[k].encode("utf-8", "surrogatepass")
            starts[position], ends[position] = len(data), len(data) + len(piece)
            data += piece
        joined = bytes(data)
    return joined, starts.astype(np.int64), ends.astype(np.int64), offsets


def matrix(minhashes: list[bytes], params: SignatureParams = SIGNATURE) -> np.ndarray:
    """Signatures as one (documents x permutations) uint32 matrix."""
    if not minhashes:
        return np.zeros((0, params.permutations), dtype=np.uint32)
    joined = np.frombuffer(b"".join(minhashes), dtype="<u4")
    return joined.reshape(len(minhashes), params.permutations).astype(np.uint32, copy=False)


__all__ = [
    "SIGNATURE",
    "Signature",
    "SignatureParams",
    "matrix",
    "normalise",
    "shingles",
    "signature",
    "signatures",
    "units",
]
