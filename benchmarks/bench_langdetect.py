"""Time langdetect against flows.langdetect_numpy.FastDetector on the same inputs.

    uv run python benchmarks/bench_langdetect.py [--shared ../shared/benchmarks]
        [--samples 300] [--lines 1000] [--repeat 3] [--seed 0]

Two workloads, as the language stage calls langdetect:

* (a) 1,000-character samples of real text, n_trial 7: lingua's test sentences of each
  language joined up to 1,000 characters, and UDHR paragraphs joined likewise (from
  ``--shared``; without it, 1,000-character windows of the seed articles);
* (b) single lines of 40-200 characters, n_trial 3 (lingua's test sentences; without
  ``--shared``, the seed articles' lines).

langdetect runs as the stage runs it (``factory.create()``, ``n_trial``, ``append``,
``get_probabilities``). FastDetector runs twice over each workload: first with a fresh
detector (its token and n-gram memos empty, as in a new worker process), then again with
the memos filled by the first pass (a long-running worker that has seen the vocabulary).
Each figure is the best of ``--repeat`` passes (wall clock), in ms per call. Every FastDetector answer is
compared with langdetect's, float for float; the script exits with status 1 if any differs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from langdetect import DetectorFactory  # noqa: E402
from langdetect.detector_factory import PROFILES_DIRECTORY  # noqa: E402
from langdetect.lang_detect_exception import LangDetectException  # noqa: E402

from flows.langdetect_numpy import FastDetector  # noqa: E402

Outcome = list[tuple[str, float]] | str
SAMPLE_CHARS = 1_000


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _joined(lines: list[str], size: int) -> list[str]:
    """Consecutive lines joined by newlines into chunks of ``size`` characters."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        current = f"{current}\n{line}" if current else line
        if len(current) >= size:
            chunks.append(current[:size])
            current = ""
    return chunks


def samples(shared: Path, count: int, rng: random.Random) -> tuple[list[str], str]:
    """1,000-character texts of many languages, and where they came from."""
    found: list[str] = []
    if (shared / "language").is_dir():
        for path in sorted((shared / "language").glob("*/sentences.txt")):
            found += _joined(_lines(path), SAMPLE_CHARS)[:4]
        for path in sorted((shared / "language-udhr").glob("*/udhr.txt")):
            found += _joined(_lines(path), SAMPLE_CHARS)[:2]
        source = f"{shared}: lingua sentences (75 languages) and UDHR (55)"
    if not found:
        for path in sorted((REPO / "seeds").glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            found += [text[i : i + SAMPLE_CHARS] for i in range(0, len(text), SAMPLE_CHARS // 2)]
        source = "seed articles (no shared data)"
    rng.shuffle(found)
    return found[:count], source


def lines(shared: Path, count: int, rng: random.Random) -> tuple[list[str], str]:
    """Single lines of 40-200 characters."""
    found: list[str] = []
    if (shared / "language").is_dir():
        for path in sorted((shared / "language").glob("*/sentences.txt")):
            found += [line for line in _lines(path) if 40 <= len(line) <= 200]
        source = f"{shared}: lingua sentences of 40-200 characters"
    if not found:
        for path in sorted((REPO / "seeds").glob("*.txt")):
            found += [line[:200] for line in _lines(path) if len(line) >= 40]
        source = "seed article lines (no shared data)"
    rng.shuffle(found)
    return found[:count], source


def run(detect: Callable[[str], list[tuple[str, float]]], texts: list[str]) -> list[Outcome]:
    out: list[Outcome] = []
    for text in texts:
        try:
            out.append(detect(text))
        except LangDetectException as error:
            out.append(f"LangDetectException: {error}")
    return out


def timed(
    detect: Callable[[str], list[tuple[str, float]]], texts: list[str]
) -> tuple[float, list[Outcome]]:
    start = time.perf_counter()
    out = run(detect, texts)
    return (time.perf_counter() - start) / len(texts) * 1000, out


def langdetect_call(
    factory: DetectorFactory, n_trial: int
) -> Callable[[str], list[tuple[str, float]]]:
    def detect(text: str) -> list[tuple[str, float]]:
        detector = factory.create()
        detector.n_trial = n_trial
        detector.append(text)
        return [(str(lang.lang), float(lang.prob)) for lang in detector.get_probabilities()]

    return detect


def fast_call(fast: FastDetector, n_trial: int) -> Callable[[str], list[tuple[str, float]]]:
    def detect(text: str) -> list[tuple[str, float]]:
        return fast.probabilities(text, n_trial)

    return detect


def workload(
    name: str,
    texts: list[str],
    n_trial: int,
    factory: DetectorFactory,
    repeat: int,
) -> bool:
    """Time one workload; print the figures; True when every answer was identical."""
    print(f"\n({name}) {len(texts)} texts, n_trial {n_trial}, mean {_mean_len(texts):.0f} chars")
    slow = langdetect_call(factory, n_trial)
    slow_ms = cold_ms = warm_ms = float("inf")
    identical = True
    # The passes alternate, so that load from other processes hits both detectors alike.
    for _ in range(repeat):
        seconds, expected = timed(slow, texts)
        slow_ms = min(slow_ms, seconds)
        detect = fast_call(FastDetector.from_factory(factory), n_trial)  # fresh memos
        seconds, cold = timed(detect, texts)
        cold_ms = min(cold_ms, seconds)
        seconds, warm = timed(detect, texts)
        warm_ms = min(warm_ms, seconds)
        identical = identical and cold == expected and warm == expected
    different = sum(c != e or w != e for c, w, e in zip(cold, warm, expected, strict=True))
    print(f"  langdetect                   {slow_ms:7.3f} ms/call")
    print(f"  FastDetector, fresh memos    {cold_ms:7.3f} ms/call   x{slow_ms / cold_ms:.1f}")
    print(f"  FastDetector, memos filled   {warm_ms:7.3f} ms/call   x{slow_ms / warm_ms:.1f}")
    raised = sum(isinstance(outcome, str) for outcome in expected)
    verdict = "all identical" if identical else f"{different} DIFFERENT"
    print(f"  results: {verdict} ({len(texts)} texts, {raised} raise LangDetectException)")
    return identical


def _mean_len(texts: list[str]) -> float:
    return sum(map(len, texts)) / max(len(texts), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "benchmarks")
    parser.add_argument("--samples", type=int, default=300, help="1,000-character samples")
    parser.add_argument("--lines", type=int, default=1000, help="single lines")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best one counts")
    parser.add_argument("--seed", type=int, default=0, help="langdetect's seed")
    args = parser.parse_args()
    rng = random.Random(1)

    start = time.perf_counter()
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(args.seed)
    load_s = time.perf_counter() - start
    builds = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        fast = FastDetector.from_factory(factory)
        builds.append(time.perf_counter() - start)
    del fast
    print(f"langdetect profiles: {load_s:.2f} s to load (once per process, both need it)")
    print(
        f"FastDetector.from_factory: {min(builds):.2f} s (best of {args.repeat}), once per process"
    )

    texts, source = samples(args.shared, args.samples, rng)
    print(f"(a) from {source}")
    ok = workload("a: 1,000-character samples", texts, 7, factory, args.repeat)
    texts, source = lines(args.shared, args.lines, rng)
    print(f"(b) from {source}")
    ok = workload("b: single lines", texts, 3, factory, args.repeat) and ok
    if not ok:
        print("\nFastDetector DIFFERS from langdetect")
        sys.exit(1)
    print("\nFastDetector gave langdetect's exact answers on every input.")


if __name__ == "__main__":
    main()
