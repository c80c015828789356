"""Find an article's main content: the densest run of prose lines, and what lies outside it.

Every line is scored (prose scores its length in words, Japanese/Chinese counting two
characters a word, Thai, Lao, Myanmar and Khmer four; short lines cost more the longer their
run); the densest run is the article. A sentence ends with the sentence mark of any script
we detect (the Latin full stop, the danda, the Arabic and Ethiopic full stops, the
ideographic full stop, ...); Thai and Lao, which have none, are prose by
length and letters. Used by the boilerplate stage's ``outside-main-content`` heuristic. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Sequence

_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
# Scripts that space phrases, not words (Thai, Lao, Myanmar, Khmer): about four characters,
# marks included, carry one word.
_PHRASE_SPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u19e0-\u19ff]")
_PHRASE_SPACED_CHARS_PER_WORD = 4
# Thai and Lao mark no sentence end at all: a line of them is prose by length and letters
# (these ranges are their letters and marks, not their digits and symbols).
_NO_SENTENCE_PUNCT = re.compile("[\u0e01-\u0e4e\u0e81-\u0ecd\u0edc-\u0edf]")
# Combining marks belong to the word they sit in: Indic vowel signs are not ``\w``, and
# without them a Bengali word of five letters counted as three words.
_MARKS = "".join(
    ch for ch in map(chr, range(0x300, 0x10000)) if unicodedata.category(ch) in {"Mn", "Mc", "Me"}
)
_WORD = re.compile(f"\\w[\\w{re.escape(_MARKS)}]*")
_ASCII_WORD = re.compile(r"\w+", re.ASCII)
_UNSPACED_OR_PHRASE_SPACED = re.compile(_UNSPACED.pattern[:-1] + _PHRASE_SPACED.pattern[1:])
# What a sentence ends with, before closing quotes and brackets, in every script we detect:
# Latin/Cyrillic/Greek ". ! ? ; : ..." (Greek's question mark is ";" after NFC); the danda
# and double danda of Devanagari, Bengali, Gurmukhi and others; the Arabic full stop (Urdu),
# question mark, semicolon and triple dot; the Armenian full stop, question and exclamation
# marks; Hebrew sof pasuq; the CJK ideographic and full-width marks; the Ethiopic, Myanmar,
# Khmer, Tibetan, Thai (rare), Sinhala, Mongolian, Syriac, N'Ko and Vai stops; the double
# marks (U+203C, U+2047-2049).
_SENTENCE_END = frozenset(
    ".!?;:…"
    "\u0964\u0965"
    "\u06d4\u061f\u061b\u061e"
    "\u0589\u055e\u055c"
    "\u05c3"
    "。！？；：｡．"
    "\u1362\u1367\u1368"
    "\u104a\u104b"
    "\u17d4\u17d5"
    "\u0f0d\u0f0e"
    "\u0e5a\u0e5b"
    "\u0df4"
    "\u1803\u1809"
    "\u0700\u0701\u0702"
    "\u07f9"
    "\ua60e\ua60f"
    "\u203c\u2047\u2048\u2049"
)
_CLOSERS = "\"'”’»«)]}」』）】„“‘‚‹›》〉〕］｝〗〙〛*"
# Direction marks and isolates are invisible: an RTL line often ends with one after its stop.
_BIDI = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# A list item or a numbered point keeps its place next to the main content.
_LIST_ITEM = re.compile(r"(?:[-–—*•·▪●◦‣]|\d{1,3}[.)]|[a-z][.)])\s+\S", re.IGNORECASE)

# A shorter line that ends like a sentence ("That's it.", "Was tun?") stays next to the
# main content; below this many words it is a label ("Close.", "Menu:").
_SENTENCE_WORDS = 2.0
# At most this many lines without markers after a lead-in ending with a colon are its list.
_UNMARKED_ITEMS = 12
# A line is prose when it has this many words and ends like a sentence, or when it is
# long enough that it is prose whatever it ends with (paragraphs cut by the scraper).
_PROSE_WORDS = 8.0
_LONG_WORDS = 20.0
# A Thai or Lao line is prose from this many words (about 48 characters: a headline or a
# menu is shorter) when at least this share of its visible characters is in its script.
_UNPUNCTUATED_WORDS = 12.0
_UNPUNCTUATED_SHARE = 0.8
# ... and a short Thai or Lao sentence (about 24 characters and more) next to the main
# content stays with it, as a short sentence with a mark does.
_UNPUNCTUATED_SENTENCE_WORDS = 6.0
# Commas and stops inside a line, in any script (Arabic, Armenian, Ethiopic commas too).
_INNER_PUNCT = re.compile(
    "[.,;:!?、。，；：！？\u060c\u061b\u061f\u06d4\u0964\u0965\u0589\u055d"
    "\u1361\u1362\u1363\u1364\u104a\u104b\u17d4\u17d5\u17d6\u0f0d]"
)
_WORDS_PER_PUNCT = 30
# What a non-prose line costs the block: a gap of a few short lines (a subheading, a
# caption, an inline ad label) is bridged by the prose around it; a menu of dozens is not.
_SHORT_LINE_COST = 2.0
# An ``end`` marker cuts only when this share of the main content's prose lies above it:
# a "Related" box in the middle of an article must not take the second half with it.
_END_SHARE = 0.9
# What a prose line between two short lines counts (teaser lists alternate headline and
# summary; articles run paragraph after paragraph).
_ALONE_WEIGHT = 0.3
# ... on a page with at least this many short lines (menus, teasers: a scraped page).
_TEASER_PAGE = 20
# At most this many unremoved lines before or after the block are kept anyway: a headline
# and a dateline above an otherwise clean document are not boilerplate evidence.
_EDGE_ALLOWANCE = 2


def line_words(line: str) -> float:
    """Length in words; unspaced scripts count half a word per character (Han, kana) or a
    quarter (Thai, Lao, Myanmar, Khmer, which space phrases only)."""
    if line.isascii():  # most lines: no marks, no unspaced scripts, \w is [A-Za-z0-9_]
        return float(len(_ASCII_WORD.findall(line)))
    if _UNSPACED_OR_PHRASE_SPACED.search(line) is None:
        return float(len(_WORD.findall(line)))
    wide = len(_UNSPACED.findall(line))
    if wide:
        line = _UNSPACED.sub(" ", line)
    phrased = len(_PHRASE_SPACED.findall(line))
    if phrased:
        line = _PHRASE_SPACED.sub(" ", line)
    return len(_WORD.findall(line)) + wide / 2 + phrased / _PHRASE_SPACED_CHARS_PER_WORD


def ends_sentence(line: str) -> bool:
    """Ends with a sentence mark of any script (closing quotes, brackets and direction
    marks after it ignored)."""
    stripped = line.rstrip().rstrip(_BIDI + _CLOSERS + " ")
    return bool(stripped) and stripped[-1] in _SENTENCE_END


def _unpunctuated_prose(line: str, words: float, least: float = _UNPUNCTUATED_WORDS) -> bool:
    """A Thai or Lao line (no sentence marks in those scripts) long enough to be a paragraph
    (``least`` words) and made mostly of letters in its script, not a menu of digits and
    symbols."""
    if words < least:
        return False
    script = len(_NO_SENTENCE_PUNCT.findall(line))
    visible = sum(1 for ch in line if not ch.isspace())
    return script >= _UNPUNCTUATED_SHARE * visible


def prose_words(line: str) -> float:
    """The line's length in words when it reads as prose, else 0."""
    words = line_words(line)
    if words >= _PROSE_WORDS and (ends_sentence(line) or _unpunctuated_prose(line, words)):
        return words
    # A long line without sentence punctuation inside is a tag cloud or a menu flattened
    # into one line, not a paragraph the scraper cut short.
    if words >= _LONG_WORDS and len(_INNER_PUNCT.findall(line)) * _WORDS_PER_PUNCT >= words:
        return words
    return 0.0


