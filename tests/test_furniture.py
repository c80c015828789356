"""Broader furniture rules (calls to action, consent notices, newsletter prompts) and the
edge run that steps over one unknown short line."""

from __future__ import annotations

import pytest

from flows.stages.boilerplate import OUTSIDE_MAIN_CONTENT, Cleaned, clean
from flows.stages.compose import StageConfig

BEFORE = (
    "The strike entered its third month on Monday, with no talks scheduled between the parties."
)
AFTER = (
    "Workers said they would continue to picket the studios until their demands were met in full."
)

FURNITURE = {
    "Print this article": "call-to-action",
    "Printer-friendly version": "call-to-action",
    "Email this article": "call-to-action",
    "Send to a friend": "call-to-action",
    "Download the app": "call-to-action",
    "Get our free app for iPhone and Android": "call-to-action",
    "Sign up for free": "call-to-action",
    "Subscribe now for unlimited access": "call-to-action",
    "Get the latest news delivered to your inbox.": "call-to-action",
    "Never miss a story: sign up for our daily briefing": "call-to-action",
    "Newsletter": "call-to-action",
    "Stay informed. Subscribe to our newsletter.": "call-to-action",
    "No spam, we promise. You can unsubscribe at any time.": "call-to-action",
    "Use of this site constitutes acceptance of our User Agreement and Privacy Policy.": (
        "copyright-footer"
    ),
    "Ad Choices": "advertisement",
    "Jetzt abonnieren und 30 Tage gratis lesen": "call-to-action",
    "Artikel drucken": "call-to-action",
    "Imprimer cet article": "call-to-action",
    "Inscrivez-vous gratuitement": "call-to-action",
    "Suscríbete a nuestro boletín": "follow-subscribe",
    "Iscriviti alla nostra newsletter": "call-to-action",
    "Inscreva-se na nossa newsletter": "call-to-action",
    "Meld je aan voor de nieuwsbrief": "call-to-action",
    "Zapisz się do newslettera": "call-to-action",
    "Подпишитесь на нашу рассылку": "call-to-action",
    "Bizi takip edin": "call-to-action",
    "ニュースレターの登録はこちら": "call-to-action",
    "订阅我们的新闻简报": "call-to-action",
    "뉴스레터 구독하기": "call-to-action",
    "اشترك في النشرة البريدية": "call-to-action",
    "We use cookies to give you the best experience. By continuing to browse the site you "
    "agree to our use of cookies.": "cookie-notice",
    "We value your privacy": "cookie-notice",
    "Manage preferences": "cookie-notice",
    "Accept all": "consent-button",
    "Diese Website verwendet Cookies, um Ihnen das beste Erlebnis zu bieten.": "cookie-notice",
    "Deze website gebruikt cookies om uw ervaring te verbeteren.": "cookie-notice",
    "Ta strona używa plików cookies.": "cookie-notice",
    "Этот сайт использует файлы cookie для улучшения работы.": "cookie-notice",
    "Bu site çerezleri kullanır.": "cookie-notice",
}

# Lines that mention the same words but are an article's sentences.
CONTENT = [
    "The printer broke down on Tuesday, so the council could not print the ballots in time.",
    "Subscribers to the old service were told to sign up again before the end of the month.",
    "Follow the river north for two miles and you reach the village where the strike began.",
    "The app was downloaded more than a million times in its first week, the company said.",
    "Cookies were handed out to the picketers by neighbours who supported the strike.",
    "She said she would sign up for the night classes once her shifts were settled again.",
]


@pytest.mark.parametrize("line", sorted(FURNITURE))
def test_furniture_in_the_middle_is_removed(line: str, default_config: StageConfig) -> None:
    result = clean(f"{BEFORE}\n\n{line}\n\n{AFTER}", default_config.rules)
    assert isinstance(result, Cleaned)
    assert [(r.rule, r.text) for r in result.removed] == [(FURNITURE[line], line)]


@pytest.mark.parametrize("line", CONTENT)
def test_content_that_mentions_furniture_words_stays(
    line: str, default_config: StageConfig
) -> None:
    text = f"{BEFORE}\n\n{line}\n\n{AFTER}"
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    assert result.removed == ()
    assert result.text == text


def test_edge_run_steps_over_one_unknown_short_line(default_config: StageConfig) -> None:
    rules = default_config.rules.without({OUTSIDE_MAIN_CONTENT})
    # "Weekly picks" matches no rule; the "Loading" after it is still at the page's end.
    text = f"{BEFORE}\n{AFTER}\n\nShare\nWeekly picks\nLoading\n"
    result = clean(text, rules)
    assert isinstance(result, Cleaned)
    assert [(r.rule, r.text) for r in result.removed] == [
        ("share", "Share"),
        ("loading-indicator", "Loading"),
    ]
    # The same at the top: "Home", an unknown label, "Menu".
    result = clean(f"Home\nOur picks\nMenu\n{BEFORE}\n{AFTER}", rules)
    assert isinstance(result, Cleaned)
    assert [r.text for r in result.removed] == ["Home", "Menu"]


def test_edge_run_stops_at_two_unknown_lines_or_a_sentence(
    default_config: StageConfig,
) -> None:
    rules = default_config.rules.without({OUTSIDE_MAIN_CONTENT})
    for tail in ("Loading\nWeekly picks\nOur team", "Loading\nThat is all we know."):
        result = clean(f"{BEFORE}\n{AFTER}\n{tail}", rules)
        assert isinstance(result, Cleaned)
        assert result.removed == ()
    # Inside the article a "Loading" line stays whatever surrounds it.
    text = f"{BEFORE}\nNote\nLoading\n{AFTER}"
    result = clean(text, rules)
    assert isinstance(result, Cleaned) and result.removed == ()


def test_edge_run_with_the_main_content_heuristic(default_config: StageConfig) -> None:
    text = f"{BEFORE}\n\n{AFTER}\n\nShare\nWeekly picks\nLoading"
    result = clean(text, default_config.rules)
    assert isinstance(result, Cleaned)
    # The known furniture goes by rule, and the unknown line between two of them with it
    # (although the heuristic keeps up to two unremoved lines after an article).
    assert result.text == f"{BEFORE}\n\n{AFTER}"
    assert ("outside-main-content", "Weekly picks") in [(r.rule, r.text) for r in result.removed]
    assert ("loading-indicator", "Loading") in [(r.rule, r.text) for r in result.removed]
