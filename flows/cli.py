"""``corpus``: the command line -- its parser and one body per command.

The options of ``run`` and ``validate`` come from :mod:`flows.options`; every failure
becomes one line and an exit code through :mod:`flows.failures`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows.errors import (
    EXIT_OK,
    EXIT_REJECTED,
    CorpusError,
)
from flows.failures import (
    close_log_file,
    configure_logging,
    fail,
    start_log_file,
    start_resource_tracker,
)
from flows.models import RunParameters
from flows.options import add_run_options, resolve_parameters
from flows.orchestration.lifecycle import (
    RunGuard,
    env_seconds,
    prefect_api,
    start_temporary_server,
    terminate_pool_workers,
)
from flows.orchestration.server import TemporaryServer
from flows.terminal import stop_progress

logger = logging.getLogger("flows.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpus",
        description="Validate, clean and publish a folder of documents as a versioned Parquet corpus.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the Prefect flow and publish a release.")
    add_run_options(run)
    run.add_argument(
        "--fail-on-reject", action="store_true", help="Exit 1 when any input was rejected."
    )

    validate = commands.add_parser(
        "validate", help="Run every check, publish nothing; exit 1 if anything would be rejected."
    )
    add_run_options(validate)
    validate.add_argument("--json", action="store_true", help="Print the report as JSON.")

    report = commands.add_parser(
        "boilerplate-report",
        help="List lines that repeat across many documents (boilerplate candidates).",
    )
    report.add_argument("--source", required=True, metavar="DIR", help="Folder of documents.")
    report.add_argument(
        "--min-docs",
        type=int,
        default=5,
        metavar="N",
        help="Report lines found in at least N documents (default: 5).",
    )
    report.add_argument(
        "--include", nargs="+", default=["*.txt"], metavar="GLOB", help="Globs of documents."
    )
    report.add_argument(
        "--out", metavar="FILE", help="Also write the candidates as a TOML rule file to review."
    )
    report.add_argument(
        "--limit", type=int, default=50, metavar="N", help="Print at most N candidates."
    )

    schemas = commands.add_parser("schemas", help="Write schemas/*.schema.json from the models.")
    schemas.add_argument("--check", action="store_true", help="Fail if the files differ.")
    schemas.add_argument("--dir", default="schemas", help="Folder of the schema files.")

    serve = commands.add_parser(
        "serve",
        help="Start a local Prefect server on 127.0.0.1, create the work pool, deploy "
        "prefect.yaml and run a worker, until Ctrl-C.",
    )
    serve.add_argument("--port", type=int, default=4200, help="Server port (default 4200).")
    serve.add_argument(
        "--home",
        default=str(Path.home() / ".prefect"),
        help="PREFECT_HOME: where the server keeps its SQLite database.",
    )
    serve.add_argument("--project", default=".", help="Folder holding prefect.yaml.")
    serve.add_argument("--no-worker", action="store_true", help="Do not start a worker.")
    return parser


def _early_server(args: argparse.Namespace) -> TemporaryServer | None:
    """The temporary server, spawned before anything else for a run sure to need one: no
    ``PREFECT_API_URL`` and no release in the output yet (a run with one may find nothing
    changed, and then starts no server). Its boot (~3.5 s of CPU with an existing
    database) is the longest chain before the first shard; the stop of the run, whatever
    ends it, stops it (:meth:`RunGuard.close`)."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    out = getattr(args, "out", None) or (
        None if args.config else RunParameters.model_fields["out"].default
    )
    if not isinstance(out, str) or os.path.lexists(os.path.join(out, "current")):
        return None
    return start_temporary_server()


