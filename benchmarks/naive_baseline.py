"""The naive baseline of issue 5: one process, one loop, the same libraries, no care.

    uv run python benchmarks/naive_baseline.py SOURCE OUT.parquet

For every ``*.txt`` file under SOURCE, in path order: chardet on the whole file, decode
with its guess (``errors="replace"``), seeded langdetect on the whole text, and keep the
row in a list; at the end pyarrow writes every row into one Parquet file. This is what a
first script would do; ``bench_pipeline.py`` times ``corpus run`` against it. It does no
boilerplate removal and no metadata, so it does *less* work than the pipeline.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chardet
import pyarrow as pa
import pyarrow.parquet as pq
from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException

SCHEMA = pa.schema(
    [
        ("source_path", pa.string()),
        ("source_bytes", pa.int64()),
        ("source_sha256", pa.string()),
        ("encoding", pa.string()),
        ("encoding_confidence", pa.float64()),
        ("language", pa.string()),
        ("language_confidence", pa.float64()),
        ("text", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class Result:
    """What one baseline run did and cost."""

    docs: int
    failed: int
    seconds: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` (ru_maxrss also counts the launching parent's
    peak, which Linux carries over fork and exec)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def iter_inputs(source: Path) -> Iterator[Path]:
    """The files ``corpus run`` treats as documents by default (``*.txt``), in path order."""
    yield from sorted(p for p in source.rglob("*.txt") if p.is_file())


def naive_row(source: Path, path: Path) -> dict[str, Any]:
    """One file -> one row: chardet on all bytes, decode, langdetect on all text."""
    data = path.read_bytes()
    guess = chardet.detect(data, max_bytes=max(len(data), 1))
    encoding = guess["encoding"]
    text = data.decode(encoding, errors="replace") if encoding else ""
    language, probability = None, None
    try:
        best = detect_langs(text)[0]
        language, probability = str(best.lang), float(best.prob)
    except LangDetectException:
        pass  # empty or symbol-only text: no language, as a naive script would record it
    return {
        "source_path": path.relative_to(source).as_posix(),
        "source_bytes": len(data),
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "encoding": encoding,
        "encoding_confidence": float(guess["confidence"] or 0.0),
        "language": language,
        "language_confidence": probability,
        "text": text,
    }


def run(source: Path, out: Path, seed: int = 0) -> Result:
    """Process every input and write one Parquet file; returns counts and time."""
    DetectorFactory.seed = seed  # langdetect's documented way to be reproducible
    started = time.perf_counter()
    rows = [naive_row(source, path) for path in iter_inputs(source)]
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    failed = sum(1 for row in rows if row["language"] is None)
    return Result(len(rows), failed, seconds, peak)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path, help="Parquet file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(args.source, args.out, args.seed)
    print(
        f"naive: {result.docs} docs in {result.seconds:.1f} s "
        f"({result.docs / result.seconds:.1f} docs/s), {result.failed} without a language, "
        f"peak RSS {result.peak_rss_mb:.0f} MB -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
