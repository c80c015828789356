"""What a release costs its readers (DuckDB scan, load_dataset, files) and an incremental run.

Two commands, each printing one JSON object of figures::

    # the reader's side of a release: files, row groups, DuckDB full scan, load_dataset
    uv run python benchmarks/bench_consumers.py read OUT/current [--repeat 3]

    # one run through the engine (process pool, no Prefect) on SOURCE into OUT, and what
    # it wrote compared with the release that was current before it
    uv run python benchmarks/bench_consumers.py run SOURCE OUT [--workers 2] [--set key=value]

    # how much of NEW a content-addressed store (the Hub's Xet) already holds from OLD:
    # both cut into content-defined chunks (gear hash, ~64 KiB), shared chunk bytes counted
    uv run python benchmarks/bench_consumers.py shared OLD.parquet NEW.parquet

``run`` only uses the engine's public entry points (``prepare``, ``execute``,
``PoolRunner``), so the same script measures an older checkout: put it first on
``PYTHONPATH``. ``load_dataset`` runs offline, into a fresh cache folder each time; for a
release without a dataset card config it reads ``documents/*.parquet`` with the generic
``parquet`` builder (what the card of such a release says to do).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _files(release: Path, table: str) -> list[Path]:
    return sorted((release / table).glob("*.parquet"))


def layout(release: Path) -> dict[str, Any]:
    """Files, row groups and sizes of the documents table as a reader sees it."""
    files = _files(release, "documents")
    groups = [pq.ParquetFile(f).metadata.num_row_groups for f in files]
    sizes = [f.stat().st_size for f in files]
    rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
    return {
        "documents_files": len(files),
        "documents_row_groups": sum(groups),
        "documents_mb": round(sum(sizes) / 2**20, 1),
        "largest_file_mb": round(max(sizes) / 2**20, 1) if sizes else 0,
        "rows_per_row_group": round(sum(rows) / max(1, sum(groups)), 1),
        "all_files_in_release": sum(1 for _ in release.rglob("*.parquet")),
    }


def duckdb_scan(release: Path, repeat: int) -> dict[str, Any]:
    """A full scan touching every column a reader typically aggregates, best of ``repeat``."""
    import duckdb

    query = (
        "SELECT count(*), sum(length(text)), count(DISTINCT language), sum(len(removed)) "
        f"FROM read_parquet('{release}/documents/*.parquet')"
    )
    best_wall, best_cpu = float("inf"), float("inf")
    result = None
    for _ in range(repeat):
        connection = duckdb.connect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = connection.sql(query).fetchall()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        connection.close()
    return {
        "duckdb_scan_s": round(best_wall, 3),
        "duckdb_scan_cpu_s": round(best_cpu, 3),
        "duckdb_result": result,
    }


def hf_load(release: Path) -> dict[str, Any]:
    """``load_dataset`` into a fresh cache, offline: the release itself when its card
    declares configs, else its documents files through the generic parquet builder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    datasets.disable_progress_bars()
    card = release / "README.md"
    has_configs = card.exists() and card.read_text(encoding="utf-8").startswith("---\n")
    cache = Path(tempfile.mkdtemp(prefix="bench-hf-"))
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        if has_configs:
            loaded = datasets.load_dataset(str(release), split="train", cache_dir=str(cache))
        else:
            loaded = datasets.load_dataset(
                "parquet",
                data_files=f"{release}/documents/*.parquet",
                split="train",
                cache_dir=str(cache),
            )
        took, took_cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {
            "load_dataset_s": round(took, 2),
            "load_dataset_cpu_s": round(took_cpu, 2),
            "load_dataset_rows": loaded.num_rows,
            "load_dataset_by": "release configs" if has_configs else "parquet builder",
        }
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _manifest_files(release: Path) -> dict[str, tuple[str, int]]:
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    return {f["path"]: (f["sha256"], f["bytes"]) for f in manifest["files"]}


