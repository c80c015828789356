"""Duplicate signatures of one cleaned text: its normalised hash and its MinHash. Pure.

The shard pass calls :func:`signature` once per published document and stores the result
in the facts; the corpus step compares signatures only, never texts.

Normalisation (for both the exact hash and the shingles): NFC, case folded, every run of
whitespace collapsed to one space, leading/trailing whitespace dropped. Case is folded
because a re-posted copy often differs only in a title-cased headline or a shouted
"UPDATE"; two texts that differ only in case say the same thing.

Shingles are n-grams of *units*: a unit is a word (a run of word characters) in scripts
written with spaces, and a single character in scripts written without them (Han, kana,
Thai, Lao, Khmer, Myanmar), where a "word" would be a whole sentence. Mixed text is
handled unit by unit, so one n-gram size serves every language (measured in
``benchmarks/bench_dedup.py``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
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
_UNITS = re.compile(f"[{_NO_SPACE}]|[^\\W{_NO_SPACE}]+")
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
            "units": "words; single characters in Han, kana, Thai, Lao, Khmer, Myanmar",
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
    return _UNITS.findall(normalised)


def shingles(normalised: str, n: int) -> list[str]:
    """The n-grams of units (a text shorter than n units is one shingle)."""
    found = _shingles(normalised, n)
    return [s if isinstance(s, str) else s.decode("utf-8", "surrogatepass") for s in found]


# In a longer text the units are found by a table lookup per code point (numpy) rather than
# by the regex scan (whose findall was a third of the facts' cost): each
# character's class bits, following the str method that the regex class \\w tests
# (``isalnum()``, or '_').
_WORD, _UNSPACED = 1, 2
_BMP = 0x10000


def _class_table() -> npt.NDArray[np.uint8]:
    chars = np.arange(_BMP, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.where(np.fromiter(map(str.isalnum, chars), np.bool_, _BMP), _WORD, 0)
    table[ord("_")] = _WORD
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
        classes[i] = (_WORD if char.isalnum() else 0) | (_UNSPACED if unspaced else 0)
    return classes


def _codes(text: str) -> npt.NDArray[np.uint32]:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")


def _joined_units(
    codes: npt.NDArray[np.uint32],
) -> tuple[bytes, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The units of a text joined by single spaces, in UTF-8, and where each unit starts and
    ends in those bytes: every n-gram of units is then one slice of them, not a join of n
    strings (rensa hashes a str as its UTF-8 bytes, so the bytes give the same MinHash)."""
    classes = _classes(codes)
    unspaced = (classes & _UNSPACED).astype(np.bool_)
    word = np.zeros(len(codes) + 2, np.bool_)
    word[1:-1] = (classes & _WORD).astype(np.bool_) & ~unspaced
    # A unit is a run of word characters, or one character of an unspaced script.
    first = np.flatnonzero((word[1:-1] & ~word[:-2]) | unspaced)
    if not len(first):
        return b"", first, first
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
    return joined, starts, ends


def _shingles(normalised: str, n: int, numpy_from: int = _NUMPY_FROM) -> list[str] | list[bytes]:
    """:func:`shingles`; from ``numpy_from`` characters on as UTF-8 bytes, which rensa hashes
    as it hashes the str."""
    if len(normalised) < numpy_from:
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
    "units",
]
