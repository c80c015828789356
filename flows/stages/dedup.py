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

# Scripts written without spaces between words: each character is a unit.
_NO_SPACE = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3005\u3006\u3007"  # CJK iteration marks, ideographic zero
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # CJK Extensions B-G
)
_UNITS = re.compile(f"[{_NO_SPACE}]|[^\\W{_NO_SPACE}]+")


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
    found = units(normalised)
    if len(found) <= n:
        return [" ".join(found) if found else normalised]
    # n staggered views zipped (the shortest, the last, ends it): the windows without a
    # slice per window (2.5x faster).
    return list(map(" ".join, zip(*(found[i:] for i in range(n)), strict=False)))


def signature(text: str, params: SignatureParams = SIGNATURE) -> Signature:
    """The exact hash and the MinHash of one cleaned text."""
    from rensa import RMinHash  # the Rust extension costs nothing until a text is hashed

    normalised = normalise(text)
    minhash = RMinHash(num_perm=params.permutations, seed=params.seed)
    minhash.update(shingles(normalised, params.ngram))
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
