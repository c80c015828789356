"""Stage 3: remove scrape leftovers line by line, and say what was removed and why.

Rules are data (TOML files validated by :class:`flows.models.RuleFile`), never code. A rule
matches a whole line, either by phrase (case-insensitive, surrounding punctuation ignored)
or by a regular expression that must match the entire stripped line. Two safeguards keep
real content:

* every rule has ``max_chars``: a line longer than that is never touched by it, so prose
  paragraphs cannot be caught by a short phrase;
* ``position = "edge"`` rules (menus, "Loading", "Home") only fire in the leading or
  trailing run of boilerplate lines; the same words inside the article stay.

Beyond rules, the main-content heuristic (``outside-main-content``) finds the densest run
of prose lines and removes what lies before and after it; ``position = "end"`` rules
("Related articles", "Comments") cut the article's tail from their line on, once most of
the main content lies before them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from flows.stages.types import Reason, Rejection, Stage

Position = Literal["any", "edge", "end"]

# Punctuation and symbols that decorate boilerplate ("Loading…", "» Home", "Share |").
_DECORATION = "".join(
    ch
    for ch in map(chr, range(0x20, 0x3000))
    if unicodedata.category(ch)[0] in {"P", "S", "Z"} and ch not in "#@&+%$€£¥©"
)
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def phrase_key(line: str) -> str:
    """The form a line and a phrase are compared in: casefolded, single-spaced, undecorated."""
    return _SPACES.sub(" ", line.strip().strip(_DECORATION).casefold())


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled boilerplate rule."""

    name: str
    position: Position
    max_chars: int
    phrases: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None

    def matches(self, line: str) -> bool:
        stripped = line.strip()
        return bool(stripped) and self.matches_stripped(stripped, phrase_key(stripped))

    def matches_stripped(self, stripped: str, key: str) -> bool:
        """``matches`` for a line already stripped and keyed (done once per line, not per rule)."""
        if len(stripped) > self.max_chars:
            return False
        if self.phrases and key in self.phrases:
            return True
        return self.pattern is not None and self.pattern.fullmatch(stripped) is not None


