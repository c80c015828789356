"""Score the boilerplate stage on the labelled articles set (../shared/benchmarks/articles).

Scoring follows articles/SOURCES.md exactly: bag of ``\\w+`` tokens of NFKC-normalised text
(case kept), multiset overlap per document; precision = overlap / output tokens, recall =
overlap / gold tokens, F1 per document, then the mean over documents (an empty or missing
output scores 0). Line recall: the share of gold lines found inside one output line after
casefolding and removing whitespace (pooled over all gold lines).

The "nothing" baseline (the raw dump) is scored in the same run: it must reproduce the
published 0.615 F1, which checks the scorer. The data is never copied into the repo.

    uv run python benchmarks/bench_boilerplate.py [--shared PATH] [--per-page] [--repeat N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.models import RunParameters  # noqa: E402
from flows.settings import load_rules  # noqa: E402
from flows.stages.boilerplate import Cleaned, RuleSet, clean  # noqa: E402
from flows.stages.language import detect_language  # noqa: E402

_TOKEN = re.compile(r"\w+")
# Whitespace, and the zero-width characters and soft hyphens the dumps dropped (some gold
# lines are a lone U+200B; they are not content lines).
_SPACE = re.compile(r"[\s\u00ad\u200b-\u200d\u2060\ufeff]+")


@dataclass(frozen=True)
class Page:
    name: str
    raw: str
    gold: str
    language: str


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    gold_lines: int
    gold_lines_found: int


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall(unicodedata.normalize("NFKC", text)))


def _squash(text: str) -> str:
    return _SPACE.sub("", text.casefold())


def score(output: str, gold: str) -> Score:
    """One document's token P/R/F1 and its gold lines found inside one output line."""
    out, ref = tokens(output), tokens(gold)
    overlap = sum((out & ref).values())
    precision = overlap / sum(out.values()) if out else 0.0
    recall = overlap / sum(ref.values()) if ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out_lines = [squashed for line in output.split("\n") if (squashed := _squash(line))]
    gold_lines = [squashed for line in gold.split("\n") if (squashed := _squash(line))]
    found = sum(1 for g in gold_lines if any(g in o for o in out_lines))
    return Score(precision, recall, f1, len(gold_lines), found)


def load_pages(articles: Path) -> list[Page]:
    pages = []
    for page in sorted((articles / "pages").glob("*.txt")):
        gold_file = articles / "gold" / page.name
        raw = page.read_text(encoding="utf-8")
        gold = gold_file.read_text(encoding="utf-8") if gold_file.exists() else ""
        # The page's language is the language of its article body.
        pages.append(Page(page.stem, raw, gold, detect_language(gold or raw).language))
    return pages


def ours(rules: RuleSet) -> Callable[[str], str]:
    def run(raw: str) -> str:
        result = clean(raw, rules)
        return result.text if isinstance(result, Cleaned) else ""

    return run


def summarise(scores: Sequence[Score]) -> tuple[float, float, float, float]:
    lines = sum(s.gold_lines for s in scores)
    return (
        statistics.fmean(s.precision for s in scores),
        statistics.fmean(s.recall for s in scores),
        statistics.fmean(s.f1 for s in scores),
        sum(s.gold_lines_found for s in scores) / lines if lines else 0.0,
    )


def table(pages: Sequence[Page], results: dict[str, list[Score]]) -> None:
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, page in enumerate(pages):
        by_lang[page.language].append(i)
    print("| cleaner | language | pages | token P | token R | token F1 | line recall |")
    print("|---|---|---|---|---|---|---|")
    for cleaner, scores in results.items():
        groups = [
            ("all", list(range(len(pages)))),
            *sorted(by_lang.items(), key=lambda kv: (-len(kv[1]), kv[0])),
        ]
        for lang, idx in groups:
            p, r, f, lr = summarise([scores[i] for i in idx])
            print(f"| {cleaner} | {lang} | {len(idx)} | {p:.3f} | {r:.3f} | {f:.3f} | {lr:.3f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "benchmarks"))
    parser.add_argument("--per-page", action="store_true", help="also list every page's F1")
    parser.add_argument("--repeat", type=int, default=3, help="timing repetitions")
    args = parser.parse_args(argv)
    articles = Path(args.shared) / "articles"
    if not (articles / "pages").is_dir():
        print(f"no articles set at {articles}", file=sys.stderr)
        return 2
    pages = load_pages(articles)
    rules, _ = load_rules(RunParameters())
    cleaners: dict[str, Callable[[str], str]] = {"nothing": lambda raw: raw, "ours": ours(rules)}
    results = {name: [score(run(p.raw), p.gold) for p in pages] for name, run in cleaners.items()}
    table(pages, results)

    run = cleaners["ours"]
    best = float("inf")
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        for page in pages:
            run(page.raw)
        best = min(best, time.perf_counter() - start)
    chars = sum(len(p.raw) for p in pages)
    print(
        f"\nspeed: {1000 * best / len(pages):.2f} ms per document "
        f"({len(pages)} pages, {chars / 1e6 / best:.1f} MB/s of text, best of {args.repeat})"
    )
    if args.per_page:
        print("\n| page | language | token P | token R | token F1 |")
        print("|---|---|---|---|---|")
        for page, s in sorted(zip(pages, results["ours"], strict=True), key=lambda x: x[1].f1):
            print(
                f"| {page.name[:12]} | {page.language} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