def line_scores(words: Sequence[float]) -> list[float]:
    """Prose scores its length in words; the k-th short line in a row costs k times the base.

    The growing cost is what separates an article from the teaser lists after it: one
    subheading or caption between paragraphs is cheap, the three or four short lines
    (section, headline, "By ...", date) around every teaser are not. A prose line alone
    between short lines (a teaser under its headline) counts for less than one in a run of
    paragraphs. ``words`` are the lines' :func:`prose_words` (0 for a short line).
    """
    scores: list[float] = []
    gap = 0
    last = len(words) - 1
    # Only a page with many short lines can hold teaser lists; in a short document a
    # paragraph between two short lines is just a paragraph.
    weight = _ALONE_WEIGHT if sum(1 for count in words if count == 0) >= _TEASER_PAGE else 1.0
    for k, count in enumerate(words):
        if count > 0:
            gap = 0
            alone = (k == 0 or words[k - 1] == 0) and (k == last or words[k + 1] == 0)
            scores.append(count * weight if alone else count)
        else:
            gap += 1
            scores.append(-_SHORT_LINE_COST * gap)
    return scores


def densest_run(scores: Sequence[float]) -> tuple[int, int] | None:
    """Inclusive bounds of the maximum-sum run (longest on ties), None when nothing is positive.

    Ties go to the longer run and a run restarts only when its sum turns negative, so every
    prefix and suffix of the chosen run sums to at least zero: running it again on its own
    output chooses all of it (idempotence).
    """
    best, span = 0.0, None
    run, start = 0.0, 0
    for i, score in enumerate(scores):
        if run < 0:
            run, start = 0.0, i
        run += score
        if run > 0 and (run >= best):
            best, span = run, (start, i)
    return span