# Names of the built-in heuristics (not phrase rules: they weigh a line's length,
# punctuation, script and position). They are recorded in ``removed`` like rule names and
# can be switched off by name with ``disabled_rules``.
OUTSIDE_MAIN_CONTENT = "outside-main-content"
HEURISTICS = frozenset({OUTSIDE_MAIN_CONTENT})


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules in the order they are tried; the first rule that matches a line names it."""

    rules: tuple[Rule, ...]
    heuristics: frozenset[str] = HEURISTICS
    # No rule may touch a line longer than this: most prose lines skip every rule.
    longest: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "longest", max((rule.max_chars for rule in self.rules), default=0))

    def first_match(self, line: str) -> Rule | None:
        stripped = line.strip()
        if not stripped or len(stripped) > self.longest:
            return None
        key = phrase_key(stripped)
        for rule in self.rules:
            if rule.matches_stripped(stripped, key):
                return rule
        return None

    def names(self) -> frozenset[str]:
        return frozenset(rule.name for rule in self.rules) | self.heuristics

    def without(self, names: Iterable[str]) -> RuleSet:
        drop = set(names)
        return RuleSet(
            tuple(rule for rule in self.rules if rule.name not in drop), self.heuristics - drop
        )

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + other.rules, self.heuristics & other.heuristics)


@dataclass(frozen=True, slots=True)
class RemovedLine:
    """A line taken out of the text: 1-based line number in the decoded text."""

    rule: str
    text: str
    line: int


@dataclass(frozen=True, slots=True)
class Cleaned:
    """The cleaned text and every line removed from it."""

    text: str
    removed: tuple[RemovedLine, ...] = field(default_factory=tuple)
    # The headline-like line just above the main content, when the heuristic removed it
    # (a page's title sits among the navigation it is cut with).
    headline: str | None = None


def compile_rule(
    name: str,
    position: Position,
    max_chars: int,
    phrases: Sequence[str] = (),
    pattern: str | None = None,
) -> Rule:
    """Build a :class:`Rule`; a pattern is case-insensitive unless it says otherwise."""
    return Rule(
        name=name,
        position=position,
        max_chars=max_chars,
        phrases=frozenset(phrase_key(p) for p in phrases if phrase_key(p)),
        pattern=re.compile(pattern, re.IGNORECASE) if pattern else None,
    )


def _edge_lines(
    lines: Sequence[str], hits: Sequence[Rule | None], skip: Container[int] = ()
) -> set[int]:
    """Indexes in the leading and trailing runs made only of blank, ``skip`` and matching
    lines."""
    edge: set[int] = set()
    for order in (range(len(lines)), range(len(lines) - 1, -1, -1)):
        for i in order:
            if not lines[i].strip() or i in skip:
                continue
            if hits[i] is None:
                break
            edge.add(i)
    return edge


# --- The main-content block -------------------------------------------------------------
#
# A scraped page is a run of article prose with short lines around it: menus, teasers,
# bylines, share buttons, footers. Each line gets a score: a prose line (long, or a full
# sentence) scores its length in words, any other line a penalty that grows along a run of
# short lines. The run of lines with the highest total (maximum subarray) is the main
# content; short lines inside it (subheadings, list items, short quotes) stay, and so do
# list items, short sentences and a colon's list right next to it; lines outside it go.
# Headings and list items therefore survive by position, not by looking like prose. The
# evidence is length, punctuation and position; scripts without spaces (Japanese, Chinese)
# are measured in characters, so the same thresholds hold there.

# Scripts written without spaces (Han, kana): one character carries about half a word.
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_WORD = re.compile(r"\w+")
# What a sentence ends with, before closing quotes and brackets.
_SENTENCE_END = frozenset(".!?;:…。！？；：")
_CLOSERS = "\"'”’»«)]}」』）】"
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
_INNER_PUNCT = re.compile("[.,;:!?、。，；：！？]")
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
    """Length in words; unspaced scripts count half a word per character."""
    wide = len(_UNSPACED.findall(line))
    if wide:
        line = _UNSPACED.sub(" ", line)
    return len(_WORD.findall(line)) + wide / 2


def ends_sentence(line: str) -> bool:
    stripped = line.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _SENTENCE_END


def prose_words(line: str) -> float:
    """The line's length in words when it reads as prose, else 0."""
    words = line_words(line)
    if words >= _PROSE_WORDS and ends_sentence(line):
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
    hits: Sequence[Rule | None],
    named: Container[int],
) -> int | None:
    """Index of the first ``end`` marker below most (``_END_SHARE``) of the main content."""
    span = _main_span(order, words, named)
    if span is None:
        return None
    first, last = span
    inside = [i for i in order if first <= i <= last and i not in named]
    total = sum(words[i] for i in inside)
    for i in order:
        rule = hits[i]
        if i <= first or rule is None or rule.position != "end":
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
    return outside


_HEADLINE_MAX_CHARS = 200
_HEADLINE_WORDS = (4, 25)
_HEADLINE_LOOKBACK = 5
_HEADLINE_MIN_LETTERS = 0.6


def _headline_like(line: str) -> bool:
    """Reads like a headline: a few words, mostly letters, no sentence end, no address."""
    visible = [ch for ch in line if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible)
    return (
        len(line) <= _HEADLINE_MAX_CHARS
        and _HEADLINE_WORDS[0] <= line_words(line) <= _HEADLINE_WORDS[1]
        and letters >= _HEADLINE_MIN_LETTERS * len(visible)
        and "@" not in line
        and not ends_sentence(line)
        and not line.endswith((":", "：", ",", ";"))
    )


_HEADLINE_LEAD_CHARS = 1_500
_HEADLINE_MIN_OVERLAP = 0.3
_LEAD_WORD = re.compile(r"\w{4,}")


