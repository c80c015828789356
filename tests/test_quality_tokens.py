"""The quality signals' numpy word counting against plain regex and Counter counting."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.stages import quality
from flows.stages.quality import QualitySignals, quality_signals

_NO_SPACE = "".join(
    f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in quality._NO_SPACE_RANGES
)
_MARKS = "".join(re.escape(chr(c)) for c in sorted(quality._MARK_CODES))
# The definition the numpy code follows: str.split(), and where a script without spaces
# appears, one token per character (marks kept with it) between runs of other characters.
_TOKEN = re.compile(f"[{_NO_SPACE}][{_MARKS}]*|[^\\s{_NO_SPACE}]+")
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")


def _reference(text: str) -> dict[str, object]:
    """The word signals counted the obvious way: regex tokens, string n-grams in a Counter."""
    has_no_space = _NO_SPACE_CHAR.search(text) is not None
    tokens = _TOKEN.findall(text) if has_no_space else text.split()
    characters = 2 * len(_NO_SPACE_CHAR.findall(text)) > len(tokens)
    words = [t for t in tokens if re.search(r"[^\W_]", t)]
    lettered = sum(1 for t in words if re.search(r"[^\W\d_]", t))
    letters = sum(len(re.findall(r"\w", t)) for t in words)
    separator = 0 if characters else 1
    tops = []
    for n in (2, 3, 4):
        grams = Counter(zip(*(words[i:] for i in range(n)), strict=False))
        if not grams:
            tops.append(0.0)
            continue
        gram, count = grams.most_common(1)[0]
        chars = (sum(map(len, gram)) + separator * (n - 1)) * count
        tops.append(chars / len(text))
    ratio = len(tokens) or 1
    return {
        "segmentation": "characters" if characters else "words",
        "word_count": len(words),
        "mean_word_length": None if characters or not words else letters / len(words),
        "alpha_words": lettered / ratio if tokens else 0.0,
        "newline_word_ratio": text.count("\n") / ratio if tokens else 0.0,
        "top_2gram_chars": tops[0],
        "top_3gram_chars": tops[1],
        "top_4gram_chars": tops[2],
    }


def _word_signals(signals: QualitySignals) -> dict[str, object]:
    return {name: getattr(signals, name) for name in _reference("")}


# Pieces hypothesis strings together: words with punctuation glued on, tokens of symbols,
# digits and underscores only, Thai with its marks, Han and kana, astral characters (an
# emoji, a Han character beyond the BMP, a mathematical letter), and spaces of every kind.
PIECES = [
    "the",
    "cat",
    "The",
    "dog.",
    "«quoted»",
    "e-mail",
    "C++",
    "2024",
    "1_000",
    "_",
    "__init__",
    "-",
    "—",
    "...",
    "…",
    "#tag",
    "#",
    "½",
    "²",
    "١٢٣",
    "İstanbul",
    "ß",
    "x",
    "a",
    "b",
    "ภาษา",
    "ไทย",
    "ก\u0e31\u0e49",
    "\u0e31",
    "日本語",
    "の",
    "東京",
    "。",
    "！",
    "・",
    "😀",
    "\U00020000",
    "\U0001d518",
    "ǅ",
    " ",
    " ",
    " ",
    "\n",
    "\n\n",
    "\t",
    "\u3000",
    "\u00a0",
    "\u2028",
    "\x1c",
    "\u0085",
    "\u200b",
    "\r\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_numpy_word_signals_equal_regex_and_counter_ones(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _word_signals(quality_signals(text)) == _reference(text)


def test_class_table_matches_the_str_methods_for_every_bmp_character() -> None:
    table = quality._CLASSES
    slow = quality._char_class.__wrapped__
    assert [int(table[code]) for code in range(0x10000)] == [slow(code) for code in range(0x10000)]


TEXTS = [
    "the cat sat on the mat. the cat sat on the mat again.\nthe cat sat.",
    "東京の天気は晴れです。東京の天気は晴れです。明日も晴れ。",
    "ภาษาไทย ภาษาไทย ก\u0e31\u0e49 😀 😀 x_y x_y",
]


@pytest.mark.parametrize("text", TEXTS)
def test_two_words_with_one_hash_fall_back_to_ids_from_the_words(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = quality_signals(text)
    monkeypatch.setattr(quality, "_same_words", lambda *_: False)
    assert quality_signals(text) == expected


def test_same_words_sees_a_different_word_behind_an_equal_hash() -> None:
    text = "abc abd abc"
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    classes = quality._classes(codes)
    tokens = quality._Tokens.of(classes, int(np.bitwise_or.reduce(classes)))
    words = quality._Words.of(tokens, codes, classes)
    assert quality._same_words(codes, words, np.array([0, 1, 0]))
    assert not quality._same_words(codes, words, np.array([0, 0, 0]))


def test_keys_too_large_to_pack_are_sorted_the_same_way() -> None:
    keys = np.array([5, 3, 5, 3, 7, 3], np.int64)
    packed = quality._top(keys)
    unpacked = quality._top(keys + (1 << 61))
    assert packed[:2] == unpacked[:2] == (1, 3)
