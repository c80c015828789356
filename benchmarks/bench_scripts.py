"""Cleaning in every script: content kept and furniture removed, per language.

Builds article-like documents for every language in ``SHARED/language/<lang>/sentences.txt``
(paragraphs of 2-4 real sentences; Thai sentences lose the full stop the Leipzig corpus gave
them, as Thai writes none), with a title, subheadings, and page furniture of many kinds at
known places: menus, breadcrumbs, a "Loading" line, bylines and datelines at the top; ad
labels, calls to subscribe, share rows and photo credits between paragraphs; share buttons,
print/email links, newsletter prompts, cookie and consent notices, related-story teasers,
copyright lines and an unknown short site label at the bottom. Furniture is in the
document's language where we wrote it (en, de, fr, es, it, pt, nl, pl, ru, tr, ja, zh, ko,
ar, hi, bn, ur, fa), else in English. Documents are written in several encodings
(UTF-8, UTF-16, and the language's legacy code page when the text fits it) and go through
the real stages: ``decode`` then ``clean``.

Scored per language: content kept (paragraph and subheading lines found whole in the
output), paragraphs kept, furniture removed (furniture lines not found in the output), and
documents decoded to the wrong text (those count against content kept too).

    uv run python benchmarks/bench_scripts.py [--shared PATH] [--docs 8] [--seed 0]

The document builder is also used by ``tests/test_scripts_sample.py`` on the small set of
paragraphs written for this project in ``tests/cases/script_paragraphs.json``.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.engine.furniture import (  # noqa: E402
    FurnitureSettings,
    learn,
    line_facts,
    remove_learned,
)
from flows.models import RunParameters  # noqa: E402
from flows.settings import load_rules  # noqa: E402
from flows.stages.boilerplate import Cleaned, RuleSet, clean  # noqa: E402
from flows.stages.encoding import Decoded, decode  # noqa: E402

# Scripts without spaces between words: paragraphs join sentences without a space, and a
# title is cut by characters.
_UNSPACED = {"ja", "zh", "th"}
_LEGACY = {
    "ar": "cp1256",
    "fa": "cp1256",
    "ur": "cp1256",
    "he": "cp1255",
    "el": "cp1253",
    "tr": "cp1254",
    "ru": "cp1251",
    "uk": "cp1251",
    "bg": "cp1251",
    "be": "cp1251",
    "mk": "cp1251",
    "sr": "cp1251",
    "cs": "cp1250",
    "pl": "cp1250",
    "sk": "cp1250",
    "hu": "cp1250",
    "hr": "cp1250",
    "sl": "cp1250",
    "ro": "cp1250",
    "ja": "shift_jis",
    "zh": "gb18030",
    "ko": "euc-kr",
    "th": "cp874",
    "vi": "cp1258",
    "lt": "cp1257",
    "lv": "cp1257",
    "et": "cp1257",
}
_LATIN1_LANGS = {"en", "de", "fr", "es", "it", "pt", "nl", "da", "sv", "nb", "nn", "fi", "is"}

# Furniture by kind; a language's own list where we wrote one, else English. Every kind is
# a list to draw from.
_EN: dict[str, list[str]] = {
    "nav": ["Home", "Menu", "Skip to content", "Search", "Sign in", "Toggle navigation"],
    "menubar": ["News | World | Business | Sport | Culture", "Home > News > World"],
    "loading": ["Loading", "Loading…", "Please wait"],
    "dateline": ["Published 12 March 2024", "Updated: 14:05 GMT", "3 hours ago"],
    "byline": ["By Jane Doe", "By Ahmed Karim and Lucy Chen"],
    "ad": ["Advertisement", "Sponsored", "Story continues below advertisement"],
    "cta": [
        "Subscribe to our newsletter",
        "Sign up for our daily briefing",
        "Get the latest news delivered to your inbox.",
        "Subscribe now for unlimited access",
        "Never miss a story: sign up for our newsletter",
    ],
    "share": ["Share", "Share this article", "Facebook", "Twitter", "WhatsApp", "Copy link"],
    "print": ["Print this article", "Email this article", "Printer-friendly version"],
    "app": ["Download the app", "Get our free app for iPhone and Android"],
    "follow": ["Follow us on Facebook", "Follow us on Instagram"],
    "readmore": ["Read more: {headline}", "See also: {headline}"],
    "photo": ["Photo: Reuters", "Photo: AFP/Getty Images"],
    "cookie": [
        "We use cookies to improve your experience. By continuing to browse the site you "
        "agree to our use of cookies.",
        "This website uses cookies to ensure you get the best experience.",
    ],
    "consent": ["Accept all", "Manage preferences", "I agree"],
    "related": ["Related articles", "More stories", "You may also like"],
    "comments": ["Comments", "Leave a comment", "12 comments"],
    "tags": ["Tags: politics, economy, world"],
    "copyright": ["© 2024 Example Media. All rights reserved.", "Copyright 2024 Example News"],
}
_LOCAL: dict[str, dict[str, list[str]]] = {
    "de": {
        "nav": ["Startseite", "Menü", "Suche", "Zum Inhalt springen", "Anmelden"],
        "loading": ["Wird geladen", "Lädt"],
        "ad": ["Anzeige", "Werbung"],
        "cta": ["Newsletter abonnieren", "Jetzt abonnieren und 30 Tage gratis lesen"],
        "share": ["Teilen", "Artikel teilen", "Link kopieren"],
        "print": ["Artikel drucken", "Drucken"],
        "follow": ["Folgen Sie uns auf Facebook"],
        "cookie": ["Diese Website verwendet Cookies, um Ihnen das beste Erlebnis zu bieten."],
        "consent": ["Alle akzeptieren", "Ablehnen"],
        "related": ["Das könnte Sie auch interessieren", "Mehr zum Thema"],
        "comments": ["Kommentare"],
        "readmore": ["Lesen Sie auch: {headline}"],
        "copyright": ["© 2024 Beispiel Verlag. Alle Rechte vorbehalten."],
    },
    "fr": {
        "nav": ["Accueil", "Menu", "Rechercher", "Aller au contenu"],
        "loading": ["Chargement", "Chargement en cours"],
        "ad": ["Publicité"],
        "cta": ["Abonnez-vous à notre newsletter", "Inscrivez-vous gratuitement"],
        "share": ["Partager", "Partager cet article"],
        "print": ["Imprimer cet article", "Imprimer"],
        "follow": ["Suivez-nous sur Facebook"],
        "cookie": ["Ce site utilise des cookies pour améliorer votre expérience."],
        "consent": ["Tout accepter", "Refuser"],
        "related": ["À lire aussi", "Sur le même sujet"],
        "comments": ["Commentaires"],
        "readmore": ["Lire aussi : {headline}"],
        "copyright": ["© 2024 Exemple Média. Tous droits réservés."],
    },
    "es": {
        "nav": ["Inicio", "Buscar", "Ir al contenido"],
        "loading": ["Cargando"],
        "ad": ["Publicidad"],
        "cta": ["Suscríbete a nuestro boletín", "Regístrate gratis"],
        "share": ["Compartir", "Compartir en Facebook"],
        "print": ["Imprimir", "Enviar por correo"],
        "follow": ["Síguenos en Twitter"],
        "cookie": ["Este sitio web utiliza cookies para mejorar su experiencia."],
        "consent": ["Aceptar", "Rechazar todo"],
        "related": ["Noticias relacionadas", "Te puede interesar"],
        "comments": ["Comentarios"],
        "readmore": ["Lee también: {headline}"],
        "copyright": ["© 2024 Ejemplo Medios. Todos los derechos reservados."],
    },
    "it": {
        "nav": ["Home", "Cerca", "Vai al contenuto"],
        "loading": ["Caricamento"],
        "ad": ["Pubblicità"],
        "cta": ["Iscriviti alla nostra newsletter", "Abbonati ora"],
        "share": ["Condividi"],
        "print": ["Stampa", "Stampa l'articolo"],
        "follow": ["Seguici su Facebook"],
        "cookie": ["Questo sito utilizza cookie per migliorare la tua esperienza."],
        "consent": ["Accetta tutto", "Rifiuta"],
        "related": ["Articoli correlati", "Potrebbe interessarti"],
        "comments": ["Commenti"],
        "copyright": ["© 2024 Esempio Media. Tutti i diritti riservati."],
    },
    "pt": {
        "nav": ["Início", "Pesquisar"],
        "loading": ["Carregando"],
        "ad": ["Publicidade"],
        "cta": ["Inscreva-se na nossa newsletter", "Assine agora"],
        "share": ["Compartilhe", "Compartilhar"],
        "print": ["Imprimir artigo"],
        "follow": ["Siga-nos no Instagram"],
        "cookie": ["Este site utiliza cookies para melhorar a sua experiência."],
        "consent": ["Aceitar", "Rejeitar"],
        "related": ["Notícias relacionadas", "Veja também"],
        "comments": ["Comentários"],
    },
    "nl": {
        "cta": ["Meld je aan voor de nieuwsbrief", "Abonneer nu"],
        "share": ["Delen"],
        "follow": ["Volg ons op Twitter"],
        "cookie": ["Deze website gebruikt cookies om uw ervaring te verbeteren."],
        "consent": ["Alles accepteren", "Weigeren"],
        "app": ["Download de app"],
        "ad": ["Advertentie"],
    },
    "pl": {
        "loading": ["Ładowanie"],
        "ad": ["Reklama"],
        "cta": ["Zapisz się do newslettera"],
        "share": ["Udostępnij"],
        "follow": ["Obserwuj nas na Facebooku"],
        "cookie": ["Ta strona używa plików cookies."],
        "consent": ["Akceptuję", "Odrzuć"],
        "app": ["Pobierz aplikację"],
    },
    "ru": {
        "loading": ["Загрузка"],
        "ad": ["Реклама"],
        "cta": ["Подпишитесь на нашу рассылку", "Подписывайтесь на наш канал в Telegram"],
        "share": ["Поделиться", "ВКонтакте", "Одноклассники"],
        "print": ["Распечатать"],
        "cookie": ["Этот сайт использует файлы cookie для улучшения работы."],
        "consent": ["Принять", "Отклонить"],
        "related": ["Читайте также", "Похожие статьи"],
        "comments": ["Комментарии"],
        "app": ["Скачайте наше приложение"],
    },
    "tr": {
        "cta": ["Bültene abone ol"],
        "follow": ["Bizi takip edin"],
        "cookie": ["Bu site çerezleri kullanır."],
        "consent": ["Kabul et", "Reddet"],
    },
    "ja": {
        "ad": ["広告", "スポンサーリンク"],
        "cta": ["ニュースレターの登録はこちら"],
        "share": ["シェア", "ツイート", "はてなブックマーク", "LINE"],
        "print": ["印刷する"],
        "cookie": ["当サイトではクッキーを使用しています。"],
        "consent": ["同意する"],
        "related": ["関連記事", "あわせて読みたい"],
        "comments": ["コメント"],
        "app": ["アプリをダウンロード"],
    },
    "zh": {
        "cta": ["订阅我们的新闻简报"],
        "follow": ["关注我们"],
        "print": ["打印本文"],
        "cookie": ["本网站使用cookie来改善您的体验。"],
        "consent": ["接受", "拒绝"],
        "app": ["下载客户端"],
    },
    "ko": {
        "ad": ["광고"],
        "cta": ["뉴스레터 구독하기"],
        "share": ["공유하기", "카카오톡", "페이스북", "트위터"],
        "print": ["인쇄하기"],
        "cookie": ["이 사이트는 쿠키를 사용합니다."],
        "consent": ["동의"],
        "related": ["관련기사", "많이 본 뉴스"],
        "comments": ["댓글"],
        "app": ["앱 다운로드"],
    },
    "ar": {
        "cta": ["اشترك في النشرة البريدية"],
        "follow": ["تابعنا على فيسبوك"],
        "print": ["طباعة المقال"],
        "cookie": ["يستخدم هذا الموقع ملفات تعريف الارتباط لتحسين تجربتك."],
        "app": ["حمل التطبيق الآن"],
    },
    "hi": {
        "cta": ["सब्सक्राइब करें"],
        "follow": ["हमें फॉलो करें"],
        "app": ["ऐप डाउनलोड करें"],
        "cookie": ["यह वेबसाइट कुकीज़ का उपयोग करती है।"],
    },
    "bn": {"cta": ["সাবস্ক্রাইব করুন"], "follow": ["আমাদের ফলো করুন"]},
    "ur": {"cta": ["سبسکرائب کریں"], "follow": ["ہمیں فالو کریں"]},
    "fa": {"cta": ["عضویت در خبرنامه"], "follow": ["ما را دنبال کنید"]},
}
# Short site labels no rule knows ("unrecognised furniture"): one of them sits between
# known furniture lines at the bottom of some documents.
_UNKNOWN = ["Weekly picks", "Editor's choice", "Our network", "Partner sites"]


def furniture(lang: str, kind: str) -> list[str]:
    return _LOCAL.get(lang, {}).get(kind) or _EN[kind]


@dataclass
class Doc:
    lang: str
    text: str
    paragraphs: list[str]
    subheadings: list[str]
    title: str
    furniture: list[str]
    encoding: str = "utf-8"


def _phrase(sentence: str, lang: str, words: int) -> str:
    """A headline-like phrase: the start of a sentence, no sentence mark."""
    sentence = sentence.strip()
    cut = sentence[: words * 3] if lang in _UNSPACED else " ".join(sentence.split()[:words])
    return cut.rstrip(".,;:!?。、，！？।۔؟ ")


def _paragraph(sentences: Sequence[str], lang: str) -> str:
    if lang == "th":
        # Leipzig's Thai sentences end in "."; Thai text has no sentence marks.
        sentences = [s.rstrip(".") for s in sentences]
    return ("" if lang in {"ja", "zh"} else " ").join(s.strip() for s in sentences)


def build_document(lang: str, sentences: Sequence[str], rng: random.Random) -> Doc:
    """One article: title, paragraphs, a subheading or two, furniture at known places."""
    pool = list(sentences)
    rng.shuffle(pool)
    paragraphs: list[str] = []
    while pool and len(paragraphs) < rng.randint(4, 8):
        take = rng.randint(2, 4)
        paragraphs.append(_paragraph(pool[:take], lang))
        pool = pool[take:]
    headline_source = pool or list(sentences)
    title = _phrase(headline_source[0], lang, 7)
    subheadings = [_phrase(s, lang, 4) for s in headline_source[1 : 1 + rng.randint(1, 2)]]
    teasers = [_phrase(s, lang, 8) for s in headline_source[3:6]]

    def pick(kind: str) -> str:
        line = rng.choice(furniture(lang, kind))
        return line.format(headline=teasers[0] if teasers else title)

    top = [pick("nav"), pick("menubar"), pick(rng.choice(["nav", "loading"]))]
    top += [pick(rng.choice(["byline", "dateline"]))] if rng.random() < 0.5 else []
    body: list[str] = [title]
    middle: list[str] = []
    slots = set(rng.sample(range(1, len(paragraphs)), k=min(len(paragraphs) - 1, 2)))
    sub_slots = iter(subheadings)
    for i, paragraph in enumerate(paragraphs):
        if i in slots:
            # Now and then a site's own label no rule knows: only learning it from the
            # corpus (the site's other documents) can take it out of the middle.
            kinds = ["ad", "cta", "share", "readmore", "photo", "print"]
            line = rng.choice(_UNKNOWN) if rng.random() < 0.3 else pick(rng.choice(kinds))
            body.append(line)
            middle.append(line)
        elif i and i % 3 == 0:
            heading = next(sub_slots, None)
            if heading:
                body.append(heading)
        body.append(paragraph)
    used = [h for h in subheadings if h in body]
    bottom = [pick("share"), pick("share"), pick("print")]
    bottom += [rng.choice(_UNKNOWN)] if rng.random() < 0.5 else []
    bottom += [pick(rng.choice(["cta", "follow", "app"])), pick("tags")]
    if rng.random() < 0.5:
        bottom += [pick("related"), *teasers[:3]]
    bottom += [pick("comments"), pick("copyright"), pick("cookie"), pick("consent")]
    bottom += [pick("loading")] if rng.random() < 0.3 else []
    lines = [*top, *body, *bottom]
    sep = "\n\n" if rng.random() < 0.5 else "\n"
    return Doc(lang, sep.join(lines), paragraphs, used, title, [*top, *middle, *bottom])


def encode(doc: Doc, rng: random.Random) -> bytes:
    """UTF-8, UTF-16 or the language's legacy code page (when the text fits it)."""
    legacy = _LEGACY.get(doc.lang) or ("cp1252" if doc.lang in _LATIN1_LANGS else None)
    choices = ["utf-8", "utf-16"] + ([legacy] if legacy else [])
    codec = rng.choice(choices)
    try:
        data = doc.text.encode(codec)
    except UnicodeEncodeError:
        codec, data = "utf-8", doc.text.encode("utf-8")
    doc.encoding = codec
    return data


