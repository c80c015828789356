"""Generate a reproducible synthetic corpus of scraped articles for the benchmarks.

    uv run python benchmarks/generate_corpus.py --docs 6000 --out /tmp/corpus-6000 [--seed 0]

Each document is 5-20 kB of real sentences in one language (from the lingua test data in
``../shared/benchmarks/language/<lang>/sentences.txt`` when present, else from a small
built-in word list so the script also runs on a plain clone), wrapped in the scrape
leftovers the boilerplate stage removes (menus, breadcrumbs, "Share this article",
"Advertisement", cookie notices, copyright lines, a trailing "Loading"), and encoded the way
real crawls are: mostly UTF-8, some with a BOM, some UTF-16, some in the legacy code page of
their language (cp1252/latin-1, cp1250, cp1251/koi8-r, cp1253, cp1254, shift_jis/euc-jp,
gb18030). About a third of the documents get a ``metadata.jsonl`` record (a few invalid on
purpose), and a few inputs are bad on purpose (empty, whitespace only, binary, nothing but
boilerplate), so a run exercises every path.

Reproducible: document ``i`` is drawn from its own ``random.Random(f"{seed}/{i}")``, so the
same arguments give a byte-identical corpus (the stamp file ``.corpus-generator.json``
holds a SHA-256 over every path and byte). Files are written one at a time, so 60,000
documents need no more memory than one.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO.parent / "shared" / "benchmarks"
STAMP = ".corpus-generator.json"
GENERATOR_VERSION = 1

# (language, weight): roughly the mix of a multilingual news crawl.
LANGUAGES: tuple[tuple[str, int], ...] = (
    ("en", 30),
    ("de", 12),
    ("fr", 9),
    ("es", 9),
    ("it", 5),
    ("pt", 5),
    ("nl", 4),
    ("sv", 2),
    ("pl", 4),
    ("cs", 2),
    ("ru", 7),
    ("el", 2),
    ("tr", 3),
    ("ja", 3),
    ("zh", 3),
)

# The code pages each language is still found in on the web.
LEGACY: dict[str, tuple[str, ...]] = {
    "en": ("cp1252", "latin-1"),
    "de": ("cp1252", "latin-1"),
    "fr": ("cp1252", "latin-1"),
    "es": ("cp1252", "latin-1"),
    "it": ("cp1252", "latin-1"),
    "pt": ("cp1252", "latin-1"),
    "nl": ("cp1252", "latin-1"),
    "sv": ("cp1252", "latin-1"),
    "pl": ("cp1250", "iso8859-2"),
    "cs": ("cp1250", "iso8859-2"),
    "ru": ("cp1251", "koi8-r"),
    "el": ("cp1253", "iso8859-7"),
    "tr": ("cp1254", "iso8859-9"),
    "ja": ("shift_jis", "euc-jp"),
    "zh": ("gb18030",),
}

# Share of documents per encoding family in the "mixed" profile; the rest is plain UTF-8.
UTF8_BOM_SHARE = 0.05
UTF16_SHARE = 0.03
LEGACY_SHARE = 0.12
MIN_BYTES = 5_000
MAX_BYTES = 20_000
DOCS_PER_FOLDER = 1_000

# A fallback vocabulary, used only when the shared sentences are absent: enough for
# langdetect to recognise the language and for documents to look like prose.
BUILTIN_WORDS: dict[str, str] = {
    "en": "the government said on monday that the new policy would help families and workers "
    "across the country while critics argued that the plan was too expensive and came too late "
    "for people who have already lost their homes because of rising prices and interest rates",
    "de": "die regierung hat am montag angekündigt dass die neue regelung familien und "
    "arbeitnehmer im ganzen land entlasten soll während kritiker bemängeln dass der plan zu "
    "teuer sei und für viele menschen zu spät komme weil die preise weiter steigen",
    "fr": "le gouvernement a annoncé lundi que la nouvelle politique aiderait les familles et "
    "les travailleurs dans tout le pays tandis que les critiques estiment que le projet est trop "
    "coûteux et arrive trop tard pour ceux qui ont déjà perdu leur logement",
    "es": "el gobierno anunció el lunes que la nueva política ayudaría a las familias y a los "
    "trabajadores de todo el país mientras los críticos sostienen que el plan es demasiado caro "
    "y llega demasiado tarde para quienes ya perdieron su vivienda",
    "ru": "правительство объявило в понедельник что новая политика поможет семьям и работникам "
    "по всей стране а критики считают что план слишком дорогой и появился слишком поздно для "
    "тех кто уже потерял своё жильё из-за роста цен",
}

MENUS: dict[str, tuple[str, ...]] = {
    "en": ("Home", "News", "World", "Business", "Sport", "Culture", "Opinion"),
    "de": ("Startseite", "Politik", "Wirtschaft", "Sport", "Kultur", "Meinung"),
    "fr": ("Accueil", "Actualités", "Monde", "Économie", "Sport", "Culture"),
    "es": ("Inicio", "Noticias", "Mundo", "Economía", "Deportes", "Cultura"),
}
ADVERTISEMENT = {
    "de": "Anzeige",
    "fr": "Publicité",
    "es": "Publicidad",
    "it": "Pubblicità",
    "nl": "Advertentie",
    "pl": "Reklama",
    "ru": "Реклама",
}
LOADING = {"de": "Wird geladen", "fr": "Chargement", "es": "Cargando", "ru": "Загрузка"}
SHARE = {"de": "Artikel teilen", "fr": "Partager cet article", "es": "Compartir"}
COOKIES = (
    "We use cookies to improve your experience. By continuing to browse this site, you agree "
    "to our use of cookies.",
    "This website uses cookies to ensure you get the best experience on our website. Accept "
    "all cookies",
    "Diese Website verwendet Cookies. Wenn Sie die Website weiter nutzen, stimmen Sie der "
    "Verwendung von Cookies zu.",
)
CREDITS = ("Photo: Reuters", "Foto: dpa", "Image: Getty Images", "Photo credit: AFP")
BAD_KINDS = ("empty", "whitespace", "binary", "only-boilerplate")


@dataclass(frozen=True, slots=True)
class Options:
    """What determines the corpus: same options, same bytes."""

    docs: int
    seed: int = 0
    encodings: str = "mixed"  # "mixed" or "utf-8"
    metadata_share: float = 0.3
    bad_share: float = 0.005
    # Mean article size in kB (each 0.5x-1.5x of it); None: the default 5-20 kB.
    size_kb: float | None = None

    def byte_range(self) -> tuple[int, int]:
        if self.size_kb is None:
            return MIN_BYTES, MAX_BYTES
        mean = int(self.size_kb * 1000)
        return mean // 2, mean * 3 // 2


@dataclass(slots=True)
class Vocabulary:
    """Sentences per language, and per (language, codec) those the codec can encode."""

    sentences: dict[str, tuple[str, ...]]
    source: str
    _encodable: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def for_codec(self, language: str, codec: str) -> tuple[str, ...]:
        key = (language, codec)
        if key not in self._encodable:
            self._encodable[key] = tuple(s for s in self.sentences[language] if _encodes(s, codec))
        return self._encodable[key]


@dataclass(frozen=True, slots=True)
class Document:
    """One generated input: its path, bytes and (maybe) metadata record."""

    path: str
    data: bytes
    language: str
    encoding: str
    kind: str  # "article" or one of BAD_KINDS
    metadata: dict[str, Any] | None


def _encodes(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _builtin_sentences(language: str) -> tuple[str, ...]:
    words = BUILTIN_WORDS[language].split()
    rng = random.Random(f"builtin/{language}")
    sentences = []
    for _ in range(200):
        picked = [rng.choice(words) for _ in range(rng.randint(8, 20))]
        sentences.append(" ".join(picked).capitalize() + ".")
    return tuple(sentences)


def load_vocabulary(shared: Path | None) -> Vocabulary:
    """Sentences of every language in :data:`LANGUAGES` found under ``shared``; else built-in."""
    folder = shared / "language" if shared else None
    if folder is not None and folder.is_dir():
        found: dict[str, tuple[str, ...]] = {}
        for language, _ in LANGUAGES:
            path = folder / language / "sentences.txt"
            if path.is_file():
                lines = path.read_text(encoding="utf-8").splitlines()
                found[language] = tuple(line.strip() for line in lines if len(line.strip()) > 20)
        if found:
            return Vocabulary(found, str(folder))
    return Vocabulary({lang: _builtin_sentences(lang) for lang in BUILTIN_WORDS}, "built-in")


def _pick_language(rng: random.Random, vocabulary: Vocabulary) -> str:
    choices = [(lang, weight) for lang, weight in LANGUAGES if lang in vocabulary.sentences]
    return rng.choices([c[0] for c in choices], weights=[c[1] for c in choices])[0]


def _pick_encoding(rng: random.Random, language: str, profile: str) -> str:
    if profile == "utf-8":
        return "utf-8"
    roll = rng.random()
    if roll < UTF8_BOM_SHARE:
        return "utf-8-sig"
    if roll < UTF8_BOM_SHARE + UTF16_SHARE:
        return "utf-16"  # Python writes a BOM (little-endian) for "utf-16"
    if roll < UTF8_BOM_SHARE + UTF16_SHARE + LEGACY_SHARE and language in LEGACY:
        return rng.choice(LEGACY[language])
    return "utf-8"


def _title(rng: random.Random, sentences: Sequence[str]) -> str:
    sentence = rng.choice(sentences).rstrip(".!?。")
    words = sentence.split()
    # Scripts without spaces (Japanese, Chinese): a headline of about 25 characters.
    return " ".join(words[:10]) if len(words) > 1 else sentence[:25]


def _header(rng: random.Random, language: str) -> list[str]:
    lines: list[str] = []
    menu = MENUS.get(language, MENUS["en"])
    if rng.random() < 0.4:
        lines.append("Skip to content")
    if rng.random() < 0.7:
        lines.append(" | ".join(menu))
    if rng.random() < 0.3:
        lines.append(f"{menu[0]} > {rng.choice(menu[1:])}")
    return lines


def _footer(rng: random.Random, language: str) -> list[str]:
    lines: list[str] = []
    if rng.random() < 0.3:
        lines.append("Tags: " + ", ".join(rng.sample(MENUS["en"][1:], 3)))
    if rng.random() < 0.4:
        lines.append(rng.choice(COOKIES))
    if rng.random() < 0.3:
        lines.append(f"© {rng.randint(2015, 2025)} Example News. All rights reserved.")
    if rng.random() < 0.25:
        lines.append(LOADING.get(language, "Loading"))
    return lines


def _inline(rng: random.Random, language: str) -> str | None:
    """A leftover between two paragraphs, or None."""
    roll = rng.random()
    if roll < 0.12:
        return ADVERTISEMENT.get(language, "Advertisement")
    if roll < 0.20:
        return SHARE.get(language, "Share this article")
    if roll < 0.24:
        return rng.choice(CREDITS)
    if roll < 0.27:
        return f"{rng.randint(2, 300)} comments"
    return None


def _article_lines(
    rng: random.Random, language: str, sentences: Sequence[str], target_bytes: int
) -> tuple[str, list[str]]:
    title = _title(rng, sentences)
    lines = [*_header(rng, language), title, ""]
    size = sum(len(line.encode("utf-8")) + 1 for line in lines)
    while size < target_bytes:
        paragraph = " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 7)))
        lines += [paragraph, ""]
        size += len(paragraph.encode("utf-8")) + 2
        leftover = _inline(rng, language)
        if leftover is not None:
            lines += [leftover, ""]
            size += len(leftover.encode("utf-8")) + 2
    lines += _footer(rng, language)
    return title, lines


def _encode(lines: list[str], encoding: str, crlf: bool) -> bytes:
    # Legacy code pages lose the lines they cannot represent (a localised menu, a ©), as a
    # real legacy page would never have held them.
    if encoding not in ("utf-8", "utf-8-sig", "utf-16"):
        lines = [line for line in lines if _encodes(line, encoding)]
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    return text.encode(encoding)


def _metadata(
    rng: random.Random, index: int, path: str, language: str, title: str
) -> dict[str, Any]:
    day = dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(5 * 365))
    record: dict[str, Any] = {
        "file_name": path,
        "id": f"bench-{index:07d}",
        "title": title,
        "url": f"https://news{index % 7}.example/{language}/{index}",
        "published": day.isoformat(),
        "authors": [f"Author {rng.randint(1, 500)}"],
        "license": "CC-BY-4.0",
        "source": f"news{index % 7}.example",
        "language": language,
    }
    if rng.random() < 0.1:
        record["section"] = rng.choice(MENUS["en"][1:])  # an unknown field: kept as extra
    if rng.random() < 0.01:
        record["published"] = f"{day.isoformat()}T10:00:00"  # naive date-time: invalid
    return record


def _bad_document(rng: random.Random, kind: str, path: str) -> Document:
    data = {
        "empty": b"",
        "whitespace": b" \n\t\n  \n",
        "binary": b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(2_000, 8_000)),
        "only-boilerplate": b"Home | News | World | Sport\nShare this article\nLoading\n",
    }[kind]
    return Document(path, data, "und", "none", kind, None)


def document(index: int, options: Options, vocabulary: Vocabulary) -> Document:
    """Document ``index`` of the corpus; depends only on (seed, index, options, vocabulary)."""
    rng = random.Random(f"{options.seed}/{index}")
    folder = f"part-{index // DOCS_PER_FOLDER:03d}"
    if rng.random() < options.bad_share:
        kind = rng.choice(BAD_KINDS)
        return _bad_document(rng, kind, f"{folder}/doc-{index:07d}-bad.txt")
    language = _pick_language(rng, vocabulary)
    encoding = _pick_encoding(rng, language, options.encodings)
    sentences = vocabulary.for_codec(language, encoding) or vocabulary.sentences[language]
    if not _encodes(sentences[0], encoding):
        encoding = "utf-8"
        sentences = vocabulary.sentences[language]
    title, lines = _article_lines(rng, language, sentences, rng.randint(*options.byte_range()))
    path = f"{folder}/doc-{index:07d}-{language}.txt"
    data = _encode(lines, encoding, crlf=rng.random() < 0.1)
    metadata = (
        _metadata(rng, index, path, language, title)
        if rng.random() < options.metadata_share
        else None
    )
    return Document(path, data, language, codecs.lookup(encoding).name, "article", metadata)


@dataclass(slots=True)
class Stats:
    """What was written."""

    docs: int = 0
    bytes: int = 0
    metadata_records: int = 0
    bad: int = 0
    encodings: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    digest: str = ""


def generate(out: Path, options: Options, vocabulary: Vocabulary) -> Stats:
    """Write the corpus to ``out`` (which must be empty or absent), one file at a time."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"generate_corpus: {out} is not empty")
    stats = Stats()
    digest = hashlib.sha256()
    with (out / "metadata.jsonl").open("w", encoding="utf-8") as metadata:
        for index in range(options.docs):
            doc = document(index, options, vocabulary)
            path = out / doc.path
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(doc.data)
            digest.update(f"{doc.path}\0{len(doc.data)}\0".encode())
            digest.update(doc.data)
            stats.docs += 1
            stats.bytes += len(doc.data)
            stats.bad += doc.kind != "article"
            stats.encodings[doc.encoding] = stats.encodings.get(doc.encoding, 0) + 1
            stats.languages[doc.language] = stats.languages.get(doc.language, 0) + 1
            if doc.metadata is not None:
                line = json.dumps(doc.metadata, ensure_ascii=False, sort_keys=True)
                metadata.write(line + "\n")
                digest.update(line.encode("utf-8"))
                stats.metadata_records += 1
    stats.digest = digest.hexdigest()
    return stats


