"""Measure translation pairing: precision/recall, paragraph alignment, and its cost.

    uv run python benchmarks/bench_pairs.py [--udhr ../shared/benchmarks/language-udhr]
        [--rounds 3] [--corpus /tmp/corpus-6000] [--scale 10000,100000]

* **UDHR documents**: the Universal Declaration in the languages whose 59 paragraphs follow
  the English ones one for one (length correlation with English >= 0.97 after dropping a
  heading line; the reference alignment is then paragraph i <-> paragraph i). Each story
  is a window of 6-8 consecutive paragraphs published in 4 languages; each document
  independently loses a paragraph, has two paragraphs merged, and gets captions or
  furniture lines between paragraphs. Hard negatives: excerpts in other languages that
  overlap a story's window by at most half, or are its neighbour (those around one place
  in one language, so no two of them translate each other); they share its names and
  style but translate no document of the corpus.
* **Seeds**: the German/English pair through the engine.
* **Cost**: CPU of the corpus pairing step against the whole run (in-process engine, so
  process time counts everything) on the UDHR documents and, with ``--corpus``, on a corpus
  made by ``generate_corpus.py``; candidate generation alone on synthetic facts; with
  ``--release OUT`` (an output folder a ``corpus run`` published to), the step alone
  (``apply_pairs``) on a copy of its current release's shards, as a run calls it: CPU,
  wall, the process's peak RSS, and the counts.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.engine.pairs import (  # noqa: E402
    Doc,
    PairSettings,
    candidates,
    link,
    paragraph_facts,
)
from flows.engine.plan import prepare  # noqa: E402
from flows.engine.run import InlineRunner, execute  # noqa: E402
from flows.models import RunParameters  # noqa: E402
from flows.stages.align import Paragraph, align_linked, paragraphs  # noqa: E402

DEFAULT_UDHR = REPO.parent / "shared" / "benchmarks" / "language-udhr"
T = TypeVar("T")

CAPTIONS = [
    "Photo: United Nations 1948",
    "Eleanor Roosevelt holding the Declaration",
    "UN Photo / Archive",
    "Share this page",
    "Image 3 of 12",
    "Palais de Chaillot, Paris",
    "Related: Human Rights Day",
]


def load(udhr: Path) -> dict[str, list[str]]:
    """Languages whose paragraphs follow the English ones one for one."""
    english = _lines(udhr / "en" / "udhr.txt")
    out = {}
    for folder in sorted(p for p in udhr.iterdir() if p.is_dir()):
        lines = _lines(folder / "udhr.txt")
        best = None
        for offset in range(len(lines) - len(english) + 1):
            window = lines[offset : offset + len(english)]
            r = statistics.correlation([len(x) for x in english], [len(y) for y in window])
            if best is None or r > best[0]:
                best = (r, window)
        if best is not None and best[0] >= 0.97:
            out[folder.name] = best[1]
    return out


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class BenchDoc:
    id: str
    language: str
    text: str
    refs: list[frozenset[int]]  # per paragraph (non-blank line): UDHR indexes, empty = furniture
    story: int | None  # None: a hard negative
    window: tuple[int, int] = (0, 0)


def make_doc(
    doc_id: str,
    language: str,
    lines: Sequence[str],
    window: range,
    rng: random.Random,
    story: int | None,
    edited: bool = True,
) -> BenchDoc:
    units: list[tuple[str, frozenset[int]]] = [(lines[k], frozenset({k})) for k in window]
    span = (window.start, window.stop)
    if not edited:
        text = "\n\n".join(lines[k] for k in window)
        return BenchDoc(doc_id, language, text, [frozenset({k}) for k in window], story, span)
    if len(units) > 4 and rng.random() < 0.4:  # a paragraph dropped
        del units[rng.randrange(1, len(units) - 1)]
    if len(units) > 4 and rng.random() < 0.4:  # two paragraphs merged into one
        k = rng.randrange(len(units) - 1)
        units[k : k + 2] = [(units[k][0] + " " + units[k + 1][0], units[k][1] | units[k + 1][1])]
    if rng.random() < 0.6:  # captions or furniture between paragraphs
        for _ in range(rng.randint(1, 3)):
            units.insert(rng.randrange(len(units) + 1), (rng.choice(CAPTIONS), frozenset()))
    text = "\n\n".join(text for text, _ in units)
    return BenchDoc(doc_id, language, text, [r for _, r in units], story, span)


def build(texts: dict[str, list[str]], rounds: int, seed: int) -> list[BenchDoc]:
    """Stories on fixed windows of 7 paragraphs (starts 0, 8, 16, ...): each round publishes
    every window as an original and its edited translation, in two languages drawn anew (so
    one window is in several languages across rounds, and all of them translate each
    other). Hard negatives: excerpts starting 3-5 paragraphs into a window, of 6-8
    paragraphs, that overlap each story by at most half (two or three paragraphs), all
    excerpts around one place in one language: they share names and style with two stories
    and translate nothing in the corpus."""
    rng = random.Random(seed)
    languages = sorted(texts)
    docs: list[BenchDoc] = []
    total = len(next(iter(texts.values())))
    starts = range(0, total - 7 + 1, 8)
    story = 0
    # Each window's languages are drawn without replacement: one document per language.
    order = {start: rng.sample(languages, len(languages)) for start in starts}
    for round_ in range(min(rounds, len(languages) // 2)):
        for start in starts:
            window = range(start, start + 7)
            cluster = order[start][2 * round_ : 2 * round_ + 2]
            for edited, language in enumerate(cluster):
                docs.append(
                    make_doc(
                        f"s{story}-{language}",
                        language,
                        texts[language],
                        window,
                        rng,
                        story,
                        bool(edited),
                    )
                )
            story += 1
    # Excerpts that overlap every story by at most half of the shorter document (more, and
    # they are that story with paragraphs dropped, which is what a translation here is).
    # The excerpts around one place are in one language, so they translate nothing either.
    stories = [range(start, start + 7) for start in starts]
    for start in starts:
        language = rng.choice(languages)
        for offset, size in itertools.product((3, 4, 5), (6, 7, 8)):
            begin = start + offset
            window = range(begin, begin + size)
            if begin + size > total or any(
                len(set(window) & set(story)) > min(size, len(story)) // 2 for story in stories
            ):
                continue
            docs.append(
                make_doc(
                    f"n{begin}-{size}-{language}",
                    language,
                    texts[language],
                    window,
                    rng,
                    None,
                    False,
                )
            )
    return docs


def as_doc(item: BenchDoc, index: int) -> Doc:
    facts = paragraph_facts(item.text)
    return Doc(
        id=item.id,
        source_path=f"{index:05d}.txt",
        language=item.language,
        file="documents/part-00000.parquet",
        text_sha256="",
        url=None,
        published=None,
        source=None,
        paragraphs=tuple(facts.paragraphs()),
    )


def evaluate(docs: list[BenchDoc], settings: PairSettings) -> None:
    facts = [as_doc(d, i) for i, d in enumerate(docs)]
    started = time.process_time()
    found = candidates(facts, settings)
    candidate_cpu = time.process_time() - started
    started = time.process_time()
    links = link(facts, found, settings)
    link_cpu = time.process_time() - started
    # Translations: two documents cut from the same window (a negative may happen to share
    # its window with another negative: they translate each other too).
    truth = {
        frozenset((a.id, b.id))
        for a, b in itertools.combinations(docs, 2)
        if a.language != b.language and a.window == b.window
    }
    found_truth = {
        frozenset((a.id, b.id)) for (i, j) in found for a, b in [(docs[i], docs[j])]
    } & truth
    made = {frozenset((docs[item.a].id, docs[item.b].id)) for item in links}
    right = made & truth
    precision = len(right) / len(made) if made else 0.0
    recall = len(right) / len(truth) if truth else 0.0
    print(
        f"UDHR: {len(docs)} documents ({len(docs) - len({x for pair in truth for x in pair})} without a translation), "
        f"{len(truth)} true pairs; {len(found)} candidates ({len(found_truth)} true: candidate "
        f"recall {len(found_truth) / len(truth):.3f}); {len(made)} links"
    )
    print(f"  pair precision {precision:.3f}  recall {recall:.3f}")
    print(f"  candidates {candidate_cpu:.3f} s CPU, linking (facts alignment) {link_cpu:.3f} s CPU")
    by_pair: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    steps = correct = reference = 0
    wrong_links = Counter()
    for item in links:
        a, b = docs[item.a], docs[item.b]
        key = "-".join(sorted((_script(a.language), _script(b.language))))
        stats = by_pair[key]
        if frozenset((a.id, b.id)) not in truth:
            overlap = len(set(range(*a.window)) & set(range(*b.window)))
            wrong_links["overlapping" if overlap else "neighbouring or apart"] += 1
            continue
        result = align_linked(paragraphs(a.text), paragraphs(b.text))  # as pair_rows does
        ok = sum(
            1
            for bead in result.aligned
            if _refs(a, bead.a) and _refs(a, bead.a) == _refs(b, bead.b)
        )
        ref = len({k for r in a.refs for k in r} & {k for r in b.refs for k in r})
        steps += len(result.aligned)
        correct += ok
        reference += _reference_steps(a, b)
        stats[0] += 1
        stats[1] += len(result.aligned)
        stats[2] += ok
        stats[3] += ref
    print(
        f"  paragraph alignment: {correct}/{steps} steps right ({correct / max(1, steps):.3f}); "
        f"reference steps found {correct}/{reference} ({correct / max(1, reference):.3f})"
    )
    if wrong_links:
        print(f"  wrong links: {dict(wrong_links)}")
    print("  by script pair: pairs linked, steps right")
    for key, (n, s, ok, _) in sorted(by_pair.items()):
        print(f"    {key:24} {n:4d}  {ok}/{s} ({ok / max(1, s):.3f})")
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair in truth:
        a, b = sorted(pair)
        lang = "-".join(sorted((a.rsplit("-", 1)[-1], b.rsplit("-", 1)[-1])))
        by_language[lang][0] += 1
        by_language[lang][1] += pair in made
    worst = sorted(by_language.items(), key=lambda kv: (kv[1][1] / kv[1][0], kv[0]))[:8]
    print(
        f"  recall by language pair ({len(by_language)} pairs), lowest: "
        + ", ".join(f"{k} {found}/{n}" for k, (n, found) in worst)
    )


def _refs(doc: BenchDoc, indexes: Sequence[int]) -> frozenset[int]:
    return frozenset().union(*(doc.refs[i] for i in indexes))


def _reference_steps(a: BenchDoc, b: BenchDoc) -> int:
    """Steps of the reference alignment: groups of paragraphs sharing UDHR indexes."""
    count = 0
    for refs in a.refs:
        if refs and any(refs & other for other in b.refs):
            count += 1
    merged_b = sum(
        1 for refs in b.refs if len(refs) > 1 and sum(bool(refs & r) for r in a.refs) > 1
    )
    return count - merged_b


_SCRIPTS = {"ru": "Cyrillic", "mk": "Cyrillic", "bn": "Bengali", "mr": "Devanagari"}


def _script(language: str) -> str:
    return f"{_SCRIPTS.get(language, 'Latin')}"


class TimingRunner(InlineRunner):
    """The in-process runner, timing each step's CPU."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        started = time.process_time()
        try:
            return fn(*args)
        finally:
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - started