def _run(args: argparse.Namespace, guard: RunGuard) -> int:
    guard.server = _early_server(args)
    from flows.engine.plan import preflight, prepare
    from flows.engine.unchanged import same_configuration, unchanged_release
    from flows.settings import config_fingerprint

    params = resolve_parameters(args)
    # A bad source, output, lock or rule file fails here, before a server starts (the
    # flow's prepare step runs the same check again, where a deployment starts it).
    checked = preflight(params)
    out = checked.out
    assert out is not None  # preflight of a run that publishes
    # Nothing to publish is found out before a server starts (the flow checks again: a
    # deployment's run starts there).
    current = None
    if same_configuration(
        out, config_fingerprint(params, checked.rules_digest), params.force_release
    ):
        current = unchanged_release(prepare(params, checked=checked))
    if current is not None:
        sys.stdout.write(f"unchanged: current is {current.release_id}\n")
        rejected = current.counts.get("rejected", 0)
        return EXIT_REJECTED if args.fail_on_reject and rejected else EXIT_OK
    guard.log_path = start_log_file(out)
    start_resource_tracker(guard.log_path)
    guard.watch_output(out)
    if params.task_runner == "process":
        from flows.engine import headstart
        from flows.engine.pool import start_local_pool, stop_local_pool, submit_shard, window

        # Now, before the server and Prefect's import: the workers boot and load the
        # language profiles meanwhile (the flow's tasks hand them the shards). From a
        # thread: the first worker waits for its forkserver to import the engine (~1 s),
        # and the server's start must not.
        workers = params.workers or os.cpu_count() or 1
        threading.Thread(
            target=start_local_pool, args=(workers,), name="corpus-workers", daemon=True
        ).start()
        if guard.server is not None:
            # A cold run: its plan and first shards too, while the server boots (the flow
            # takes them over; a stop or a failure before that discards them).
            submit = functools.partial(submit_shard, workers=workers)
            headstart.begin(params, checked, window(workers), submit)
    try:
        with prefect_api(guard):
            from flows.orchestration.flow import corpus_release

            result = corpus_release(params)
    except BaseException:
        if params.task_runner == "process":
            stop_local_pool(wait=False)  # a shard may still run: main() ends the workers
        raise
    if params.task_runner == "process":
        stop_local_pool()
        headstart.discard()  # taken over by the flow: nothing left, unless it planned anew
    if guard.reason is not None:  # a stop that landed as the flow finished
        raise KeyboardInterrupt
    stop_progress()
    if result.unchanged:
        sys.stdout.write(f"unchanged: current is {result.release_id}\n")
        return EXIT_REJECTED if args.fail_on_reject and result.rejected else EXIT_OK
    sys.stdout.write(
        f"published {result.published} of {result.inputs} inputs "
        f"({result.rejected} rejected, {result.skipped} skipped, {result.reused} unchanged and reused, "
        f"{result.metadata_issues} metadata issues) -> {result.path}\n"
    )
    return EXIT_REJECTED if args.fail_on_reject and result.rejected else EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from flows.engine.pool import PoolRunner
    from flows.validate import render_report, validate

    params = resolve_parameters(args)
    report = validate(params, PoolRunner(params.workers))
    stop_progress()
    sys.stdout.write(
        json.dumps(report.as_dict(), indent=2) + "\n" if args.json else render_report(report)
    )
    return EXIT_REJECTED if report.rejected or report.metadata_issues else EXIT_OK


def _boilerplate_report(args: argparse.Namespace) -> int:
    from flows.engine.plan import prepare
    from flows.engine.shard import read_inputs
    from flows.learn import LineCounter, rule_file
    from flows.stages.encoding import decode
    from flows.stages.types import Rejection

    params = RunParameters(source=args.source, include=args.include)
    if args.min_docs < 1:
        sys.stderr.write("corpus: --min-docs must be at least 1\n")
        return 2
    plan = prepare(params, publish=False)
    counter = LineCounter()
    unreadable = 0
    for job in plan.shards:
        for item in read_inputs(job, str(plan.root), params.max_file_bytes):
            decoded = (
                item.payload
                if isinstance(item.payload, Rejection)
                else decode(item.payload, plan.config.encoding)
            )
            if isinstance(decoded, Rejection):
                unreadable += 1
                continue
            counter.add(decoded.text)
    candidates = counter.candidates(args.min_docs, plan.config.rules)
    sys.stdout.write(
        f"{len(candidates)} lines in at least {args.min_docs} of {counter.documents} "
        f"documents ({unreadable} inputs not readable as text)\n"
        "  docs  share  times  already removed by  line\n"
    )
    for c in candidates[: args.limit]:
        sys.stdout.write(
            f"{c.documents:6d} {c.share:6.0%} {c.occurrences:6d}  "
            f"{c.covered_by or '-':17.17s}  {c.text[:100]}\n"
        )
    if args.out:
        Path(args.out).write_text(rule_file(candidates, source=args.source), encoding="utf-8")
        sys.stdout.write(f"wrote {args.out}: review it, then pass it with --boilerplate-rules\n")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from flows.orchestration.server import local_prefect

    project = Path(args.project).resolve()
    if not (project / "prefect.yaml").is_file():
        raise CorpusError(f"no prefect.yaml in {project}")
    home = Path(args.home).resolve()
    with _StopOnSignal() as stop:
        try:
            with local_prefect(home, port=args.port) as stack:
                stack.create_pool()
                stack.deploy_all(project)
                if not args.no_worker:
                    stack.start_worker(project)
                sys.stdout.write(serve_hints(args.port, stack.api_url, home, project))
                sys.stdout.flush()
                while all(process.poll() is None for process in stack.processes):
                    time.sleep(1)
                failed = [
                    f"the {'Prefect server' if i == 0 else 'worker'} (exit {p.returncode})"
                    for i, p in enumerate(stack.processes)
                    if p.poll() is not None
                ]
                raise CorpusError(
                    f"{', '.join(failed)} stopped; its log: {home / 'corpus-server.log'}"
                )
        except KeyboardInterrupt:
            # local_prefect has stopped the worker and the server on the way out.
            sys.stderr.write(
                f"corpus serve: stopped ({stop.name}); the worker and the Prefect server "
                "are stopped\n"
            )
            return EXIT_OK