def stamp(options: Options, vocabulary: Vocabulary, stats: Stats) -> dict[str, Any]:
    """The record written next to the documents: how to regenerate them and what came out."""
    return {
        "generator_version": GENERATOR_VERSION,
        "docs": options.docs,
        "seed": options.seed,
        "encodings": options.encodings,
        "metadata_share": options.metadata_share,
        "bad_share": options.bad_share,
        "size_kb": options.size_kb,
        "vocabulary": vocabulary.source,
        "bytes": stats.bytes,
        "metadata_records": stats.metadata_records,
        "bad_inputs": stats.bad,
        "by_encoding": dict(sorted(stats.encodings.items())),
        "by_language": dict(sorted(stats.languages.items())),
        "sha256": stats.digest,
    }


def read_stamp(out: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, required=True, help="number of documents")
    parser.add_argument("--out", type=Path, required=True, help="folder to create (empty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shared",
        type=Path,
        default=DEFAULT_SHARED,
        help="benchmark data folder (default ../shared/benchmarks); built-in words if absent",
    )
    parser.add_argument(
        "--encodings",
        choices=("mixed", "utf-8"),
        default="mixed",
        help="'mixed': realistic mix of encodings; 'utf-8': every article plain UTF-8",
    )
    parser.add_argument("--metadata-share", type=float, default=0.3)
    parser.add_argument("--bad-share", type=float, default=0.005)
    parser.add_argument(
        "--size-kb",
        type=float,
        help="mean article size in kB, each 0.5x-1.5x of it (default: 5-20 kB); "
        "1 for a million small inputs",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(
        args.docs, args.seed, args.encodings, args.metadata_share, args.bad_share, args.size_kb
    )
    vocabulary = load_vocabulary(args.shared)
    started = time.perf_counter()
    stats = generate(args.out, options, vocabulary)
    record = stamp(options, vocabulary, stats)
    (args.out / STAMP).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - started
    print(
        f"generated {stats.docs} documents ({stats.bytes / 1e6:.1f} MB, {stats.bad} bad inputs, "
        f"{stats.metadata_records} metadata records) in {args.out} in {seconds:.1f} s "
        f"from {vocabulary.source}"
    )
    print("encodings: " + ", ".join(f"{k} {v}" for k, v in record["by_encoding"].items()))
    print("languages: " + ", ".join(f"{k} {v}" for k, v in record["by_language"].items()))
    print(f"sha256: {stats.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
