"""Time ``corpus run`` against the naive baseline, side by side, in one run.

    uv run python benchmarks/bench_pipeline.py --docs 6000
    uv run python benchmarks/bench_pipeline.py --docs 6000 --sizes 1,5,20 --encodings utf-8  # per size
    uv run python benchmarks/bench_pipeline.py --scale 6000,60000     # peak memory vs size
    uv run python benchmarks/bench_pipeline.py --docs 6000 --sizes 1,5,20 --encodings utf-8 \
        --with-server --scale 60000,600000 --size-kb 1  # issue 16's figures, one run
    uv run python benchmarks/bench_pipeline.py --docs 6000 --profile  # + where the time goes
    uv run python benchmarks/bench_pipeline.py --docs 6000 --server   # against a running server

Steps (each command runs as a subprocess, exactly as a user would type it):

1. generate the corpus with ``generate_corpus.py`` into ``WORK/corpus-<docs>-<encodings>-s<seed>``
   (reused when its stamp says it was generated with the same options);
2. ``naive_baseline.py`` on it;
3. ``corpus run`` cold (a fresh ``--out``), then again on the unchanged source (nothing published), then
   after changing one document (the document is restored afterwards);
4. ``corpus validate`` (the same stages on a process pool without Prefect or Parquet), as
   the yardstick for Prefect's share of the run.

For every command it prints wall time, docs/s and peak memory, measured two ways: the peak
of the summed RSS of the whole process tree (the CLI, its worker processes and the temporary
Prefect server), with and without the server, sampled every 50 ms with psutil; and the
largest single process's own peak (``VmHWM`` from /proc, read at the same samples;
``ru_maxrss`` is not used: Linux copies the parent's peak into a child
across fork and exec, so it overstates a small child of a big parent). From the log lines it takes the time from command start to
the temporary server, discovery, the first shard written (``shard N: ...``) and the
published release; the first part file appearing in the staging folder is the second
witness of the first shard.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = Path(__file__).resolve().parent
DEFAULT_SHARED = REPO.parent / "shared" / "benchmarks"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "corpus-bench"
SAMPLE_SECONDS = 0.05
MB = 1024 * 1024
SERVER_TIMEOUT = 120

# Log lines that mark the phases of a ``corpus run`` (flows/cli.py, pipeline.py, tasks.py,
# publish.py); the first line matching each is timestamped on arrival.
MARKS: dict[str, re.Pattern[str]] = {
    "server": re.compile(r"starting a temporary Prefect server"),
    "discovered": re.compile(r"\d+ inputs in \d+ shards"),
    # The flow's progress line, or, for a cold run, the head start's (flows/engine/headstart.py:
    # the CLI hands the first shards to the workers while the temporary server boots, and
    # the flow, which cannot report before the server is up, takes them over).
    "first_shard": re.compile(
        r"shard \d+: \d+ published, \d+ rejected|head start: first shard done"
    ),
    "published": re.compile(r"published release "),
    "unchanged": re.compile(r"unchanged: current is "),
}
PROGRESS = re.compile(r"progress: (\d+)/(\d+) shards done")
SUMMARY = re.compile(r"published (\d+) of (\d+) inputs \((\d+) rejected, (\d+) skipped")


@dataclass(slots=True)
class Measurement:
    """One command: how long, how much memory, and when each phase was reached."""

    label: str
    docs: int
    returncode: int = 0
    # corpus validate exits 1 when an input would be rejected: a finding, not a failure.
    ok_codes: tuple[int, ...] = (0,)
    wall_s: float = 0.0
    tree_peak_rss_mb: float = 0.0
    tree_peak_rss_without_server_mb: float = 0.0
    largest_process_rss_mb: float = 0.0
    processes: int = 0
    cpu_s: float = 0.0  # user + system CPU of the whole process tree (server included)
    server_cpu_s: float = 0.0  # of which the temporary Prefect server's (sampled)
    load: float = 0.0  # 1-minute load average when the command started
    marks: dict[str, float] = field(default_factory=dict)
    first_part_file_s: float | None = None
    published: int | None = None
    rejected: int | None = None
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode in self.ok_codes

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.wall_s if self.wall_s else 0.0

    @property
    def docs_per_cpu_s(self) -> float:
        """Documents per CPU-second of the whole tree: per core, and blind to other load."""
        return self.docs / self.cpu_s if self.cpu_s else 0.0


def high_water_mark(pid: int) -> int:
    """A process's own peak RSS in bytes (``VmHWM``; 0 where /proc is unavailable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@dataclass(slots=True)
