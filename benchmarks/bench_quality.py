"""What the quality signals cost in the shard pass, and what the release report costs at scale.

    uv run python benchmarks/generate_corpus.py --docs 1500 --out /tmp/corpus-1500
    uv run python benchmarks/bench_quality.py --corpus /tmp/corpus-1500 [--limit 1500]
    uv run python benchmarks/bench_quality.py --report-docs 100000

``--corpus``: every input goes through the shard pass's stages (``process_many``, which
computes the signals) and, separately, ``quality_signals`` runs again on each published
text; both are timed in CPU seconds (``time.process_time``: the machine is shared, wall
time is noise), and the share is split by script (words vs characters mode) and length.

``--report-docs``: the publish-time work at that many documents: per-shard summaries of
synthetic signals merged, the diff read from two releases' ``documents`` parts (``id`` and
``text_sha256`` columns, 200 rows a part) and ``report.html`` drawn. Wall seconds (with the
load average) and CPU seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.contracts import DOCUMENT_SCHEMA, DOCUMENTS_DIR, SourceDocument  # noqa: E402
from flows.engine.plan import prepare  # noqa: E402
from flows.engine.summary import Summary, add_quality, build_manifest, merge_all  # noqa: E402
from flows.models import Manifest, ReleaseChanges, RunParameters  # noqa: E402
from flows.output.changes import release_changes  # noqa: E402
from flows.report import release_report  # noqa: E402
from flows.stages.compose import process_many  # noqa: E402
from flows.stages.quality import quality_signals  # noqa: E402

logger = logging.getLogger("bench_quality")


def shard_pass_share(corpus: Path, limit: int) -> None:
    plan = prepare(RunParameters(source=str(corpus)), publish=False)
    docs: list[SourceDocument] = [d for job in plan.shards for d in job.docs][:limit]
    items = [(d, (corpus / d.source_path).read_bytes()) for d in docs if d.rejection is None]
    start = time.process_time()
    outcome = process_many(items, plan.config)
    whole = time.process_time() - start
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    total = 0.0
    for row in outcome.documents:
        begin = time.process_time()
        signals = quality_signals(row.text)
        spent = time.process_time() - begin
        total += spent
        size = "short (<5k chars)" if row.text_chars < 5000 else "long (>=5k chars)"
        for key in (signals.segmentation, size):
            by_kind[key][0] += spent
            by_kind[key][1] += 1
    print(f"inputs {len(items)}, published {len(outcome.documents)}")
    print(f"shard pass (process_many, signals included): {whole:.2f} CPU s")
    print(
        f"quality_signals alone: {total:.3f} CPU s = {100 * total / whole:.1f} % of the shard pass"
    )
    print(f"per document: {1000 * total / max(1, len(outcome.documents)):.3f} ms")
    for key, (spent, n) in sorted(by_kind.items()):
        print(f"  {key}: {n} documents, {1000 * spent / n:.3f} ms each")


def _synthetic_release(folder: Path, docs: int, changed_every: int, seed: int) -> None:
    """Documents parts of just the two columns the diff reads, 200 rows a part."""
    (folder / DOCUMENTS_DIR).mkdir(parents=True)
    for part, start in enumerate(range(0, docs, 200)):
        ids = [f"doc-{i}" for i in range(start + seed, min(docs, start + 200) + seed)]
        shas = [
            hashlib.sha256(f"{i}/{seed if n % changed_every == 0 else 0}".encode()).hexdigest()
            for n, i in enumerate(ids)
        ]
        table = pa.table({"id": ids, "text_sha256": shas})
        pq.write_table(table, folder / DOCUMENTS_DIR / f"part-{part:05d}.parquet")


def report_cost(docs: int) -> None:
    rng = random.Random(0)
    texts = [
        " ".join(
            rng.choice(["alpha", "beta", "gamma", "delta."]) for _ in range(rng.randint(5, 400))
        )
        for _ in range(200)
    ]
    rows = [asdict(quality_signals(t)) for t in texts]
    languages = [("en", "de", "fr", "ja")[i % 4] for i in range(len(rows))]
    shards = []
    for shard in range(0, docs, 200):
        # A shard's documents as summarize() sees them: the columns add_quality reads.
        table = pa.table(
            {
                "text_chars": [1000 + 50 * i + shard for i in range(len(rows))],
                "language": languages,
                "quality": pa.array(rows, DOCUMENT_SCHEMA.field("quality").type),
            }
        )
        summary = Summary(published=table.num_rows)
        summary.languages.update(languages)
        add_quality(summary, table)
        shards.append(summary)
    with tempfile.TemporaryDirectory() as tmp:
        before, now = Path(tmp, "before"), Path(tmp, "now")
        _synthetic_release(before, docs, 50, 0)
        _synthetic_release(now, docs, 40, 7)
        parts = sorted(p.relative_to(before).as_posix() for p in (before / DOCUMENTS_DIR).glob("*"))
        wall, cpu = time.perf_counter(), time.process_time()
        merged = merge_all(shards)
        changes = release_changes(now, before, "before", parts)
        manifest = _manifest(merged, changes)
        page = release_report(manifest, merged, manifest)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{docs} documents ({len(shards)} shard summaries): merge + diff + report.html")
    print(
        f"  {wall:.2f} wall s, {cpu:.2f} CPU s, load {os.getloadavg()[0]:.1f}; {len(page) / 1e6:.2f} MB"
    )
    print(f"  changes: {changes}")


def _manifest(summary: Summary, changes: ReleaseChanges | None) -> Manifest:
    manifest = build_manifest(
        release_id="bench",
        created_at=dt.datetime.now(dt.UTC),
        pipeline_version="bench",
        summary=summary,
        skipped=0,
        files=[],
        metadata_issues=[],
        parameters={},
        config_fingerprint="",
        input_fingerprint="",
    )
    manifest.changes = changes
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a folder made by generate_corpus.py")
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--report-docs", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.corpus:
        shard_pass_share(args.corpus, args.limit)
    if args.report_docs:
        report_cost(args.report_docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
