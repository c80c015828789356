"""Peak memory of the flow process's own per-input work, at sizes a full run cannot reach here.

    uv run python benchmarks/bench_memory.py plan SOURCE        # discovery + every shard cut
    uv run python benchmarks/bench_memory.py facts N FOLDER      # write N synthetic facts rows
    uv run python benchmarks/bench_memory.py corpus FOLDER       # duplicates + furniture on them

Each mode runs in a fresh process and prints its RSS before and its peak (``VmHWM``) after.
``plan`` walks the source as a run does (``prepare``, then every shard's inputs, unread).
``facts`` writes parts of 200 rows with the sizes the shard pass writes (a 112-value MinHash,
64-hex hashes, six candidate line hashes a document, two of them from 50 shared lines, 1 %
exact copies and 1 % near copies); ``corpus`` then runs the duplicates check (``near``) and
learned furniture's counting on them. A full ``corpus validate`` at 600,000 documents takes
an hour on a 2-core machine; these take a minute and measure what grows with the corpus.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def memory_mb() -> dict[str, int]:
    """This process's current and peak RSS in MB (from /proc)."""
    found = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                found[key] = int(value.split()[0]) // 1024
    return found


def plan(source: str) -> str:
    from flows.engine.plan import prepare
    from flows.models import RunParameters

    planned = prepare(RunParameters(source=source, out="/nonexistent"), publish=False)
    inputs = sum(len(job.docs) for job in planned.shards)
    return f"plan: {inputs} inputs in {len(planned.shards)} shards"


def facts(n: int, folder: Path) -> str:
    from flows.contracts import FACTS_SCHEMA

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "facts").mkdir(parents=True)
    rng = np.random.default_rng(0)
    shared = rng.integers(0, 2**63, 50, dtype=np.uint64)
    names = [
        *("id", "source_path", "norm_sha256", "minhash", "text_chars", "has_metadata"),
        *("published", "file", "source", "line_hashes"),
    ]
    schema = pa.schema([FACTS_SCHEMA.field(name) for name in names])
    for part, start in enumerate(range(0, n, 200)):
        k = np.arange(start, min(n, start + 200))
        sig = rng.integers(0, 2**32, (len(k), 112), dtype=np.uint32)
        sig[rng.random(len(k)) < 0.01] = sig[0]
        norm = [f"{int(v):064x}" for v in rng.integers(0, 2**63, len(k))]
        norm = [
            norm[0] if same else h for same, h in zip(rng.random(len(k)) < 0.01, norm, strict=True)
        ]
        lines = [
            [
                v.tobytes()
                for v in np.r_[rng.integers(0, 2**63, 4), rng.choice(shared, 2)].astype("<u8")
            ]
            for _ in k
        ]
        table = pa.table(
            {
                "id": [f"bench-{i:07d}" for i in k],
                "source_path": [f"part-{i // 1000:03d}/doc-{i:07d}-en.txt" for i in k],
                "norm_sha256": norm,
                "minhash": [row.tobytes() for row in sig],
                "text_chars": rng.integers(500, 1500, len(k)),
                "has_metadata": rng.random(len(k)) < 0.3,
                "published": pa.nulls(len(k), pa.timestamp("us", tz="UTC")),
                "file": [f"documents/part-{part:05d}.parquet"] * len(k),
                "source": [f"news{i % 10}.example" for i in k],
                "line_hashes": lines,
            },
            schema=schema,
        )
        pq.write_table(table, folder / "facts" / f"part-{part:05d}.parquet")
    return f"facts: {n} rows written to {folder}"


def corpus(folder: Path) -> str:
    from flows.engine.corpus import checks_for, corpus_step, iter_facts
    from flows.engine.furniture import FACTS_COLUMNS, FurnitureSettings, learn_streamed

    decisions = corpus_step(folder, checks_for("near"))
    learned = learn_streamed(iter_facts(folder, FACTS_COLUMNS), FurnitureSettings())
    lines = sum(len(group) for group in learned.values())
    return f"corpus step: {len(decisions)} duplicates, {lines} furniture lines"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["plan", "facts", "corpus"])
    parser.add_argument("args", nargs="+")
    args = parser.parse_args()
    before = memory_mb()
    started = time.process_time()
    if args.mode == "plan":
        what = plan(args.args[0])
    elif args.mode == "facts":
        what = facts(int(args.args[0]), Path(args.args[1]))
    else:
        what = corpus(Path(args.args[0]))
    after = memory_mb()
    print(
        f"{what}; {time.process_time() - started:.1f} s CPU; RSS at start {before['VmRSS']} MB, "
        f"peak {after['VmHWM']} MB (+{after['VmHWM'] - before['VmRSS']} MB)"
    )


if __name__ == "__main__":
    main()
