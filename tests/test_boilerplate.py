"""Boilerplate stage: labelled lines, documents, rule files, and the seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flows.errors import RulesError
from flows.models import RunParameters
from flows.process import StageConfig
from flows.settings import load_rules, parse_rules
from flows.stages.boilerplate import Cleaned, RuleSet, clean, compile_rule, phrase_key
from flows.stages.types import Reason, Rejection
from tests.conftest import SEEDS

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "cases" / "boilerplate_lines.json").read_text(encoding="utf-8")
)["cases"]

BEFORE = (
    "The strike entered its third month on Monday, with no talks scheduled between the parties."
)
AFTER = (
    "Workers said they would continue to picket the studios until their demands were met in full."
)


@pytest.mark.parametrize("case", CASES, ids=[c["line"][:40] for c in CASES])
def test_labelled_lines_in_the_middle_of_an_article(
    case: dict[str, Any], default_config: StageConfig
) -> None:
    text = f"{BEFORE}\n\n{case['line']}\n\n{AFTER}"
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    removed = [(r.rule, r.text) for r in result.removed]
    if case["removed"]:
        assert removed == [(case["rule"], case["line"])]
        assert case["line"] not in result.text
    else:
        assert removed == []
        assert result.text == text


def test_edge_rules_fire_only_at_the_edges(default_config: StageConfig) -> None:
    text = f"Skip to content\nHome\n\n{BEFORE}\nHome\nLoading\n{AFTER}\n\nShare\nLoading…"
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert [(r.rule, r.line) for r in result.removed] == [
        ("navigation", 1),
        ("navigation", 2),
        ("share", 9),
        ("loading-indicator", 10),
    ]
    assert result.text == f"{BEFORE}\nHome\nLoading\n{AFTER}"


def test_breadcrumb_and_menu_bar_at_the_top(default_config: StageConfig) -> None:
    text = f"News | Sport | Culture | Weather | Video\nHome > News > World\n{BEFORE}"
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert [r.rule for r in result.removed] == ["menu-bar", "breadcrumb"]
    assert result.text == BEFORE


def test_only_boilerplate_is_rejected(default_config: StageConfig) -> None:
    result = clean("Advertisement\n\nShare this article\nLoading", default_config.rules)
    assert isinstance(result, Rejection)
    assert result.reason == Reason.ONLY_BOILERPLATE


def test_german_seed_loses_only_its_trailing_loading_line(default_config: StageConfig) -> None:
    raw = (SEEDS / "000_f191ddaece1908f0.txt").read_text(encoding="utf-8")
    result = clean(raw, default_config.rules)
    assert isinstance(result, Cleaned)
    assert [(r.rule, r.text) for r in result.removed] == [("loading-indicator", "Loading")]
    assert result.removed[0].line == raw.count("\n") + 1
    assert not result.text.rstrip().endswith("Loading")
    paragraphs = [p for p in raw.split("\n") if p.strip() and p.strip() != "Loading"]
    assert all(p.strip() in result.text for p in paragraphs)


def test_english_seed_is_untouched(default_config: StageConfig) -> None:
    raw = (SEEDS / "001_f6e449bcd0ea5a8d.txt").read_text(encoding="utf-8")
    result = clean(raw, default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.removed == ()
    assert result.text == raw.strip()


def test_phrase_key_ignores_decoration_and_case() -> None:
    assert phrase_key("  » LOADING…  ") == "loading"
    assert phrase_key("Share  this\tarticle |") == "share this article"


def test_max_chars_protects_long_lines() -> None:
    rules = RuleSet((compile_rule("x", "any", 10, pattern=r"foo.*"),))
    result = clean("foo bar baz qux\n\nfoo", rules)
    assert isinstance(result, Cleaned)
    assert result.text == "foo bar baz qux"


def test_user_rule_file_extends_and_disables(tmp_path: Path) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[[rules]]\nname = "house-footer"\nphrases = ["Sent from my phone"]\n', encoding="utf-8"
    )
    params = RunParameters(boilerplate_rules=[str(extra)], disabled_rules=["advertisement"])
    rules, digest = load_rules(params)
    names = [r.name for r in rules.rules]
    assert "house-footer" in names
    assert "advertisement" not in names
    result = clean(f"{BEFORE}\nSent from my phone\nAdvertisement", rules)
    assert isinstance(result, Cleaned)
    assert [r.rule for r in result.removed] == ["house-footer"]
    assert len(digest) == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rules]]\nname = 'a'\n", "neither phrases nor pattern"),
        ("[[rules]]\nname = 'a'\npattern = '('\n", "bad pattern"),
        ("[[rules]]\nname = 'Bad Name'\nphrases=['x']\n", "rules.0.name"),
        ("[[rules]]\nname = 'a'\nphrases=['x']\nposition='middle'\n", "rules.0.position"),
        ("rules = 3 = 4", "not valid TOML"),
    ],
)
def test_bad_rule_files_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        parse_rules(text, "test.toml")


def test_unknown_disabled_rule_is_an_error() -> None:
    with pytest.raises(RulesError, match="no-such-rule"):
        load_rules(RunParameters(disabled_rules=["no-such-rule"]))