def engine_cost(source: Path, label: str, **changes: Any) -> None:
    with tempfile.TemporaryDirectory() as out:
        runner = TimingRunner()
        started, wall = time.process_time(), time.perf_counter()
        result = execute(
            prepare(RunParameters(source=str(source), out=out, workers=1, **changes)), runner
        )
        total, wall = time.process_time() - started, time.perf_counter() - wall
        pairs = runner.cpu.get("pairs", 0.0)
        corpus = result.manifest.pairs if result.manifest else {}
        print(
            f"{label}: whole run {total:.2f} s CPU ({wall:.2f} s wall), pairing step "
            f"{pairs:.3f} s CPU = {100 * pairs / total:.1f} %; "
            f"{corpus.get('pair_candidates', 0)} candidates, {corpus.get('translation_pairs', 0)} pairs, "
            f"{corpus.get('bitext_segments', 0)} bitext rows, "
            f"{corpus.get('no-counterpart-in-translation', 0)} lines removed"
        )


def release_cost(out: Path) -> None:
    """The pairs step alone on a copy of a published release's shards (the staging a run
    hands it): the facts read, candidates, linking, the tables written."""
    import resource
    import shutil

    import pandas  # noqa: F401  (loaded by any run before the step; pyarrow loads it lazily)

    from flows.engine.corpus import read_facts
    from flows.engine.pairs import apply_pairs, pair_settings

    shards = (out / "current" / "shards").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "shards"
        shutil.copytree(shards, staging)
        read_facts(staging, ("id",))  # the Parquet reader warm, as after the steps before
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started, wall = time.process_time(), time.perf_counter()
        _, counts = apply_pairs(staging, pair_settings(True, True))
        cpu, wall = time.process_time() - started, time.perf_counter() - wall
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"pairs step on {out}: {cpu:.3f} s CPU ({wall:.3f} s wall), peak RSS {peak:.0f} MB "
        f"({before:.0f} MB before); {counts.get('pair_candidates', 0)} candidates, "
        f"{counts.get('translation_pairs', 0)} pairs"
    )