def _overlap(headline: str, lead: set[str]) -> float:
    words = {w.casefold() for w in _LEAD_WORD.findall(headline)}
    return len(words & lead) / len(words) if words else 0.0


def headline_above(lines: Sequence[str], named: Mapping[int, str]) -> str | None:
    """The headline of a page whose furniture the main-content heuristic cut: among the few
    non-blank lines just above the first kept one, the headline-like line that shares the
    most words with the article's lead. Bylines, datelines and section labels sit there
    too, but share no words with the lead; for CJK text (no spaces) this finds nothing."""
    first = next((i for i, line in enumerate(lines) if line.strip() and i not in named), None)
    if first is None:
        return None
    above = [i for i in range(first - 1, -1, -1) if lines[i].strip()][:_HEADLINE_LOOKBACK]
    kept = "\n".join(line for i, line in enumerate(lines) if i >= first and i not in named)
    lead = {w.casefold() for w in _LEAD_WORD.findall(kept[:_HEADLINE_LEAD_CHARS])}
    scored = [
        (_overlap(lines[i].strip(), lead), -n, lines[i].strip())
        for n, i in enumerate(above)
        if named.get(i) == OUTSIDE_MAIN_CONTENT
        and _headline_like(lines[i].strip())
        and "://" not in lines[i]
    ]
    best = max(scored, default=None)
    return best[2] if best is not None and best[0] >= _HEADLINE_MIN_OVERLAP else None


def tidy(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, no blank edges."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def clean(text: str, rules: RuleSet) -> Cleaned | Rejection:
    """Remove boilerplate lines from normalised text. Idempotent; never adds text.

    Order: ``any`` and ``end`` rules everywhere; ``edge`` rules in the leading and trailing
    run of matching lines; then (unless switched off) the tail after an ``end`` marker
    that comes below most of the main content, and every line outside the main-content
    block, named after the rule that matches it if one does, else
    ``outside-main-content``.
    """
    lines = text.split("\n")
    hits = [rules.first_match(line) for line in lines]
    edge = _edge_lines(lines, hits)
    main_content = OUTSIDE_MAIN_CONTENT in rules.heuristics
    named: dict[int, str] = {
        i: rule.name
        for i, rule in enumerate(hits)
        if rule is not None and (rule.position != "edge" or i in edge)
    }
    if main_content:
        order = [i for i, line in enumerate(lines) if line.strip()]
        words = [prose_words(line) for line in lines]
        # Until no marker is left to act on: a cut shortens the main content, which can
        # bring an earlier marker below its share (and a second run would then cut there).
        while (end := article_end(order, words, hits, named)) is not None:
            marker = hits[end]
            assert marker is not None  # article_end only returns matched lines
            named.update((i, marker.name) for i in order if i > end and i not in named)
        for i in outside_main_content(lines, order, words, named):
            rule = hits[i]
            named[i] = rule.name if rule is not None else OUTSIDE_MAIN_CONTENT
        # What is left may have new edges ("Loading comments..." above a cut comment
        # section): edge rules fire there too, as they would on the cleaned text.
        for i in _edge_lines(lines, hits, named) - named.keys():
            rule = hits[i]
            assert rule is not None  # edge lines are matched lines
            named[i] = rule.name
    kept = [line for i, line in enumerate(lines) if i not in named]
    removed = tuple(RemovedLine(named[i], lines[i].strip(), i + 1) for i in sorted(named))
    cleaned = tidy("\n".join(kept))
    if not cleaned.strip():
        return Rejection(
            Stage.BOILERPLATE,
            Reason.ONLY_BOILERPLATE,
            f"all {len(removed)} non-blank lines are boilerplate "
            f"({', '.join(sorted({r.rule for r in removed}))})",
        )
    return Cleaned(cleaned, removed, headline_above(lines, named) if main_content else None)
