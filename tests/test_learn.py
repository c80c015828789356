"""Learning a source's boilerplate from repeated lines (flows/learn.py, corpus boilerplate-report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from flows.learn import LineCounter, learn, line_hash, normalise, rule_file
from flows.settings import parse_rules
from flows.stages.boilerplate import Cleaned, RuleSet, clean
from flows.stages.compose import StageConfig

TOPICS = ["harbour", "school", "bridge", "library", "market", "station", "park", "museum"]


def _site(n: int) -> list[str]:
    """n pages of one site: the same header and footer around a different article."""
    return [
        "\n".join(
            [
                "The Example Gazette",
                "Local | Sport | Opinion",
                f"The council discussed the future of the {topic} on Monday evening.",
                "Subscribe to The Example Gazette from £1 a week",
                "Subscribe to The Example Gazette from £1 a week",
                f"© {2000 + i} Example Gazette Ltd",
            ]
        )
        for i, topic in enumerate(TOPICS[:n])
    ]


def test_normalise_folds_case_accents_digits_and_punctuation() -> None:
    assert normalise("  Café — OPEN 24/7!  ") == "cafe open 000"
    assert normalise("© 2023 Example.") == normalise("© 2024 example") == "0000 example"
    assert normalise("....") == ""
    assert normalise("東京 2024年") == "東京 0000年"
    assert line_hash("a") != line_hash("b") and len(line_hash("a")) == 8


def test_a_line_counts_once_per_document() -> None:
    counter = LineCounter()
    for text in _site(4):
        counter.add(text)
    by_text = {c.text: c for c in counter.candidates(min_docs=1)}
    subscribe = by_text["Subscribe to The Example Gazette from £1 a week"]
    assert (subscribe.documents, subscribe.occurrences, subscribe.share) == (4, 8, 1.0)
    assert counter.documents == 4


def test_candidates_need_min_docs_and_numbers_may_differ() -> None:
    found = learn(_site(6), min_docs=5)
    texts = [c.text for c in found]
    # The copyright lines differ only in their year: one candidate, marked as such.
    copyright = [c for c in found if c.text.startswith("©")]
    assert len(copyright) == 1 and copyright[0].has_digits and copyright[0].documents == 6
    assert "The Example Gazette" in texts
    assert not any(t.startswith("The council") for t in texts)
    assert learn(_site(4), min_docs=5) == []
    # Most widespread first, then most frequent.
    assert found[0].text == "Subscribe to The Example Gazette from £1 a week"


def test_candidates_say_which_rule_already_removes_them(default_config: StageConfig) -> None:
    found = {c.text: c for c in learn(_site(5), min_docs=5, rules=default_config.rules)}
    assert found["Local | Sport | Opinion"].covered_by is None  # only 3 items: no menu-bar
    assert found["© 2000 Example Gazette Ltd"].covered_by == "copyright-footer"
    assert found["The Example Gazette"].covered_by is None


def test_learned_rule_file_is_valid_and_removes_the_lines(default_config: StageConfig) -> None:
    found = learn(_site(6), min_docs=5, rules=default_config.rules)
    learned = parse_rules(rule_file(found, source="site"), "learned.toml")
    # Covered candidates are left out (the copyright line, and the call to subscribe since
    # the built-in call-to-action rule); the others become one rule each.
    assert len(learned.rules) == len([c for c in found if c.covered_by is None]) == 2
    assert all(rule.name.startswith("learned-") for rule in learned.rules)
    new_page = (
        "The Example Gazette\nLocal | Sport | Opinion\n"
        "A new article about the harbour, long enough to be a paragraph of prose.\n"
        "Subscribe to The Example Gazette from £2 a week\n© 2031 Example Gazette Ltd"
    )
    result = clean(new_page, RuleSet(learned.rules + default_config.rules.rules, frozenset()))
    assert isinstance(result, Cleaned)
    assert result.text == "A new article about the harbour, long enough to be a paragraph of prose."
    assert {r.rule for r in result.removed} >= {"learned-0001", "copyright-footer"}


def test_rule_file_escapes_quotes_and_backslashes() -> None:
    found = learn(['He said "no" \\ twice\nx', 'He said "no" \\ twice\ny'], min_docs=2)
    learned = parse_rules(rule_file(found), "learned.toml")
    assert learned.rules[0].phrases == frozenset({'he said "no" \\ twice'})


def test_boilerplate_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "site"
    source.mkdir()
    for i, text in enumerate(_site(6)):
        (source / f"page{i}.txt").write_text(text, encoding="utf-8")
    (source / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    out = tmp_path / "learned.toml"
    code = main(
        ["boilerplate-report", "--source", str(source), "--min-docs", "5", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "of 6 documents (1 inputs not readable as text)" in printed
    assert "Subscribe to The Example Gazette from £1 a week" in printed
    assert "copyright-footer" in printed
    rules = parse_rules(out.read_text(encoding="utf-8"), str(out))
    assert "learned-0001" in [rule.name for rule in rules.rules]


def test_boilerplate_report_refuses_min_docs_below_one(tmp_path: Path) -> None:
    assert main(["boilerplate-report", "--source", str(tmp_path), "--min-docs", "0"]) == 2
