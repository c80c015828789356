"""One run for callgrind: the shard pass, optionally the quality signals again, to count their instructions.

    valgrind --tool=callgrind python benchmarks/quality_instructions.py --corpus C --mode setup
    valgrind --tool=callgrind python benchmarks/quality_instructions.py --corpus C --mode pass
    valgrind --tool=callgrind python benchmarks/quality_instructions.py --corpus C --mode pass+q

``setup``: imports, the plan and the inputs read; ``pass``: plus ``process_many`` on the
first ``--limit`` inputs; ``pass+q``: plus ``quality_signals`` once more on each published
text. The signals' instructions are ``pass+q - pass``, the shard pass's ``pass - setup``
(callgrind's ``I refs``; stable on a loaded machine, unlike CPU time).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.engine.plan import prepare  # noqa: E402
from flows.models import RunParameters  # noqa: E402
from flows.stages.compose import process_many  # noqa: E402
from flows.stages.quality import quality_signals  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--mode", choices=("setup", "pass", "pass+q"), default="pass")
    args = parser.parse_args(argv)
    plan = prepare(RunParameters(source=str(args.corpus)), publish=False)
    docs = [d for job in plan.shards for d in job.docs][: args.limit]
    items = [(d, (args.corpus / d.source_path).read_bytes()) for d in docs if d.rejection is None]
    quality_signals("Warm up: regexes compiled.\nA second line 日本語")
    if args.mode != "setup":
        outcome = process_many(items, plan.config)
        if args.mode == "pass+q":
            for row in outcome.documents:
                quality_signals(row.text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