class _Tree:
    """Peak RSS of a process and all its descendants, sampled."""

    root: int
    peak: int = 0
    peak_without_server: int = 0
    largest: int = 0
    seen: set[int] = field(default_factory=set)
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> the latest CPU seconds seen
    servers: set[int] = field(default_factory=set)

    def sample(self) -> None:
        try:
            parent = psutil.Process(self.root)
            members = [parent, *parent.children(recursive=True)]
        except psutil.Error:
            return
        total = without_server = 0
        for proc in members:
            try:
                rss = int(proc.memory_info().rss)
                line = " ".join(proc.cmdline())
                # The temporary server is `prefect server start ...` (older: uvicorn).
                server = "uvicorn" in line or " server start " in line
                times = proc.cpu_times()
                cpu = times.user + times.system
            except psutil.Error:
                continue  # exited between listing and reading
            self.seen.add(proc.pid)
            self.cpu[proc.pid] = max(self.cpu.get(proc.pid, 0.0), cpu)
            if server:
                self.servers.add(proc.pid)
            total += rss
            self.largest = max(self.largest, rss, high_water_mark(proc.pid))
            without_server += 0 if server else rss
        self.peak = max(self.peak, total)
        self.peak_without_server = max(self.peak_without_server, without_server)


def scan_marks(line: str, elapsed: float, marks: dict[str, float]) -> None:
    """Record the first time each phase's log line appears, and the last shard's."""
    for name, pattern in MARKS.items():
        if name not in marks and pattern.search(line):
            marks[name] = elapsed
    progress = PROGRESS.search(line)
    if progress and progress.group(1) == progress.group(2):
        marks.setdefault("last_shard", elapsed)


def parse_summary(output: str) -> tuple[int, int] | None:
    """``published X of Y inputs (Z rejected, ...)`` -> (X, Z)."""
    match = SUMMARY.search(output)
    return (int(match.group(1)), int(match.group(3))) if match else None


