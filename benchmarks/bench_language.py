"""Measure language detection on labelled data: our stage beside lingua.

    uv run python benchmarks/bench_language.py [--shared ../shared/benchmarks] [--limit 200]
        [--detectors ours,lingua-low,lingua-high] [--stage-file flows/stages/language.py]
        [--no-mixed]

Data: lingua's test sets (sentences, word pairs, single words; only the languages
langdetect has a profile for: lingua ``nb`` is langdetect ``no``, lingua ``zh`` counts
``zh-cn`` and ``zh-tw``) and the UDHR paragraphs of langdetect's 55 languages (scored
strictly: ``zh-cn`` is not ``zh-tw``; lingua has one ``zh``, which counts for both, and no
Kannada, Malayalam or Nepali, so those are left out of its UDHR figures).

``ours`` is ``detect_language`` from the stage file with its floors (``und`` under
``min_letters`` letters or ``min_confidence``); each text is detected once without floors
and the floors are applied afterwards, so the length and confidence tables come from the
same calls. ms/text is that unfloored call (a floored ``und`` costs ~nothing). lingua is
restricted to the languages langdetect knows; it answers ``und`` only when it has no answer.
The mixed-document section builds documents of lingua sentences (one per line):
monolingual, one foreign line in eight, and half-and-half, and reports how many the stage
flags as mixed.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stage import load_module  # noqa: E402

KINDS = ("single-words", "word-pairs", "sentences")
NOT_IN_LINGUA = frozenset({"kn", "ml", "ne"})
UND = "und"


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # one of KINDS or "udhr"
    gold: str  # langdetect code
    text: str


@dataclass(frozen=True, slots=True)
class Answer:
    language: str
    confidence: float
    letters: int
    seconds: float


def load_stage(stage_file: Path | None) -> ModuleType:
    if stage_file is None:
        from flows.stages import language

        return language
    return load_module(stage_file)


def langdetect_languages() -> list[str]:
    from langdetect.detector_factory import PROFILES_DIRECTORY

    return sorted(p.name for p in Path(PROFILES_DIRECTORY).iterdir())


def items(shared: Path, limit: int) -> list[Item]:
    supported = set(langdetect_languages())
    found: list[Item] = []
    for folder in sorted((shared / "language").iterdir()):
        gold = {"nb": "no", "zh": "zh"}.get(folder.name, folder.name)
        if gold not in supported and gold != "zh":
            continue
        for kind in KINDS:
            lines = [
                line
                for line in (folder / f"{kind}.txt").read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
            found.extend(Item(kind, gold, line) for line in lines[: limit or None])
    for folder in sorted(p for p in (shared / "language-udhr").iterdir() if p.is_dir()):
        lines = (folder / "udhr.txt").read_text(encoding="utf-8").splitlines()
        found.extend(Item("udhr", folder.name, line) for line in lines if line.strip())
    return found


def correct(item: Item, language: str) -> bool:
    if item.gold == "zh":
        return language in {"zh", "zh-cn", "zh-tw"}
    if language == "zh" and item.gold in {"zh-cn", "zh-tw"}:
        return True  # lingua has one Chinese
    return language == item.gold


def run_ours(stage: ModuleType, data: list[Item]) -> list[Answer]:
    raw = stage.LanguageSettings(min_letters=0, min_confidence=0.0)
    if hasattr(raw, "paragraph_samples"):
        raw = stage.LanguageSettings(min_letters=0, min_confidence=0.0, paragraph_samples=0)
    stage.warm_up(0)
    answers = []
    for item in data:
        start = time.perf_counter()
        result = stage.detect_language(item.text, raw)
        seconds = time.perf_counter() - start
        answers.append(Answer(result.language, result.confidence, result.sample_letters, seconds))
    return answers


def floored(answer: Answer, min_letters: int, min_confidence: float) -> str:
    if answer.letters < min_letters or answer.confidence < min_confidence:
        return UND
    return answer.language


def lingua_runner(low: bool) -> Callable[[list[Item]], list[Answer]]:
    def run(data: list[Item]) -> list[Answer]:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        languages = []
        for code in langdetect_languages():
            iso = {"no": "nb", "zh-cn": "zh", "zh-tw": "zh"}.get(code, code)
            try:
                languages.append(Language.from_iso_code_639_1(IsoCode639_1.from_str(iso)))
            except ValueError:
                continue  # kn, ml, ne: not in lingua
        builder = LanguageDetectorBuilder.from_languages(*set(languages))
        detector = (builder.with_low_accuracy_mode() if low else builder).build()
        detector.detect_language_of("warm up the models")
        answers = []
        for item in data:
            start = time.perf_counter()
            found = detector.detect_language_of(item.text)
            seconds = time.perf_counter() - start
            code = UND if found is None else found.iso_code_639_1.name.lower()
            code = {"nb": "no"}.get(code, code)
            answers.append(Answer(code, 1.0, len(item.text), seconds))
        return answers

    return run


def summary(
    name: str,
    data: list[Item],
    answers: list[str],
    seconds: list[float],
    skip: frozenset[str] = frozenset(),
) -> None:
    keep = [i for i, item in enumerate(data) if item.gold not in skip]
    data = [data[i] for i in keep]
    answers = [answers[i] for i in keep]
    seconds = [seconds[i] for i in keep]
    print(f"\n### {name}\n")
    print("| set | languages | texts | accuracy (macro) | und | right when answered | ms/text |")
    print("|---|---|---|---|---|---|---|")
    for kind in (*KINDS, "udhr"):
        idx = [i for i, item in enumerate(data) if item.kind == kind]
        per_lang: dict[str, list[int]] = defaultdict(list)
        for i in idx:
            per_lang[data[i].gold].append(i)
        accs = [
            sum(correct(data[i], answers[i]) for i in ids) / len(ids) for ids in per_lang.values()
        ]
        und = sum(answers[i] == UND for i in idx)
        answered = [i for i in idx if answers[i] != UND]
        right = sum(correct(data[i], answers[i]) for i in answered)
        print(
            f"| {kind} | {len(per_lang)} | {len(idx)} | {statistics.mean(accs):.1%} | "
            f"{und / len(idx):.1%} | {right / max(len(answered), 1):.1%} | "
            f"{statistics.mean(seconds[i] for i in idx) * 1000:.2f} |"
        )


def per_language(
    data: list[Item], results: dict[str, list[str]], kinds: tuple[str, ...] = ("sentences", "udhr")
) -> None:
    names = list(results)
    print("\n### per language (accuracy %, und counted wrong)\n")
    print("| lang | " + " | ".join(f"{k} {n}" for k in kinds for n in names) + " |")
    print("|---|" + "---|" * (len(kinds) * len(names)))
    langs = sorted({item.gold for item in data})
    for lang in langs:
        cells = []
        for kind in kinds:
            idx = [i for i, item in enumerate(data) if item.kind == kind and item.gold == lang]
            for name in names:
                answers = results[name]
                cells.append(
                    f"{sum(correct(data[i], answers[i]) for i in idx) / len(idx) * 100:.0f}"
                    if idx
                    else "-"
                )
        print(f"| {lang} | " + " | ".join(cells) + " |")


def by_length(data: list[Item], raw: list[Answer]) -> None:
    # lingua's three sets only: they span every length; UDHR paragraphs are all long.
    keep = [i for i, item in enumerate(data) if item.kind != "udhr"]
    data = [data[i] for i in keep]
    raw = [raw[i] for i in keep]
    print("\n### unfloored detection by letters (CJK count twice), lingua's three sets\n")
    edges = [0, 10, 20, 30, 40, 60, 80, 160, 10**9]
    print("| letters | texts | accuracy |")
    print("|---|---|---|")
    for low, high in itertools.pairwise(edges):
        idx = [i for i, a in enumerate(raw) if low <= a.letters < high]
        if idx:
            right = sum(correct(data[i], raw[i].language) for i in idx)
            print(
                f"| {low}-{high if high < 10**9 else '∞'} | {len(idx)} | {right / len(idx):.1%} |"
            )
    print("\n### floors: share of texts answered and right when answered (lingua's sets)\n")
    print("| min_letters | min_confidence | answered | right when answered | right overall |")
    print("|---|---|---|---|---|")
    for letters in (20, 30, 40, 50):
        for conf in (0.5, 0.8, 0.9, 0.95):
            answers = [floored(a, letters, conf) for a in raw]
            answered = [i for i, a in enumerate(answers) if a != UND]
            right = sum(correct(data[i], answers[i]) for i in answered)
            print(
                f"| {letters} | {conf} | {len(answered) / len(raw):.1%} | "
                f"{right / max(len(answered), 1):.2%} | {right / len(raw):.1%} |"
            )


def mixed_documents(stage: ModuleType, shared: Path, count: int, overrides: dict[str, Any]) -> None:
    if not hasattr(stage.LanguageResult, "__dataclass_fields__") or (
        "mixed" not in stage.LanguageResult.__dataclass_fields__
    ):
        print("\n### mixed documents: the stage has no mixed flag")
        return
    supported = set(langdetect_languages())
    sentences: dict[str, list[str]] = {}
    for folder in sorted((shared / "language").iterdir()):
        code = {"nb": "no"}.get(folder.name, folder.name)
        if code in supported:
            lines = (folder / "sentences.txt").read_text(encoding="utf-8").splitlines()
            usable = [line for line in lines if stage.letter_weight(line) >= 60]
            if len(usable) >= 16:  # ja has 412 sentences, most of them short
                sentences[code] = usable
    rng = random.Random(0)
    codes = sorted(sentences)
    settings = stage.LanguageSettings(**overrides)
    print(
        f"\n### mixed documents ({count} of each, 8 lingua sentences a document, one a line; "
        f"sampled lines {settings.paragraph_samples}, flagged below share {settings.mixed_below})\n"
    )
    print("| document | flagged mixed | median main share | no share | ms/doc | ms/doc unchecked |")
    print("|---|---|---|---|---|---|")
    unchecked = stage.LanguageSettings(paragraph_samples=0)
    for label, foreign in (("one language", 0), ("one foreign line in 8", 1), ("half-half", 4)):
        flagged = 0
        shares: list[float] = []
        none = 0
        spent = 0.0
        spent_unchecked = 0.0
        for _ in range(count):
            main, other = rng.sample(codes, 2)
            lines = rng.sample(sentences[main], 8 - foreign) + rng.sample(sentences[other], foreign)
            if foreign == 1:
                lines.insert(3, lines.pop())  # the quote sits inside the article
            text = "\n".join(lines)
            start = time.perf_counter()
            result = stage.detect_language(text, settings)
            spent += time.perf_counter() - start
            start = time.perf_counter()
            stage.detect_language(text, unchecked)
            spent_unchecked += time.perf_counter() - start
            flagged += result.mixed
            if result.main_share is None:
                none += 1
            else:
                shares.append(result.main_share)
        print(
            f"| {label} | {flagged}/{count} | {statistics.median(shares) if shares else '-'} | "
            f"{none} | {spent / count * 1000:.1f} | {spent_unchecked / count * 1000:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "benchmarks")
    parser.add_argument("--limit", type=int, default=200, help="lines per language and set")
    parser.add_argument("--detectors", default="ours,lingua-low,lingua-high")
    parser.add_argument("--stage-file", type=Path, help="another language.py (before/after)")
    parser.add_argument("--no-mixed", action="store_true")
    parser.add_argument("--mixed-count", type=int, default=200)
    parser.add_argument("--paragraph-samples", type=int, help="override the stage default")
    args = parser.parse_args()
    if not (args.shared / "language").is_dir():
        parser.error(f"no benchmark data at {args.shared}")
    stage = load_stage(args.stage_file)
    data = items(args.shared, args.limit)
    print(f"{len(data)} texts; --limit {args.limit} lines per language and set")
    results: dict[str, list[str]] = {}
    for name in filter(None, args.detectors.split(",")):
        if name == "ours":
            raw = run_ours(stage, data)
            defaults: Any = stage.LanguageSettings()
            answers = [floored(a, defaults.min_letters, defaults.min_confidence) for a in raw]
            label = (
                f"ours (min_letters {defaults.min_letters}, "
                f"min_confidence {defaults.min_confidence})"
            )
            summary(label, data, answers, [a.seconds for a in raw])
            summary("langdetect unfloored (same calls)", data, [a.language for a in raw],
                    [a.seconds for a in raw])  # fmt: skip
            by_length(data, raw)
            results["ours"] = answers
        elif name in {"lingua-low", "lingua-high"}:
            found = lingua_runner(low=name == "lingua-low")(data)
            summary(f"{name} (langdetect's languages)", data, [a.language for a in found],
                    [a.seconds for a in found], NOT_IN_LINGUA)  # fmt: skip
            results[name] = [a.language for a in found]
        else:
            parser.error(f"unknown detector {name}")
    if results:
        per_language(data, results)
    if not args.no_mixed:
        overrides = (
            {} if args.paragraph_samples is None else {"paragraph_samples": args.paragraph_samples}
        )
        mixed_documents(stage, args.shared, args.mixed_count, overrides)


if __name__ == "__main__":
    main()
