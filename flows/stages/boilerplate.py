"""Remove scrape leftovers line by line by rules, and say what was removed and why.

Rules are data (TOML files validated by :class:`flows.models.RuleFile`), never code. A rule
matches a whole line, either by phrase (case-insensitive, surrounding punctuation ignored)
or by a regular expression that must match the entire stripped line. Two safeguards keep
real content:

* every rule has ``max_chars``: a line longer than that is never touched by it, so prose
  paragraphs cannot be caught by a short phrase;
* ``position = "edge"`` rules (menus, "Loading", "Home") only fire in the leading or
  trailing run of boilerplate lines; the same words inside the article stay.

Beyond rules, the main-content heuristic (:mod:`flows.stages.maincontent`) names the lines
outside the densest run of prose (``outside-main-content``); ``position = "end"`` rules
("Related articles", "Comments") cut the article's tail from their line on, once most of
the main content lies before them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from flows.stages.maincontent import (
    article_end,
    ends_sentence,
    line_words,
    outside_main_content,
    prose_words,
)
from flows.stages.types import Reason, Rejection, Stage

Position = Literal["any", "edge", "end"]

# Punctuation and symbols that decorate boilerplate ("Loading…", "» Home", "Share |").
_DECORATION = "".join(
    ch
    for ch in map(chr, range(0x20, 0x3000))
    if unicodedata.category(ch)[0] in {"P", "S", "Z"} and ch not in "#@&+%$€£¥©"
)
_DECORATION_SET = frozenset(_DECORATION)
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def phrase_key(line: str) -> str:
    """The form a line and a phrase are compared in: casefolded, single-spaced, undecorated."""
    key = line.strip()
    # strip() with 3,500 characters to strip costs a scan of them per edge character: only
    # when an edge is decoration.
    if key and (key[0] in _DECORATION_SET or key[-1] in _DECORATION_SET):
        key = key.strip(_DECORATION)
    key = key.casefold()
    # Every whitespace character but the space is unprintable: a printable key without a
    # double space has no run for the substitution to collapse.
    return key if key.isprintable() and "  " not in key else _SPACES.sub(" ", key)


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
# Lines learned from the corpus (flows/engine/furniture.py, on the engine's corpus step):
# not applied by ``clean``, but named here so ``disabled_rules`` can switch it off.
REPEATED_LINE_RULE = "repeated-line"
HEURISTICS = frozenset({OUTSIDE_MAIN_CONTENT, REPEATED_LINE_RULE})


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


# The edge run goes on past one unknown line this short (a site's own menu item or label
# between "Home" and "Loading") when a known furniture line follows it; two unknown lines
# in a row, or a longer or prose line, end it.
_EDGE_UNKNOWN_CHARS = 60


def _edge_lines(
    lines: Sequence[str], hits: Sequence[Rule | None], skip: Container[int] = ()
) -> set[int]:
    """Indexes of the matching lines in the leading and trailing runs made of blank,
    ``skip`` and matching lines, and at most one short unknown line between two matches."""
    edge: set[int] = set()
    for order in (range(len(lines)), range(len(lines) - 1, -1, -1)):
        unknown = False
        for i in order:
            if not lines[i].strip() or i in skip:
                continue
            if hits[i] is not None:
                edge.add(i)
                unknown = False
            elif unknown or not _short_unknown(lines[i]):
                break
            else:
                unknown = True
    return edge


def _short_unknown(line: str) -> bool:
    stripped = line.strip()
    return (
        len(stripped) <= _EDGE_UNKNOWN_CHARS
        and prose_words(stripped) == 0
        and not (ends_sentence(stripped) and line_words(stripped) >= _EDGE_SENTENCE_WORDS)
    )


# A short line ending like a sentence of this many words is content, not a menu item.
_EDGE_SENTENCE_WORDS = 3


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
    lead = {w.casefold() for w in _LEAD_WORD.findall(_lead(lines, first, named))}
    scored = [
        (_overlap(lines[i].strip(), lead), -n, lines[i].strip())
        for n, i in enumerate(above)
        if named.get(i) == OUTSIDE_MAIN_CONTENT
        and _headline_like(lines[i].strip())
        and "://" not in lines[i]
    ]
    best = max(scored, default=None)
    return best[2] if best is not None and best[0] >= _HEADLINE_MIN_OVERLAP else None


def _lead(lines: Sequence[str], first: int, named: Mapping[int, str]) -> str:
    """The first ``_HEADLINE_LEAD_CHARS`` characters of the kept lines from ``first`` on
    (joined by line breaks), without joining the rest of the text."""
    kept: list[str] = []
    size = 0
    for i in range(first, len(lines)):
        if i in named:
            continue
        kept.append(lines[i])
        size += len(lines[i]) + 1
        if size > _HEADLINE_LEAD_CHARS:
            break
    return "\n".join(kept)[:_HEADLINE_LEAD_CHARS]


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
        ends = {i for i, rule in enumerate(hits) if rule is not None and rule.position == "end"}
        while (end := article_end(order, words, ends, named)) is not None:
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
