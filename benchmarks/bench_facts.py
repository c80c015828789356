"""CPU per document of the facts the corpus step reads, piece by piece, and of quality signals.

    uv run python benchmarks/bench_facts.py /tmp/b16/corpus-6000-utf-8-s0-{1k,5k,20k}
    uv run python benchmarks/bench_facts.py CORPUS --sample 300 --repeat 3

For each corpus folder (``generate_corpus.py`` output, or any source folder): ``--sample``
inputs spread over it go through the stages once (``process_many``, not timed), then each
piece runs on the published texts ``--repeat`` times and the fastest pass counts (CPU
seconds, ``time.process_time``: blind to other load on the machine):

* ``signature``: the duplicate signatures (normalised hash and MinHash of word units), of
  all the texts together as the shard pass makes them (``dedup.signatures``),
* ``line hashes``: the learned-furniture candidates (``document_facts``),
* ``paragraphs``: the translation-pair facts (lengths, anchors, sentence and clause counts),
* ``facts_table``: the whole facts part of the sample, as the shard pass builds it,
* ``quality``: ``quality_signals`` (computed in the stages, shown here beside the facts).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

FACTS_FILE = "documents/part-00000.parquet"


def _fastest(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def measure(source: Path, sample: int, repeat: int) -> dict[str, float]:
    """Milliseconds of CPU per published document of each piece, on ``sample`` inputs."""
    from flows.contracts import documents_table
    from flows.engine.furniture import document_facts
    from flows.engine.pairs import paragraph_facts
    from flows.engine.plan import prepare
    from flows.engine.shard import facts_table
    from flows.models import RunParameters
    from flows.stages.compose import process_many
    from flows.stages.dedup import signatures
    from flows.stages.language import warm_up
    from flows.stages.quality import quality_signals

    warm_up()
    plan = prepare(RunParameters(source=str(source)), publish=False)
    inputs = [doc for job in plan.shards for doc in job.docs if doc.rejection is None]
    step = max(1, len(inputs) // max(1, sample))
    items = [(doc, (source / doc.source_path).read_bytes()) for doc in inputs[::step][:sample]]
    rows = process_many(items, plan.config).documents
    texts = [row.text for row in rows]
    removed = [
        [{"rule": r.rule, "text": r.text, "line": r.line} for r in row.removed] for row in rows
    ]
    table = documents_table(rows)
    pieces: dict[str, Callable[[], object]] = {
        "signature": lambda: signatures(texts),
        "line hashes": lambda: [document_facts(t, r) for t, r in zip(texts, removed, strict=True)],
        "paragraphs": lambda: [paragraph_facts(t, r) for t, r in zip(texts, removed, strict=True)],
        "facts_table": lambda: facts_table(table, set(), FACTS_FILE),
        "quality": lambda: [quality_signals(text) for text in texts],
    }
    n = max(1, len(texts))
    found = {name: 1000 * _fastest(run, repeat) / n for name, run in pieces.items()}
    found["documents"] = float(len(texts))
    found["mean chars"] = sum(map(len, texts)) / n
    return found


def render(results: dict[str, dict[str, float]]) -> str:
    names = ["signature", "line hashes", "paragraphs", "facts_table", "quality"]
    lines = [
        "| corpus | documents | mean chars | " + " | ".join(f"{n} ms" for n in names) + " |",
        "|---|---:|---:|" + "---:|" * len(names),
    ]
    for corpus, found in results.items():
        cells = [f"{found['documents']:.0f}", f"{found['mean chars']:.0f}"]
        cells += [f"{found[name]:.3f}" for name in names]
        lines.append(f"| {corpus} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", type=Path, help="source folders")
    parser.add_argument("--sample", type=int, default=300, help="inputs per corpus")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the fastest counts")
    args = parser.parse_args(argv)
    results = {path.name: measure(path, args.sample, args.repeat) for path in args.corpora}
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
