"""Boilerplate stage: labelled lines, documents, rule files, and the seeds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.errors import RulesError
from flows.models import RunParameters
from flows.settings import load_rules, parse_rules
from flows.stages.boilerplate import (
    OUTSIDE_MAIN_CONTENT,
    Cleaned,
    RuleSet,
    clean,
    compile_rule,
    phrase_key,
)
from flows.stages.compose import StageConfig
from flows.stages.maincontent import densest_run, line_words
from flows.stages.types import Reason, Rejection
from tests.conftest import SEEDS, SHARED_BENCHMARKS

PAGES = sorted((Path(__file__).parent / "cases" / "boilerplate_pages").glob("*.txt"))

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


# --- Labelled pages: the CI gate ----------------------------------------------------------

# Line-level precision and recall of removal over every page of tests/cases/boilerplate_pages
# (13 pages in 8 languages, written for this project). Measured when the set was built:
# precision 0.995, recall 1.000 (197 boilerplate lines removed, 0 kept; 1 content line
# removed: a lone "Share" in en-tricky, which the share rule always takes). The gates leave
# room for rule edits, not for regressions.
MIN_PRECISION = 0.97
MIN_RECALL = 0.95


def _labelled(path: Path) -> tuple[list[str], list[str]]:
    labels, lines = [], []
    for raw in path.read_text(encoding="utf-8").split("\n"):
        if raw:
            labels.append(raw[0])
            lines.append(raw[2:])
    return labels, lines


def _removed_lines(lines: list[str], rules: RuleSet) -> set[int]:
    result = clean("\n".join(lines), rules)
    if isinstance(result, Rejection):
        return set(range(1, len(lines) + 1))
    return {r.line for r in result.removed}


def test_labelled_pages_are_well_formed() -> None:
    assert len(PAGES) >= 10
    languages = {page.name.split("-")[0] for page in PAGES}
    assert {"en", "de", "fr", "es", "pt", "ru", "ja", "ko"} <= languages
    for page in PAGES:
        labels, _ = _labelled(page)
        assert set(labels) <= {"+", "-", "~"}, page.name
        assert "+" in labels, page.name


def test_labelled_pages_precision_and_recall(default_config: StageConfig) -> None:
    removed_right = removed_wrong = kept_wrong = 0
    for page in PAGES:
        labels, lines = _labelled(page)
        removed = _removed_lines(lines, default_config.rules)
        for number, label in enumerate(labels, 1):
            if label == "-" and number in removed:
                removed_right += 1
            elif label == "+" and number in removed:
                removed_wrong += 1
            elif label == "-":
                kept_wrong += 1
    precision = removed_right / (removed_right + removed_wrong)
    recall = removed_right / (removed_right + kept_wrong)
    assert precision >= MIN_PRECISION, f"precision {precision:.3f}"
    assert recall >= MIN_RECALL, f"recall {recall:.3f}"


@pytest.mark.parametrize("page", [p for p in PAGES if "short" in p.name], ids=lambda p: p.name)
def test_short_documents_keep_every_line(page: Path, default_config: StageConfig) -> None:
    _, lines = _labelled(page)
    assert _removed_lines(lines, default_config.rules) == set()


# --- The main-content heuristic ---------------------------------------------------------

PARAGRAPHS = [
    "The council voted on Tuesday to close the central library on Saturdays from next spring, despite a petition signed by more than four thousand residents.",
    "Officials said the change would save about two hundred thousand pounds a year, money that would be moved to the mobile library service in the villages.",
    "Campaigners said they would ask for a judicial review, arguing that the council had not consulted the people who use the library most.",
    "A final decision on the opening hours of the branch libraries is expected at the next meeting of the committee in June.",
]
MENU = ["World", "Politics", "Business", "Culture", "Sport", "Weather", "Video", "Podcasts"]


def _page(*parts: list[str]) -> str:
    return "\n".join(line for part in parts for line in part)


def test_menus_and_teaser_lists_outside_the_article_go(default_config: StageConfig) -> None:
    text = _page(
        MENU,
        PARAGRAPHS[:2],
        ["What happens next"],
        PARAGRAPHS[2:],
        ["More from Local", "Bus fares rise again", "New cycle lanes open", "Election dates set"],
    )
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.text.split("\n") == [*PARAGRAPHS[:2], "What happens next", *PARAGRAPHS[2:]]
    assert {r.rule for r in result.removed} == {OUTSIDE_MAIN_CONTENT}
    assert [r.line for r in result.removed] == [*range(1, 9), *range(14, 18)]


def test_list_items_and_lead_ins_next_to_the_article_stay(default_config: StageConfig) -> None:
    items = ["The plan includes:", "- a new reading room", "- longer weekday hours", "- free wifi"]
    result = clean(_page(MENU, PARAGRAPHS[:2], items, MENU), default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.text.split("\n") == [*PARAGRAPHS[:2], *items]


def test_a_headline_and_a_dateline_above_a_clean_document_stay(
    default_config: StageConfig,
) -> None:
    text = _page(["Library to close on Saturdays", "Local news"], PARAGRAPHS)
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.removed == ()


def test_a_document_without_prose_is_left_to_the_rules(default_config: StageConfig) -> None:
    text = "Shopping list\n- eggs\n- milk\n- bread\nflour\nbutter\nsugar"
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.removed == ()


def test_the_heuristic_can_be_switched_off_by_name() -> None:
    rules, _ = load_rules(RunParameters(disabled_rules=[OUTSIDE_MAIN_CONTENT]))
    assert OUTSIDE_MAIN_CONTENT not in rules.heuristics
    text = _page(MENU, PARAGRAPHS)
    result = clean(text, rules)
    assert isinstance(result, Cleaned)
    assert result.text == text


def test_an_end_marker_cuts_the_tail_only_below_most_of_the_article(
    default_config: StageConfig,
) -> None:
    comment = "Great article, thanks for writing about our library again!"
    # Without the marker, a reader's comment right below the article reads as its last line.
    result = clean(_page(PARAGRAPHS, [comment]), default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.removed == ()
    # Below the whole article, the marker takes what follows it with it.
    result = clean(_page(PARAGRAPHS, ["Comments", comment]), default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.text.split("\n") == PARAGRAPHS
    assert [(r.rule, r.line) for r in result.removed] == [("article-end", 5), ("article-end", 6)]
    # In the middle (a related box), only the marker line itself goes.
    result = clean(
        _page(PARAGRAPHS[:1], ["Related articles"], PARAGRAPHS[1:]), default_config.rules
    )
    assert isinstance(result, Cleaned)
    assert [(r.rule, r.text) for r in result.removed] == [("article-end", "Related articles")]


def test_line_words_counts_unspaced_scripts_by_character() -> None:
    assert line_words("The library will close on Saturdays.") == 6
    assert line_words("東京都心で桜が開花した") == 5.5
    assert line_words("서울에 올해 첫눈이 내렸다") == 4


def test_densest_run_prefers_the_longer_run_on_ties() -> None:
    assert densest_run([-1.0, 5.0, -2.0, 2.0, -9.0, 4.0]) == (1, 3)
    assert densest_run([-1.0, -2.0]) is None


# Prose-like text with menus, teasers and rule phrases mixed in: the property the
# heuristic's tie-breaking and edge allowance exist for.
_LINES = st.sampled_from(
    [
        *PARAGRAPHS,
        *MENU,
        "Related articles",
        "Share",
        "Loading",
        "- a list item",
        "The plan:",
        "Ok.",
    ]
)


def test_cleaning_pages_is_idempotent(default_config: StageConfig) -> None:
    reached: Counter[str] = Counter()

    @settings(max_examples=400, deadline=None)
    @given(st.lists(_LINES, max_size=40))
    def check(lines: list[str]) -> None:
        first = clean("\n".join(lines), default_config.rules)
        reached[type(first).__name__] += 1
        if isinstance(first, Rejection):
            assert first.reason == Reason.ONLY_BOILERPLATE
            assert not set(lines) & set(PARAGRAPHS)  # prose is never all boilerplate
            return
        second = clean(first.text, default_config.rules)
        assert isinstance(second, Cleaned)
        assert second.text == first.text
        assert second.removed == ()

    check()
    assert reached["Cleaned"] >= 0.8 * reached.total(), reached


ARTICLES = SHARED_BENCHMARKS / "articles"


@pytest.mark.skipif(not (ARTICLES / "pages").is_dir(), reason="no shared articles benchmark")
def test_cleaning_real_pages_is_idempotent(default_config: StageConfig) -> None:
    for page in sorted((ARTICLES / "pages").glob("*.txt")):
        first = clean(page.read_text(encoding="utf-8"), default_config.rules)
        assert isinstance(first, Cleaned), page.name
        second = clean(first.text, default_config.rules)
        assert isinstance(second, Cleaned)
        assert (second.text, second.removed) == (first.text, ()), page.name


def test_headline_cut_with_the_navigation_becomes_the_title(default_config: StageConfig) -> None:
    body = "\n".join(
        f"Paragraph {i}: the strikers kept the studios shut, and this reads as real prose, with a full stop."
        for i in range(6)
    )
    page = f"Home\nNews\nWorld\nSport\nCulture\nStrikers close the studios for a third week\n{body}\nShare\nContact us"
    result = clean(page, default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.headline == "Strikers close the studios for a third week"
    assert "Strikers close" not in result.text
    # A byline or a section label just above the article shares no words with its lead.
    byline = clean(
        page.replace("Culture\n", "Culture\nReporting by Jane Doe and John Roe\n"),
        default_config.rules,
    )
    assert isinstance(byline, Cleaned)
    assert byline.headline == "Strikers close the studios for a third week"
    # A short document keeps its headline in the text instead; nothing to report.
    short = clean("Strikers close the studios\n\n" + body, default_config.rules)
    assert isinstance(short, Cleaned)
    assert short.headline is None
    assert short.text.startswith("Strikers close the studios")
