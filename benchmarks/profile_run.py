"""Profile one ``corpus run`` in its own process: where the fixed cost of a run goes.

    uv run python benchmarks/profile_run.py --source CORPUS --out OUT [--api-url URL]

Runs the CLI's ``main`` under pyinstrument (wall clock, every thread) in this process,
exactly as the ``corpus`` script does but without its final ``os._exit``, so the profile
is written. The temporary server and the pool's workers are other processes: their boot
shows up here as waiting. Prints pyinstrument's report of the CLI process (calls above
``--min-percent`` of the wall time) and writes it to ``--report``; the CLI's own log lines
carry timestamps for start -> first shard and last shard -> exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--api-url", help="a running Prefect server (default: a temporary one)")
    parser.add_argument("--report", type=Path, default=Path("profile-run.txt"))
    parser.add_argument("--min-percent", type=float, default=2.0)
    parser.add_argument("run_args", nargs="*", help="further `corpus run` options, after --")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    from pyinstrument import Profiler

    if args.api_url:
        os.environ["PREFECT_API_URL"] = args.api_url
    else:
        os.environ.pop("PREFECT_API_URL", None)
    profiler = Profiler(interval=0.005, async_mode="disabled")
    profiler.start()
    from flows.cli import main as corpus

    code = corpus(["run", "--source", str(args.source), "--out", str(args.out), *args.run_args])
    profiler.stop()
    text: str = profiler.output_text(unicode=True, color=False, show_all=False, timeline=False)
    lines = [
        line
        for line in text.splitlines()
        if not _below(line, profiler.last_session, args.min_percent)
    ]
    args.report.write_text(text, encoding="utf-8")
    print("\n".join(lines))
    print(
        f"corpus run exited {code} after {time.perf_counter() - started:.1f} s; full report: {args.report}"
    )
    return code


def _below(line: str, session: object, min_percent: float) -> bool:
    """Whether a report line is a call that took less than ``min_percent`` of the run."""
    duration = getattr(session, "duration", 0.0) or 0.0
    head = line.lstrip(" │├└─")
    number = head.split(" ", 1)[0]
    try:
        seconds = float(number)
    except ValueError:
        return False
    return bool(duration) and 100.0 * seconds / duration < min_percent


if __name__ == "__main__":  # spawned pool workers import this module: run only as a script
    sys.exit(main())
