"""Stage 3: remove scrape leftovers line by line, and say what was removed and why.

Rules are data (TOML files validated by :class:`flows.models.RuleFile`), never code. A rule
matches a whole line, either by phrase (case-insensitive, surrounding punctuation ignored)
or by a regular expression that must match the entire stripped line. Two safeguards keep
real content:

* every rule has ``max_chars``: a line longer than that is never touched by it, so prose
  paragraphs cannot be caught by a short phrase;
* ``position = "edge"`` rules (menus, "Loading", "Home") only fire in the leading or
  trailing run of boilerplate lines; the same words inside the article stay.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from flows.stages.types import Reason, Rejection, Stage

Position = Literal["any", "edge"]

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
        if not stripped or len(stripped) > self.max_chars:
            return False
        if self.phrases and phrase_key(stripped) in self.phrases:
            return True
        return self.pattern is not None and self.pattern.fullmatch(stripped) is not None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules in the order they are tried; the first rule that matches a line names it."""

    rules: tuple[Rule, ...]

    def first_match(self, line: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(line):
                return rule
        return None

    def without(self, names: Iterable[str]) -> RuleSet:
        drop = set(names)
        return RuleSet(tuple(rule for rule in self.rules if rule.name not in drop))

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + other.rules)


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


def _edge_lines(lines: Sequence[str], hits: Sequence[Rule | None]) -> set[int]:
    """Indexes in the leading and trailing runs made only of blank and matching lines."""
    edge: set[int] = set()
    for order in (range(len(lines)), range(len(lines) - 1, -1, -1)):
        for i in order:
            if not lines[i].strip():
                continue
            if hits[i] is None:
                break
            edge.add(i)
    return edge


def tidy(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, no blank edges."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def clean(text: str, rules: RuleSet) -> Cleaned | Rejection:
    """Remove boilerplate lines from normalised text. Idempotent; never adds text."""
    lines = text.split("\n")
    hits = [rules.first_match(line) for line in lines]
    edge = _edge_lines(lines, hits)
    kept: list[str] = []
    removed: list[RemovedLine] = []
    for i, (line, rule) in enumerate(zip(lines, hits, strict=True)):
        if rule is not None and (rule.position == "any" or i in edge):
            removed.append(RemovedLine(rule.name, line.strip(), i + 1))
        else:
            kept.append(line)
    cleaned = tidy("\n".join(kept))
    if not cleaned.strip():
        return Rejection(
            Stage.BOILERPLATE,
            Reason.ONLY_BOILERPLATE,
            f"all {len(removed)} non-blank lines are boilerplate "
            f"({', '.join(sorted({r.rule for r in removed}))})",
        )
    return Cleaned(cleaned, tuple(removed))