def seeds() -> None:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as out:
        execute(prepare(RunParameters(source=str(REPO / "seeds"), out=out)), InlineRunner())
        pairs = pq.read_table(Path(out) / "current" / "pairs").to_pylist()
        docs = {r["id"]: r for r in pq.read_table(Path(out) / "current" / "documents").to_pylist()}
    for row in pairs:
        moves = Counter(f"{len(s['a'])}-{len(s['b'])}" for s in row["aligned"])
        a = sum(len(s["a"]) for s in row["aligned"])
        b = sum(len(s["b"]) for s in row["aligned"])
        print(
            f"seeds: {row['language_a']}-{row['language_b']} score {row['score']:.3f} "
            f"signals {row['signals']}: {a} {row['language_a']} paragraphs aligned to {b} "
            f"{row['language_b']} ({dict(moves)}), unaligned {row['unaligned_a']} / {row['unaligned_b']}"
        )
        for doc_id in (row["id_a"], row["id_b"]):
            gone = [
                r["text"]
                for r in docs[doc_id]["removed"]
                if r["rule"] == "no-counterpart-in-translation"
            ]
            print(f"  {doc_id} title {docs[doc_id]['title']!r}; removed as no-counterpart: {gone}")
    if not pairs:
        print("seeds: no pair found")