def run(source: str, out: str, workers: int, settings: dict[str, Any]) -> dict[str, Any]:
    """One release through the engine; which files it wrote anew versus the previous one."""
    from flows.engine.plan import prepare
    from flows.engine.pool import PoolRunner
    from flows.engine.run import execute
    from flows.models import RunParameters

    current = Path(out, "current")
    before = _manifest_files(current.resolve()) if current.exists() else {}
    wall, cpu = time.perf_counter(), _cpu()
    result = execute(
        prepare(RunParameters(source=source, out=out, **settings)), PoolRunner(workers)
    )
    took, took_cpu = time.perf_counter() - wall, _cpu() - cpu
    after = _manifest_files(current.resolve())
    # A file is new when no file of the previous release had its bytes (its name may move).
    old = {sha for sha, _ in before.values()}
    new = {path: size for path, (sha, size) in after.items() if sha not in old}
    published = [p for p in new if not p.startswith(("shards/", "index/", "facts/"))]
    return {
        "release": result.release_id,
        "processed": result.processed,
        "copied_shards": result.copied_shards,
        "wall_s": round(took, 1),
        "cpu_s": round(took_cpu, 1),
        "files": len(after),
        "files_new": len(new),
        "mb_new": round(sum(new.values()) / 2**20, 1),
        "published_files_new": sorted(published)[:10],
        "published_files_new_count": len(published),
        "load": os.getloadavg(),
    }


def _cuts(data: bytes) -> list[int]:
    """Content-defined chunk boundaries: a 64-byte gear hash whose 16 selected bits are zero
    (about one cut per 64 KiB), computed with numpy in 4 MiB windows."""
    import numpy as np

    gear = np.random.default_rng(0).integers(0, 2**63, size=256, dtype=np.uint64)
    mask = np.uint64((1 << 16) - 1)
    raw = np.frombuffer(data, dtype=np.uint8)
    cuts: list[int] = []
    step = 1 << 22
    for start in range(0, len(raw), step):
        low = max(0, start - 63)
        window = gear[raw[low : start + step]]
        rolling = np.zeros(len(window), dtype=np.uint64)
        for k in range(64):
            rolling[k:] += window[: len(window) - k] << np.uint64(k)
        hits = np.nonzero((rolling >> np.uint64(40) & mask) == 0)[0] + low
        cuts += [int(x) for x in hits if x >= start]
    return cuts


def _chunks(path: Path) -> dict[bytes, int]:
    import hashlib

    data = path.read_bytes()
    found: dict[bytes, int] = {}
    previous = 0
    for cut in [*_cuts(data), len(data)]:
        if cut - previous >= 4096 or cut == len(data):
            found[hashlib.sha256(data[previous:cut]).digest()] = cut - previous
            previous = cut
    return found


def shared(old: Path, new: Path) -> dict[str, Any]:
    """Bytes of ``new`` in content-defined chunks that ``old`` also has."""
    before, after = _chunks(old), _chunks(new)
    total = sum(after.values())
    common = sum(size for digest, size in after.items() if digest in before)
    return {
        "new_mb": round(total / 2**20, 1),
        "chunks": len(after),
        "shared_mb": round(common / 2**20, 1),
        "shared_percent": round(100 * common / max(1, total), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    read = sub.add_parser("read", help="reader-side figures of a release")
    read.add_argument("release", type=Path)
    read.add_argument("--repeat", type=int, default=3)
    read.add_argument("--skip-hf", action="store_true")
    go = sub.add_parser("run", help="one engine run and what it wrote")
    go.add_argument("source")
    go.add_argument("out")
    go.add_argument("--workers", type=int, default=2)
    go.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    same = sub.add_parser("shared", help="bytes of NEW in chunks OLD also has")
    same.add_argument("old", type=Path)
    same.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.command == "read":
        release = args.release.resolve()
        figures = {"release": release.name, **layout(release), **duckdb_scan(release, args.repeat)}
        if not args.skip_hf:
            figures |= hf_load(release)
        figures["load"] = os.getloadavg()
    elif args.command == "shared":
        figures = shared(args.old, args.new)
    else:
        settings = {k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)}
        figures = run(args.source, args.out, args.workers, settings)
    json.dump(figures, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