def releases_in(out: Path) -> set[str]:
    """Names of the complete releases in ``out`` (to tell this run's from earlier ones)."""
    folder = out / "releases"
    return (
        {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        if folder.is_dir()
        else set()
    )


def first_part_file(out: Path, earlier: set[str]) -> bool:
    """True once this run has written a shard's part file: in its staging folder, or in a
    release that was not there before it started (a fast run may finish between samples)."""
    releases = out / "releases"
    for pattern in (".staging-*/*/part-*.parquet", ".staging-*/shards/*/part-*.parquet"):
        if any(releases.glob(pattern)):
            return True
    return any(
        any(releases.glob(f"{name}/*/part-*.parquet"))
        or any(releases.glob(f"{name}/shards/*/part-*.parquet"))
        for name in releases_in(out) - earlier
    )


def _pump(
    stream: IO[str], started: float, marks: dict[str, float], sink: list[str], log: IO[str] | None
) -> None:
    for line in stream:
        elapsed = time.perf_counter() - started
        scan_marks(line, elapsed, marks)
        sink.append(line)
        if log is not None:
            log.write(f"[{elapsed:8.2f}] {line}")
            log.flush()


def measure(
    label: str,
    command: Sequence[str],
    docs: int,
    env: dict[str, str],
    watch_out: Path | None = None,
    cwd: Path = REPO,
    log_path: Path | None = None,
    timeout: float | None = None,
) -> Measurement:
    """Run ``command`` in its own child and measure wall time, memory and phase marks.

    The child leads its own process group, so a run that exceeds ``timeout`` is killed with
    its workers and server (exit code -9 in the result) instead of hanging the benchmark.
    """
    result = Measurement(label, docs, load=os.getloadavg()[0])
    lines: list[str] = []
    earlier = releases_in(watch_out) if watch_out is not None else set()
    log = log_path.open("w", encoding="utf-8") if log_path else None
    if log is not None:
        log.write(f"$ {shlex.join(command)}\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_cpu = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, started, result.marks, lines, log))
    reader.start()
    tree = _Tree(proc.pid)
    done = threading.Event()

    def sampler() -> None:
        while not done.is_set():
            tree.sample()
            if (
                watch_out is not None
                and result.first_part_file_s is None
                and first_part_file(watch_out, earlier)
            ):
                result.first_part_file_s = time.perf_counter() - started
            done.wait(SAMPLE_SECONDS)

    sampling = threading.Thread(target=sampler)
    sampling.start()
    # Not ru_maxrss from wait4/RUSAGE_CHILDREN: Linux carries the parent's peak RSS over
    # fork and exec into the child's, so a child of a big parent (pytest, a profiler)
    # reports the parent's size. Sampling sees each process's own RSS.
    _wait(proc, started, timeout)
    result.wall_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    sampling.join()
    reader.join()
    if log is not None:
        log.close()
    result.returncode = proc.returncode
    result.tree_peak_rss_mb = tree.peak / MB
    result.tree_peak_rss_without_server_mb = tree.peak_without_server / MB
    result.largest_process_rss_mb = tree.largest / MB
    result.processes = len(tree.seen)
    # The whole tree's CPU: what the direct child and the processes it reaped used
    # (rusage of reaped children, measured as a delta around this command), or the
    # samples' sum where that is larger (a grandchild left running is not reaped).
    reaped = usage.ru_utime + usage.ru_stime - before_cpu
    result.cpu_s = max(reaped, sum(tree.cpu.values()) if tree.cpu else 0.0)
    result.server_cpu_s = sum(tree.cpu.get(pid, 0.0) for pid in tree.servers)
    result.log = "".join(lines)
    counts = parse_summary(result.log)
    if counts:
        result.published, result.rejected = counts
    return result


def _wait(proc: subprocess.Popen[str], started: float, timeout: float | None) -> None:
    """Until the child exits, or kill its process group after ``timeout`` (exit -9)."""
    deadline = None if timeout is None else started + timeout
    while proc.poll() is None:
        if deadline is not None and time.perf_counter() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.01)


def corpus_command(spec: str | None) -> list[str]:
    """How to call the CLI: ``--corpus-cmd`` if given, else the venv's script, else uv."""
    if spec:
        return shlex.split(spec)
    script = REPO / ".venv" / "bin" / "corpus"
    return [str(script)] if script.exists() else ["uv", "run", "--project", str(REPO), "corpus"]


def bench_env(api_url: str | None, prefect_home: Path | None) -> dict[str, str]:
    """The user's environment, with PREFECT_API_URL unset unless a server is named."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
    # Log lines are timestamped when they arrive: they must not wait in a pipe's buffer.
    env["PYTHONUNBUFFERED"] = "1"
    # Prefect gives its temporary server 20 s to answer; on a loaded 2-core machine it can
    # take longer, and a run that dies there measures nothing. A user's setting wins.
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(SERVER_TIMEOUT))
    return env


def corpus_folder(work: Path, docs: int, seed: int, encodings: str, size_kb: float | None) -> Path:
    size = "" if size_kb is None else f"-{size_kb:g}k"
    return work / f"corpus-{docs}-{encodings}-s{seed}{size}"


def ensure_corpus(
    work: Path,
    docs: int,
    seed: int,
    encodings: str,
    shared: Path,
    python: str,
    size_kb: float | None = None,
) -> tuple[Path, float | None]:
    """Generate the corpus unless a complete one with the same options is there."""
    from benchmarks.generate_corpus import read_stamp

    source = corpus_folder(work, docs, seed, encodings, size_kb)
    found = read_stamp(source)
    if (
        found
        and found.get("docs") == docs
        and found.get("seed") == seed
        and found.get("encodings") == encodings
        and found.get("size_kb") == size_kb
    ):
        return source, None
    shutil.rmtree(source, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            python,
            str(BENCHMARKS / "generate_corpus.py"),
            "--docs",
            str(docs),
            "--out",
            str(source),
            "--seed",
            str(seed),
            "--encodings",
            encodings,
            "--shared",
            str(shared),
            *([] if size_kb is None else ["--size-kb", str(size_kb)]),
        ],
        check=True,
    )
    return source, time.perf_counter() - started


def pick_document(source: Path) -> Path:
    """The first article (in path order) that is plain UTF-8: the one the bench changes."""
    for path in sorted(source.rglob("*.txt")):
        data = path.read_bytes()
        if len(data) > 1000 and not data.startswith(b"\xef\xbb\xbf"):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            return path
    raise SystemExit(f"bench_pipeline: no UTF-8 article in {source}")


def changed_document(path: Path) -> Callable[[], None]:
    """Append a paragraph to ``path``; returns the function that restores it exactly."""
    original = path.read_bytes()
    times = path.stat()
    path.write_bytes(original + b"\nThe benchmark changed this document to test reprocessing.\n")

    def restore() -> None:
        path.write_bytes(original)
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))

    return restore


def count_inputs(source: Path) -> int:
    return sum(1 for _ in source.rglob("*.txt"))


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


def render(measurements: Sequence[Measurement]) -> str:
    """The figures as a Markdown table."""
    rows = [
        "| run | docs | wall s | CPU s | load | docs/s | docs/CPU-s | tree peak RSS MB "
        "| w/o server MB | largest process MB "
        "| procs | server s | discovered s | first shard s | first part file s | last shard s "
        "| published s | published/rejected | exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]

    def mark(m: Measurement, name: str) -> str:
        return f"{m.marks[name]:.1f}" if name in m.marks else "-"

    for m in measurements:
        part = f"{m.first_part_file_s:.1f}" if m.first_part_file_s is not None else "-"
        counts = f"{m.published}/{m.rejected}" if m.published is not None else "-"
        rows.append(
            f"| {m.label} | {m.docs} | {m.wall_s:.1f} | {m.cpu_s:.1f} | {m.load:.1f} "
            f"| {m.docs_per_s:.1f} | {m.docs_per_cpu_s:.1f} "
            f"| {m.tree_peak_rss_mb:.0f} | {m.tree_peak_rss_without_server_mb:.0f} "
            f"| {m.largest_process_rss_mb:.0f} | {m.processes} | {mark(m, 'server')} "
            f"| {mark(m, 'discovered')} | {mark(m, 'first_shard')} | {part} "
            f"| {mark(m, 'last_shard')} | {mark(m, 'published')} | {counts} | {m.returncode} |"
        )
    return "\n".join(rows)


def phases(m: Measurement) -> str:
    """Where a ``corpus run``'s wall time went, from its log marks."""
    marks = m.marks
    if not {"discovered", "last_shard", "published"} <= marks.keys():
        return f"{m.label}: phases unknown (log marks missing: {sorted(marks)})"
    return (
        f"{m.label}: start->discovered {marks['discovered']:.1f} s "
        f"(of which start->server {marks.get('server', 0.0):.1f} s), "
        f"shards {marks['last_shard'] - marks['discovered']:.1f} s, "
        f"publish {marks['published'] - marks['last_shard']:.1f} s, "
        f"shutdown {m.wall_s - marks['published']:.1f} s"
    )


def working_tree() -> str:
    """Which code was measured: commit and whether flows/ had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "flows"],
            check=False,
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"load average {load}, Python {sys.version.split()[0]}"
    )


@dataclass(frozen=True, slots=True)
class Runner:
    """How every command of one benchmark is started, logged and bounded."""

    env: dict[str, str]
    logs: Path
    timeout: float | None
    cli: tuple[str, ...]
    extra: tuple[str, ...] = ()

    def run(
        self,
        label: str,
        command: Sequence[str],
        docs: int,
        watch_out: Path | None = None,
        ok_codes: tuple[int, ...] = (0,),
    ) -> Measurement:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / (re.sub(r"[^\w.-]+", "-", label).strip("-") + ".log")
        result = measure(label, command, docs, self.env, watch_out, REPO, log, self.timeout)
        result.ok_codes = ok_codes
        _report(result, log)
        return result

    def corpus_run(self, label: str, source: Path, out: Path, docs: int) -> Measurement:
        command = [*self.cli, "run", "--source", str(source), "--out", str(out), *self.extra]
        return self.run(label, command, docs, watch_out=out)


def compare(args: argparse.Namespace, runner: Runner) -> list[Measurement]:
    """The side-by-side run: naive, cold, warm, one document changed, validate."""
    work: Path = args.work
    source, generated = ensure_corpus(
        work, args.docs, args.seed, args.encodings, args.shared, sys.executable, args.size_kb
    )
    if generated is not None:
        print(f"generated the corpus in {generated:.1f} s")
    docs = count_inputs(source)
    out = work / f"out-{args.docs}-{args.encodings}"
    shutil.rmtree(out, ignore_errors=True)
    results: list[Measurement] = []
    if not args.skip_naive:
        naive_out = work / "naive.parquet"
        naive_cmd = [sys.executable, str(BENCHMARKS / "naive_baseline.py"), str(source)]
        results.append(runner.run("naive", [*naive_cmd, str(naive_out)], docs))
    results.append(runner.corpus_run("cold", source, out, docs))
    results.append(runner.corpus_run("unchanged", source, out, docs))
    restore = changed_document(pick_document(source))
    try:
        results.append(runner.corpus_run("one changed", source, out, docs))
    finally:
        restore()
    if not args.skip_validate:
        command = [*runner.cli, "validate", "--source", str(source), *runner.extra]
        results.append(runner.run("validate (no Prefect)", command, docs, ok_codes=(0, 1)))
    return results


def scale(args: argparse.Namespace, runner: Runner) -> list[Measurement]:
    """Cold ``corpus run`` at each size: does peak memory grow with the corpus?"""
    results = []
    for size in args.scale:
        source, generated = ensure_corpus(
            args.work, size, args.seed, args.encodings, args.shared, sys.executable, args.size_kb
        )
        if generated is not None:
            print(f"generated the {size}-document corpus in {generated:.1f} s")
        out = args.work / f"out-scale-{size}"
        shutil.rmtree(out, ignore_errors=True)
        if args.scale_command == "validate":
            command = [*runner.cli, "validate", "--source", str(source), *runner.extra]
            results.append(runner.run(f"validate {size}", command, size, ok_codes=(0, 1)))
        else:
            results.append(runner.corpus_run(f"cold {size}", source, out, size))
        shutil.rmtree(out, ignore_errors=True)
    return results


def by_size(
    args: argparse.Namespace,
    runner: Runner,
    server: Runner | None = None,
    shares: dict[str, ShardShares] | None = None,
) -> list[Measurement]:
    """At each document size, one after another: naive, validate (with and without the new
    stages), cold, unchanged; then cold and unchanged against the long-running ``server``."""
    results = []
    shares = {} if shares is None else shares
    for size_kb in args.sizes:
        source, generated = ensure_corpus(
            args.work, args.docs, args.seed, args.encodings, args.shared, sys.executable, size_kb
        )
        if generated is not None:
            print(f"generated the {size_kb:g} kB corpus in {generated:.1f} s")
        docs = count_inputs(source)
        tag = f"{size_kb:g}k"
        out = args.work / f"out-{args.docs}-{args.encodings}-{tag}"
        shutil.rmtree(out, ignore_errors=True)
        if not args.skip_naive:
            naive_cmd = [sys.executable, str(BENCHMARKS / "naive_baseline.py"), str(source)]
            naive_out = args.work / f"naive-{tag}.parquet"
            results.append(runner.run(f"naive {tag}", [*naive_cmd, str(naive_out)], docs))
        if not args.skip_validate:
            validate = [*runner.cli, "validate", "--source", str(source), *runner.extra]
            results.append(runner.run(f"validate {tag}", validate, docs, ok_codes=(0, 1)))
            if not args.skip_new_stages:
                off = [*validate, *NEW_STAGES_OFF]
                results.append(runner.run(f"validate old stages {tag}", off, docs, ok_codes=(0, 1)))
                shares[tag] = shard_pass_shares(source, args.new_stages_sample)
        results.append(runner.corpus_run(f"cold {tag}", source, out, docs))
        results.append(runner.corpus_run(f"unchanged {tag}", source, out, docs))
        shutil.rmtree(out, ignore_errors=True)
        if server is not None:
            results.append(server.corpus_run(f"cold server {tag}", source, out, docs))
            results.append(server.corpus_run(f"unchanged server {tag}", source, out, docs))
            shutil.rmtree(out, ignore_errors=True)
    return results


# Switches that turn the corpus-wide stages added after the first releases off (duplicates,
# learned furniture, translation pairs); quality signals and the facts the corpus step reads
# are computed in every shard whatever the switches, so their cost is measured in process
# (shard_pass_shares) and added.
NEW_STAGES_OFF = ("--dedup", "off", "--no-translation-pairs", "--disabled-rules", "repeated-line")


@dataclass(frozen=True, slots=True)
class ShardShares:
    """CPU-seconds per published document of the shard pass's pieces, measured in process."""

    documents: int
    process_ms: float  # the stages (encoding ... quality), per document
    quality_ms: float  # of which quality_signals
    facts_ms: float  # facts_table: duplicate signature, line hashes, paragraph facts

    @property
    def new_ms(self) -> float:
        return self.quality_ms + self.facts_ms


def shard_pass_shares(source: Path, sample: int) -> ShardShares:
    """Time the per-document work the new stages added, on ``sample`` inputs spread over the
    corpus: ``quality_signals`` on each published text and ``facts_table`` on the shard's
    rows, next to the stages as a whole (``process_many``); profiles loaded beforehand."""
    from flows.contracts import documents_table
    from flows.engine.plan import prepare
    from flows.engine.shard import facts_table
    from flows.models import RunParameters
    from flows.stages.compose import process_many
    from flows.stages.language import warm_up
    from flows.stages.quality import quality_signals

    warm_up()
    plan = prepare(RunParameters(source=str(source)), publish=False)
    inputs = [doc for job in plan.shards for doc in job.docs if doc.rejection is None]
    step = max(1, len(inputs) // max(1, sample))
    items = [(doc, (source / doc.source_path).read_bytes()) for doc in inputs[::step][:sample]]
    started = time.process_time()
    outcome = process_many(items, plan.config)
    process = time.process_time() - started
    started = time.process_time()
    for row in outcome.documents:
        quality_signals(row.text)
    quality = time.process_time() - started
    table = documents_table(outcome.documents)
    started = time.process_time()
    facts_table(table, set(), "documents/part-00000.parquet")
    facts = time.process_time() - started
    n = max(1, len(outcome.documents))
    return ShardShares(n, 1000 * process / n, 1000 * quality / n, 1000 * facts / n)


def new_stages_cost(
    validate: Measurement, old: Measurement, shares: ShardShares | None
) -> tuple[float, float]:
    """CPU-seconds of the new stages in a ``validate`` run, and of the rest ("today's")."""
    corpus_step = max(0.0, validate.cpu_s - old.cpu_s)
    per_document = (shares.new_ms / 1000 * validate.docs) if shares else 0.0
    new = corpus_step + per_document
    return new, validate.cpu_s - new


def render_sizes(
    results: Sequence[Measurement],
    sizes: Sequence[float],
    shares: dict[str, ShardShares] | None = None,
) -> list[str]:
    """One row per document size and Prefect mode: every figure the targets name."""
    by = {m.label: m for m in results}
    shares = shares or {}
    rows = [
        "| size | prefect | docs | naive s | validate s | cold s | unchanged s "
        "| naive/cold (>=3x) | cold/validate (<=1.25x) | cold/unchanged (>=4x) "
        "| start->first shard s (<=3) | last shard->exit s | cold docs/s/core (>=150 at 5k) "
        "| validate docs/s/core | naive docs/s/core | new stages (<=20 %) | cold CPU s "
        "| of which server | cold tree peak MB | unchanged tree peak MB | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
        "|---:|---:|---:|---|",
    ]

    def wall(label: str) -> str:
        return f"{by[label].wall_s:.1f}" if label in by else "-"

    def per_core(label: str) -> str:
        return f"{by[label].docs_per_cpu_s:.0f}" if label in by else "-"

    for size_kb in sizes:
        tag = f"{size_kb:g}k"
        naive, validate = by.get(f"naive {tag}"), by.get(f"validate {tag}")
        old = by.get(f"validate old stages {tag}")
        new_stages = "-"
        if validate is not None and old is not None:
            new, today = new_stages_cost(validate, old, shares.get(tag))
            new_stages = f"{100 * new / today:.0f} %" if today > 0 else "-"
        for mode, infix in (("temporary", ""), ("server", "server ")):
            cold, unchanged = by.get(f"cold {infix}{tag}"), by.get(f"unchanged {infix}{tag}")
            if cold is None:
                continue
            marks = cold.marks
            first = f"{marks['first_shard']:.1f}" if "first_shard" in marks else "-"
            tail = f"{cold.wall_s - marks['last_shard']:.1f}" if "last_shard" in marks else "-"
            loads = [m.load for m in (naive, validate, cold, unchanged) if m is not None]
            rows.append(
                f"| {tag} | {mode} | {cold.docs} | {wall(f'naive {tag}')} "
                f"| {wall(f'validate {tag}')} | {cold.wall_s:.1f} "
                f"| {wall(f'unchanged {infix}{tag}')} "
                f"| {ratio(naive.wall_s, cold.wall_s) if naive else '-'} "
                f"| {ratio(cold.wall_s, validate.wall_s) if validate else '-'} "
                f"| {ratio(cold.wall_s, unchanged.wall_s) if unchanged else '-'} | {first} "
                f"| {tail} | {per_core(f'cold {infix}{tag}')} | {per_core(f'validate {tag}')} "
                f"| {per_core(f'naive {tag}')} | {new_stages} | {cold.cpu_s:.1f} "
                f"| {cold.server_cpu_s:.1f} | {cold.tree_peak_rss_mb:.0f} "
                f"| {unchanged.tree_peak_rss_mb if unchanged else 0:.0f} "
                f"| {min(loads):.1f}-{max(loads):.1f} |"
            )
    for tag, share in shares.items():
        rows.append(
            f"\n{tag}: in process on {share.documents} published documents, the stages take "
            f"{share.process_ms:.2f} ms CPU each, of which quality signals "
            f"{share.quality_ms:.2f} ms; the corpus step's facts {share.facts_ms:.2f} ms more"
        )
    return rows


def _report(m: Measurement, log: Path) -> None:
    print(
        f"{m.label}: {m.wall_s:.1f} s (CPU {m.cpu_s:.1f} s, of which the temporary server "
        f"{m.server_cpu_s:.1f} s; load {m.load:.1f}), "
        f"{m.docs_per_s:.1f} docs/s, {m.docs_per_cpu_s:.1f} docs per CPU-second, tree peak "
        f"{m.tree_peak_rss_mb:.0f} MB, exit {m.returncode} (log: {log})",
        flush=True,
    )
    if not m.ok:
        print(m.log[-3000:], file=sys.stderr, flush=True)


def summarize(results: Sequence[Measurement]) -> list[str]:
    """The ratios the issue sets targets for."""
    by = {m.label: m for m in results}
    lines = []
    if "naive" in by and "cold" in by:
        lines.append(
            f"cold vs naive: naive wall / cold wall = {ratio(by['naive'].wall_s, by['cold'].wall_s)} "
            f"(target >= 3x); peak tree RSS {ratio(by['cold'].tree_peak_rss_mb, by['naive'].tree_peak_rss_mb)} of naive's"
        )
    if "unchanged" in by and "cold" in by:
        lines.append(
            f"unchanged vs cold: cold wall / unchanged wall = "
            f"{ratio(by['cold'].wall_s, by['unchanged'].wall_s)} (target >= 4x, unchanged <= 3 s)"
        )
    if "one changed" in by and "cold" in by:
        lines.append(
            f"one changed vs cold: cold wall / one-changed wall = "
            f"{ratio(by['cold'].wall_s, by['one changed'].wall_s)}"
        )
    if "validate (no Prefect)" in by and "cold" in by:
        cold, plain = by["cold"], by["validate (no Prefect)"]
        lines.append(
            f"Prefect + Parquet + publish overhead: cold run - validate = "
            f"{cold.wall_s - plain.wall_s:.1f} s ({(cold.wall_s - plain.wall_s) / cold.wall_s:.0%} of the cold run)"
        )
    for m in results:
        if "first_shard" in m.marks:
            lines.append(
                f"{m.label}: command start -> first shard processed {m.marks['first_shard']:.1f} s "
                f"({m.marks['first_shard'] / m.wall_s:.0%} of its wall time)"
            )
        if m.label.startswith(("cold", "one changed")):
            lines.append(phases(m))
    scaled = [m for m in results if re.fullmatch(r"(cold|validate) \d+", m.label)]
    if len(scaled) >= 2:
        small, large = scaled[0], scaled[-1]
        lines.append(
            f"peak memory {large.docs} vs {small.docs} docs: tree "
            f"{ratio(large.tree_peak_rss_mb, small.tree_peak_rss_mb)}, largest process "
            f"{ratio(large.largest_process_rss_mb, small.largest_process_rss_mb)} "
            f"(flat memory = about 1x)"
        )
    return lines


def profile_stages(source: Path, sample: int, out: Path) -> str:
    """Run the work of ``process-shard`` in this process under pyinstrument.

    The pipeline's workers are separate processes that a profiler attached to the CLI does
    not see; this runs the task's body (``flows.engine.shard.work_shard``: read, process, write) on
    every k-th input, one shard at a time, and returns pyinstrument's text report.
    """
    from pyinstrument import Profiler

    from flows.engine.plan import Shards, prepare
    from flows.engine.run import InlineRunner, execute
    from flows.models import RunParameters
    from flows.stages.language import warm_up

    plan = prepare(RunParameters(source=str(source), out=str(out)), publish=False)
    inputs = [doc for job in plan.shards for doc in job.docs]
    step = max(1, len(inputs) // sample)
    chosen = inputs[::step][:sample]
    sampled = dataclasses.replace(
        plan, shards=Shards(tuple(chosen), len(chosen), plan.params.shard_size)
    )
    warm_up()  # as the workers do before their first shard
    staging = out / "profile-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    profiler = Profiler(interval=0.001)
    profiler.start()
    execute(sampled, InlineRunner(), scratch=staging)
    profiler.stop()
    shutil.rmtree(staging, ignore_errors=True)
    text: str = profiler.output_text(unicode=True, color=False)
    return text


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encodings", choices=("mixed", "utf-8"), default="mixed")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="corpora and outputs")
    parser.add_argument(
        "--scale",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated sizes: cold runs only, to compare peak memory (e.g. 6000,60000)",
    )
    parser.add_argument(
        "--scale-command",
        choices=("run", "validate"),
        default="run",
        help="what --scale runs at each size (default: corpus run)",
    )
    parser.add_argument(
        "--size-kb", type=float, help="mean document size in kB (default: 5-20 kB articles)"
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: [float(x) for x in s.split(",")],
        help="comma-separated mean document sizes in kB (e.g. 1,5,20): naive, validate, "
        "cold and unchanged runs of --docs documents at each, side by side",
    )
    parser.add_argument(
        "--api-url", help="use this running Prefect server instead of a temporary one"
    )
    parser.add_argument(
        "--server",
        action="store_true",
        help="start a real `prefect server start` (SQLite in WORK/prefect-server) before the "
        "timings and run against it, as a scheduled deployment does",
    )
    parser.add_argument(
        "--prefect-home", type=Path, help="PREFECT_HOME for the runs (default: the user's)"
    )
    parser.add_argument("--corpus-cmd", help="how to call the CLI (default .venv/bin/corpus)")
    parser.add_argument(
        "--run-arg",
        action="append",
        default=[],
        help="extra argument for corpus run/validate, repeatable (--run-arg=--shard-size=500)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="kill a command after this many seconds"
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-validate", action="store_true")
    parser.add_argument(
        "--skip-new-stages",
        action="store_true",
        help="--sizes without the run that measures the new stages' cost (validate with "
        "duplicates, furniture and pairs off, and quality and facts timed in process)",
    )
    parser.add_argument(
        "--new-stages-sample", type=int, default=600, help="inputs timed in process per size"
    )
    parser.add_argument(
        "--with-server",
        action="store_true",
        help="--sizes: also cold and unchanged runs against a long-running `prefect server "
        "start` (started once, not timed), next to the temporary-server runs",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=1000,
        metavar="DOCS",
        help="also profile the shard work on DOCS inputs (default 1000) with pyinstrument",
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.server or args.with_server):
        return bench(args)
    from flows.orchestration.server import local_prefect

    # Outside every timing, like the long-lived server of a scheduled deployment; a fresh
    # database each time, so earlier benchmarks' runs do not slow it down.
    home = args.work / "prefect-server"
    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    with local_prefect(home, ui=False) as stack:
        print(f"started a Prefect server in {time.perf_counter() - started:.1f} s (not timed)")
        if args.with_server:  # temporary-server runs, and these next to them
            return bench(args, bench_env(stack.api_url, home))
        args.api_url = stack.api_url
        args.prefect_home = home
        return bench(args)


def bench(args: argparse.Namespace, server_env: dict[str, str] | None = None) -> int:
    env = bench_env(args.api_url, args.prefect_home)
    print(f"machine: {machine()}")
    print(f"code: {working_tree()}")
    where = f"server {args.api_url}" if args.api_url else "a temporary server per run"
    timeout = env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]
    print(
        f"prefect: {where} (startup timeout {timeout} s), PREFECT_HOME {env.get('PREFECT_HOME', '~/.prefect')}"
    )
    runner = Runner(
        env,
        args.work / "logs",
        args.timeout,
        tuple(corpus_command(args.corpus_cmd)),
        tuple(args.run_arg),
    )
    server = None
    if server_env is not None:
        print(f"and a long-running server at {server_env['PREFECT_API_URL']}")
        server = dataclasses.replace(runner, env=server_env)
    shares: dict[str, ShardShares] = {}
    # --sizes and --scale combine, so one run prints every figure of issue 16.
    results = by_size(args, runner, server, shares) if args.sizes else []
    if args.scale:
        results.extend(scale(args, runner))
    if not args.sizes and not args.scale:
        results = compare(args, runner)
    print()
    print(render(results))
    print()
    if args.sizes:
        print("\n".join(render_sizes(results, args.sizes, shares)))
        print()
    for line in summarize(results):
        print(line)
    print(f"machine after: {machine()}")
    if args.profile and not args.scale:
        source = corpus_folder(args.work, args.docs, args.seed, args.encodings, args.size_kb)
        report = profile_stages(source, args.profile, args.work)
        (args.work / "profile.txt").write_text(report, encoding="utf-8")
        print(
            f"\nprofile of the shard work on {args.profile} inputs ({args.work / 'profile.txt'}):"
        )
        print("\n".join(report.splitlines()[:60]))
    if args.json:
        payload: list[dict[str, Any]] = [
            {k: v for k, v in dataclasses.asdict(m).items() if k != "log"} for m in results
        ]
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if all(m.ok for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