def scale(sizes: Sequence[int], seed: int) -> None:
    """Candidate generation alone on synthetic facts: near-linear?"""
    rng = random.Random(seed)
    languages = [f"l{i}" for i in range(12)]
    for n in sizes:
        docs = []
        for i in range(n):
            count = rng.randint(5, 40)
            paras = tuple(
                Paragraph(
                    k,
                    rng.randint(40, 900),
                    frozenset(f"n:{int(rng.paretovariate(0.6))}" for _ in range(rng.randint(0, 2))),
                    rng.random() < 0.1,
                )
                for k in range(count)
            )
            docs.append(
                Doc(f"d{i}", f"p{i}", rng.choice(languages), "f", "", None, None, None, paras)
            )
        started = time.process_time()
        found = candidates(docs)
        cpu = time.process_time() - started
        print(
            f"candidates at {n:,} documents of facts: {cpu:.2f} s CPU, {len(found):,} candidate pairs ({len(found) / n:.1f} per document)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--udhr", type=Path, default=DEFAULT_UDHR)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, help="a generate_corpus.py folder for the cost")
    parser.add_argument("--scale", default="10000,100000", help="documents of synthetic facts")
    parser.add_argument(
        "--release",
        type=Path,
        action="append",
        help="an output folder of `corpus run`: time the pairs step alone on its facts "
        "(repeatable; with it, nothing else is measured)",
    )
    args = parser.parse_args(argv)
    if args.release:
        for out in args.release:
            release_cost(out)
        return 0
    seeds()
    settings = PairSettings()
    if args.udhr.is_dir():
        texts = load(args.udhr)
        print(
            f"UDHR languages aligned one for one with English: {len(texts)}: {' '.join(sorted(texts))}"
        )
        docs = build(texts, args.rounds, args.seed)
        evaluate(docs, settings)
        with tempfile.TemporaryDirectory() as source:
            for d in docs:
                Path(source, f"{d.id}.txt").write_text(d.text, encoding="utf-8")
            engine_cost(Path(source), f"engine on the {len(docs)} UDHR documents")
    else:
        print(f"{args.udhr}: not found; UDHR figures skipped")
    if args.corpus:
        engine_cost(args.corpus, f"engine on {args.corpus}")
    if args.scale:
        scale([int(x) for x in args.scale.split(",")], args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