def _absorb(candidates: Sequence[int], lines: Sequence[str], lo: int, hi: int) -> tuple[int, int]:
    """Widen the block over adjacent list items, short sentences and lead-ins ending with a
    colon. One other line may sit between two list items (a link under each item)."""

    def attached(k: int) -> bool:
        return 0 <= k < len(candidates) and _attached(lines[candidates[k]])

    def item(k: int) -> bool:
        return (
            0 <= k < len(candidates) and _LIST_ITEM.match(lines[candidates[k]].strip()) is not None
        )

    while attached(lo - 1) or item(lo - 2):
        lo -= 1 if attached(lo - 1) else 2
    while True:
        if attached(hi + 1) or item(hi + 2):
            hi += 1 if attached(hi + 1) else 2
        elif _ends_with_colon(lines[candidates[hi]]):
            # A lead-in's list without markers: its items, up to the next sentence.
            items = 0
            while (
                items < _UNMARKED_ITEMS
                and hi + 1 < len(candidates)
                and not ends_sentence(lines[candidates[hi + 1]])
                and line_words(lines[candidates[hi + 1]]) >= _SENTENCE_WORDS
            ):
                hi, items = hi + 1, items + 1
            if not items:
                break
        else:
            break
    return lo, hi


def _ends_with_colon(line: str) -> bool:
    return line.rstrip().endswith((":", "："))


def _attached(line: str) -> bool:
    stripped = line.strip()
    return (
        _LIST_ITEM.match(stripped) is not None
        or stripped.endswith((":", "："))
        or (ends_sentence(stripped) and line_words(stripped) >= _SENTENCE_WORDS)
        or _unpunctuated_prose(stripped, line_words(stripped), _UNPUNCTUATED_SENTENCE_WORDS)
    )


def _main_span(
    order: Sequence[int], words: Sequence[float], named: Container[int]
) -> tuple[int, int] | None:
    """First and last line index of the densest prose run among the non-blank ``order``.

    Lines a rule removed still count as short lines: a cluster of share buttons is
    evidence of a boundary.
    """
    span = densest_run(line_scores([0.0 if i in named else words[i] for i in order]))
    return None if span is None else (order[span[0]], order[span[1]])


def article_end(
    order: Sequence[int],
    words: Sequence[float],
    ends: Container[int],
    named: Container[int],
) -> int | None:
    """Index of the first ``end`` marker (a line in ``ends``) below most (``_END_SHARE``) of
    the main content."""
    span = _main_span(order, words, named)
    if span is None:
        return None
    first, last = span
    inside = [i for i in order if first <= i <= last and i not in named]
    total = sum(words[i] for i in inside)
    for i in order:
        if i <= first or i not in ends:
            continue
        before = sum(words[k] for k in inside if k < i)
        if before >= _END_SHARE * total and any(k > i and k not in named for k in order):
            return i
    return None


def outside_main_content(
    lines: Sequence[str], order: Sequence[int], words: Sequence[float], named: Container[int]
) -> set[int]:
    """Indexes of the lines (not already ``named`` by a rule) outside the main content."""
    span = _main_span(order, words, named)
    if span is None:
        # No prose at all (a list, a poem, a table): nothing to measure the rest against.
        return set()
    candidates = [i for i in order if i not in named]
    lo, hi = _absorb(candidates, lines, candidates.index(span[0]), candidates.index(span[1]))
    outside: set[int] = set()
    for region in (candidates[:lo], candidates[hi + 1 :]):
        if len(region) > _EDGE_ALLOWANCE:
            outside.update(region)
        else:
            # Within the allowance, a short line with furniture a rule named on both sides
            # ("Share", a site's own label, "Loading") is furniture too, not a headline.
            outside.update(i for i in region if _between_named(i, order, named, words))
    return outside


def _between_named(
    i: int, order: Sequence[int], named: Container[int], words: Sequence[float]
) -> bool:
    k = order.index(i)
    return (
        words[i] == 0 and 0 < k < len(order) - 1 and order[k - 1] in named and order[k + 1] in named
    )
