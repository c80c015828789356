"""Learn a source's boilerplate from the source itself (cc_net's line-hash method). Pure.

A menu, a footer or a newsletter box is the same line in many documents of one site; an
article's sentence is not. Each line is normalised (case, accents, digits, punctuation
and spacing folded, as cc_net does), hashed, and counted once per document it appears in.
Lines found in at least ``min_docs`` documents are *candidates*: they are reported with
their counts for a person to approve, and can be written as a rule file in our format
(``schemas/boilerplate_rules.schema.json``). Nothing here removes anything by itself.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from flows.stages.boilerplate import RuleSet

_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"\s+")
# A learned phrase rule matches its line exactly; this many characters of slack would let
# a longer line through, so the bound is the line's own length (never below this).
_MIN_MAX_CHARS = 20
MAX_CHARS_LIMIT = 2_000  # RuleModel.max_chars upper bound


def normalise(line: str) -> str:
    """cc_net's line normal form: casefolded, no accents, digits as 0, no punctuation."""
    text = unicodedata.normalize("NFD", line.strip().casefold())
    text = "".join(
        ch for ch in text if unicodedata.category(ch)[0] not in {"M", "P", "S", "C"} or ch in "\t "
    )
    return _SPACES.sub(" ", _DIGITS.sub("0", text)).strip()


def line_hash(key: str) -> bytes:
    """8 bytes of SHA-1, as in cc_net: enough to tell millions of lines apart, small to keep."""
    return hashlib.sha1(key.encode("utf-8")).digest()[:8]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A line that repeats across documents, with its counts."""

    text: str  # the most frequent spelling of the line
    documents: int  # documents it appears in (once per document)
    occurrences: int  # times it appears in all
    share: float  # documents / documents seen
    has_digits: bool  # its spellings differ in numbers only ("© 2023", "© 2024")
    covered_by: str | None = None  # a rule that already removes it


@dataclass
class LineCounter:
    """Counts, per normalised line hash, the documents it occurs in. Feed it one text at a
    time (``add``), so a large source is streamed, not held in memory."""

    max_chars: int = 500
    documents: int = 0
    _docs: Counter[bytes] = field(default_factory=Counter)
    _occurrences: Counter[bytes] = field(default_factory=Counter)
    _spellings: dict[bytes, Counter[str]] = field(default_factory=dict)

    def add(self, text: str) -> None:
        seen: set[bytes] = set()
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or len(line) > self.max_chars:
                continue
            key = normalise(line)
            if not key:
                continue
            digest = line_hash(key)
            self._occurrences[digest] += 1
            self._spellings.setdefault(digest, Counter())[line] += 1
            if digest not in seen:
                seen.add(digest)
                self._docs[digest] += 1
        self.documents += 1

    def candidates(self, min_docs: int, rules: RuleSet | None = None) -> list[Candidate]:
        """Lines in at least ``min_docs`` documents, most widespread first."""
        found = []
        for digest, docs in self._docs.items():
            if docs < min_docs:
                continue
            spellings = self._spellings[digest]
            text = min(spellings.items(), key=lambda item: (-item[1], item[0]))[0]
            rule = rules.first_match(text) if rules is not None else None
            found.append(
                Candidate(
                    text=text,
                    documents=docs,
                    occurrences=self._occurrences[digest],
                    share=docs / self.documents,
                    has_digits=_DIGITS.search(text) is not None,
                    covered_by=rule.name if rule is not None else None,
                )
            )
        return sorted(found, key=lambda c: (-c.documents, -c.occurrences, c.text))


def learn(texts: Iterable[str], min_docs: int, rules: RuleSet | None = None) -> list[Candidate]:
    """Candidates from an iterable of document texts."""
    counter = LineCounter()
    for text in texts:
        counter.add(text)
    return counter.candidates(min_docs, rules)


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escaping is a subset TOML accepts, except for \\u007f)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped) + '"'


def _digit_pattern(text: str) -> str:
    """The whole line as a regular expression in which every number may change."""
    parts = re.split(r"(\d+)", text.strip())
    # re.escape also escapes spaces, which only makes the rule harder to read.
    return "".join(
        r"\d+" if part.isdigit() else re.escape(part).replace("\\ ", " ") for part in parts
    )


def rule_file(candidates: Iterable[Candidate], prefix: str = "learned", source: str = "") -> str:
    """A TOML rule file (our schema) with one rule per candidate, its counts as description.

    Candidates already covered by a rule are left out. A line with numbers becomes a
    pattern in which the numbers may vary; any other line a phrase.
    """
    out = [
        "# Boilerplate learned from repeated lines"
        + (f" in {source}" if source else "")
        + " (corpus boilerplate-report).",
        "# Review every rule: delete the ones that are content, keep the rest, and pass the",
        "# file with --boilerplate-rules.",
    ]
    for number, candidate in enumerate((c for c in candidates if c.covered_by is None), 1):
        max_chars = min(MAX_CHARS_LIMIT, max(_MIN_MAX_CHARS, len(candidate.text.strip()) + 10))
        out += [
            "",
            "[[rules]]",
            f'name = "{prefix}-{number:04d}"',
            "description = "
            + _toml_string(
                f"in {candidate.documents} documents ({candidate.share:.0%}), "
                f"{candidate.occurrences} times"
            ),
            'position = "any"',
            f"max_chars = {max_chars}",
        ]
        if candidate.has_digits:
            out.append("pattern = " + _toml_string(_digit_pattern(candidate.text)))
        else:
            out.append("phrases = [" + _toml_string(candidate.text) + "]")
    return "\n".join(out) + "\n"