@dataclass
class Tally:
    docs: int = 0
    wrong_decode: int = 0
    paragraphs: int = 0
    paragraphs_kept: int = 0
    subheadings: int = 0
    subheadings_kept: int = 0
    furniture: int = 0
    furniture_removed: int = 0
    lost: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    @property
    def content_kept(self) -> float:
        total = self.paragraphs + self.subheadings
        return (self.paragraphs_kept + self.subheadings_kept) / total if total else 1.0

    @property
    def furniture_share(self) -> float:
        return self.furniture_removed / self.furniture if self.furniture else 1.0

    def add(self, other: Tally) -> None:
        for name in (
            "docs",
            "wrong_decode",
            "paragraphs",
            "paragraphs_kept",
            "subheadings",
            "subheadings_kept",
            "furniture",
            "furniture_removed",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _nfc(line: str) -> str:
    """A labelled line as a correct decode gives it back: the source sentences hold C1
    controls and mojibake (cp1252 round trips) that the encoding stage repairs, so the
    reference is the line through the UTF-8 path of ``decode``."""
    decoded = decode(line.strip().encode("utf-8"))
    if isinstance(decoded, Decoded):
        return decoded.text.strip()
    return unicodedata.normalize("NFC", line.strip())


def clean_document(data: bytes, rules: RuleSet) -> tuple[str | None, Decoded | None]:
    """The real stages on one document's bytes: the cleaned text (None when rejected)."""
    decoded = decode(data)
    if not isinstance(decoded, Decoded):
        return None, None
    cleaned = clean(decoded.text, rules)
    return (cleaned.text if isinstance(cleaned, Cleaned) else None), decoded


def score(doc: Doc, output: str | None, decoded: Decoded | None, tally: Tally) -> None:
    """Count what stayed of each labelled line of one document."""
    out = {line.strip() for line in output.split("\n")} if output is not None else set()
    if decoded is None or decoded.text != _nfc(doc.text):
        tally.wrong_decode += 1
    tally.docs += 1
    for paragraph in doc.paragraphs:
        tally.paragraphs += 1
        if _nfc(paragraph) in out:
            tally.paragraphs_kept += 1
        else:
            tally.lost.append(paragraph)
    for heading in doc.subheadings:
        tally.subheadings += 1
        tally.subheadings_kept += _nfc(heading) in out
    content = {_nfc(line) for line in [*doc.paragraphs, *doc.subheadings, doc.title]}
    for line in doc.furniture:
        if _nfc(line) in content:
            continue  # a teaser that happens to equal a content line
        tally.furniture += 1
        if _nfc(line) in out:
            tally.left.append(line)
        else:
            tally.furniture_removed += 1


def run(
    corpus: dict[str, list[str]],
    docs: int,
    seed: int,
    rules: RuleSet,
    learned: FurnitureSettings | None = None,
) -> dict[str, Tally]:
    """Per-language tallies over ``docs`` documents per language, reproducible by seed.

    Each language's documents are one site: with ``learned`` settings, lines repeated
    across them are learned and removed as the engine's corpus step does (same code)."""
    tallies: dict[str, Tally] = {}
    for lang in sorted(corpus):
        rng = random.Random(f"{seed}:{lang}")
        tally = tallies.setdefault(lang, Tally())
        built = [build_document(lang, corpus[lang], rng) for _ in range(docs)]
        cleaned = [clean_document(encode(doc, rng), rules) for doc in built]
        outputs = [text for text, _ in cleaned]
        if learned is not None and learned.enabled:
            lines = learn(
                ((lang, line_facts(text, learned)) for text in outputs if text is not None),
                learned,
            ).get(lang, frozenset())
            outputs = [_without(text, lines, learned) for text in outputs]
        for doc, output, (_, decoded) in zip(built, outputs, cleaned, strict=True):
            score(doc, output, decoded, tally)
    return tallies


def _without(text: str | None, lines: frozenset[bytes], settings: FurnitureSettings) -> str | None:
    if text is None or not lines:
        return text
    stripped = remove_learned(text, lines, settings)
    return text if stripped is None else stripped.text


_NUMBERED = re.compile(r"^\d+\s*[.)]\s*")


def load_sentences(language_dir: Path) -> dict[str, list[str]]:
    corpus: dict[str, list[str]] = {}
    for path in sorted(language_dir.glob("*/sentences.txt")):
        lines = [_NUMBERED.sub("", line).strip() for line in path.read_text("utf-8").splitlines()]
        corpus[path.parent.name] = [line for line in lines if len(line) >= 20]
    return corpus


def print_table(tallies: dict[str, Tally]) -> Tally:
    print(
        "| language | docs | content kept | paragraphs kept | furniture removed | wrong decodes |"
    )
    print("|---|---|---|---|---|---|")
    total = Tally()
    for lang, t in tallies.items():
        total.add(t)
        print(
            f"| {lang} | {t.docs} | {t.content_kept:.3f} | {t.paragraphs_kept}/{t.paragraphs} "
            f"| {t.furniture_share:.3f} | {t.wrong_decode} |"
        )
    print(
        f"| **all** | {total.docs} | **{total.content_kept:.3f}** | "
        f"{total.paragraphs_kept}/{total.paragraphs} | **{total.furniture_share:.3f}** | "
        f"{total.wrong_decode} |"
    )
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "benchmarks"))
    parser.add_argument("--docs", type=int, default=8, help="documents per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=0, help="list up to N misses per language")
    parser.add_argument(
        "--no-learned", action="store_true", help="without the learned-furniture step"
    )
    args = parser.parse_args(argv)
    language_dir = Path(args.shared) / "language"
    if not language_dir.is_dir():
        print(f"no language set at {language_dir}", file=sys.stderr)
        return 2
    rules, _ = load_rules(RunParameters())
    start = time.perf_counter()
    learned = None if args.no_learned else FurnitureSettings()
    tallies = run(load_sentences(language_dir), args.docs, args.seed, rules, learned)
    elapsed = time.perf_counter() - start
    total = print_table(tallies)
    worst = min(tallies.items(), key=lambda kv: kv[1].content_kept)
    print(
        f"\nlowest content kept: {worst[0]} {worst[1].content_kept:.3f}; "
        f"{total.docs} documents in {elapsed:.1f} s; learned furniture "
        + ("off" if learned is None else "on (each language's documents are one site)")
    )
    if args.show:
        for lang, t in tallies.items():
            for line in t.lost[: args.show]:
                print(f"LOST {lang}: {line[:100]}")
            for line in t.left[: args.show]:
                print(f"LEFT {lang}: {line[:100]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