class _StopOnSignal:
    """SIGINT and SIGTERM (a terminal's Ctrl-C; systemd, Docker and most supervisors) stop
    ``corpus serve`` the same way: one KeyboardInterrupt, so the stack is stopped on the way
    out; a second signal while it stops is only acknowledged, so the stop is not cut short
    and leaves nothing behind."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        if self.signum is not None:
            sys.stderr.write("corpus serve: already stopping\n")
            return
        self.signum = signum
        sys.stderr.write(
            f"corpus serve: {signal.Signals(signum).name}: stopping the worker and the "
            "Prefect server\n"
        )
        raise KeyboardInterrupt


def serve_hints(port: int, api_url: str, home: Path, project: Path) -> str:
    """What to do next, as commands that work pasted into a fresh shell: the API URL on
    the command, and the project's own environment (``uv run --project``), not a
    ``prefect`` that only an activated virtual environment has."""
    params = shlex.quote(json.dumps({"params": {"source": "seeds", "out": "dist"}}))
    run = (
        f"PREFECT_API_URL={api_url} uv run --project {shlex.quote(str(project))} "
        f"prefect deployment run corpus-release/manual --params {params}"
    )
    return (
        f"Prefect UI:  http://127.0.0.1:{port}  (server and worker log: "
        f"{home / 'corpus-server.log'})\n"
        f"Run now, from any shell (or in the UI: Deployments, manual, Run):\n  {run}\n"
        "The nightly deployment runs at 02:00 UTC. Ctrl-C or SIGTERM stops the worker "
        "and the server.\n"
    )


def _schemas(args: argparse.Namespace) -> int:
    from flows.schemas import check_schemas, write_schemas

    folder = Path(args.dir)
    if args.check:
        drifted = check_schemas(folder)
        for name in drifted:
            sys.stderr.write(
                f"corpus: {folder / name} differs from the model; run `corpus schemas`\n"
            )
        return EXIT_REJECTED if drifted else EXIT_OK
    for path in write_schemas(folder):
        sys.stdout.write(f"wrote {path}\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The ``corpus`` command. Returns the exit code; run as the script, it also leaves the
    process at once after a bounded cleanup (see :func:`_leave`)."""
    args = build_parser().parse_args(argv)
    # No usage data sent from a data pipeline's machine (often without a route out), and no
    # first-run telemetry notice in the middle of a run's output; the user's own setting wins.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    configure_logging(args.verbose)
    guard: RunGuard | None = None
    try:
        if args.command == "run":
            guard = RunGuard(
                env_seconds("CORPUS_STOP_GRACE_SECONDS", 10),
                env_seconds("CORPUS_API_TIMEOUT_SECONDS", 15),
            )
            guard.install()
            code = _run(args, guard)
        else:
            handlers: dict[str, Callable[[argparse.Namespace], int]] = {
                "validate": _validate,
                "schemas": _schemas,
                "boilerplate-report": _boilerplate_report,
                "serve": _serve,
            }
            code = handlers[args.command](args)
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001  # every failure ends as one line and a code
        if guard is not None:
            guard.cleaning = True
            terminate_pool_workers()
            guard.remove_staging()
        code = fail(error, guard)
    finally:
        stop_progress()
        if guard is not None:
            guard.close()
        close_log_file()
    if argv is None:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """Exit without Prefect's interpreter-exit hooks once Prefect was used.

    Prefect drains its log and event queues at interpreter exit without a time limit (17
    minutes against a server that had died); this process already drained them with a
    bound, stopped its server and its pool workers.
    """
    if "prefect" not in sys.modules:
        return
    # What the skipped exit hooks would have done for multiprocessing: close the pool's
    # queues and release their semaphores (otherwise the resource tracker warns about
    # "leaked semaphore objects" on stderr). Bounded: a queue's feeder thread may be stuck.
    from multiprocessing import util

    run_finalizers = util._run_finalizers  # type: ignore[attr-defined]  # private, stable since 2.6
    finalizers = threading.Thread(target=run_finalizers, args=(0,), daemon=True)
    finalizers.start()
    finalizers.join(timeout=3)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
