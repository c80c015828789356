"""``corpus``: the command line. Every CorpusError becomes one line and an exit code here.

The options of ``run`` and ``validate`` are generated from :class:`RunParameters`, the same
model the Prefect UI renders as a form, so the two can never disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from flows.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_SIGNAL_BASE,
    EXIT_SOFTWARE,
    ConfigError,
    CorpusError,
    PrefectApiError,
)
from flows.models import RunParameters
from flows.orchestration.server import LocalServerError, TemporaryServer, api_problem

logger = logging.getLogger("flows.cli")


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _base_type(annotation: Any) -> Any:
    """``Annotated[str, ...]`` -> ``str``."""
    while hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    return annotation


def _add_parameter(parser: argparse.ArgumentParser, name: str, info: FieldInfo) -> None:
    flag = "--" + name.replace("_", "-")
    default = info.get_default(call_default_factory=True)
    # argparse %-formats help strings; descriptions may say "98 %".
    help_text = f"{info.description} (default: {default!r})".replace("%", "%%")
    annotation = _strip_optional(info.annotation)
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if get_origin(annotation) is list:
        parser.add_argument(flag, nargs="+", action="extend", metavar="VALUE", **kwargs)
        return
    if get_origin(annotation) is Literal:
        parser.add_argument(flag, choices=[str(a) for a in get_args(annotation)], **kwargs)
        return
    base = _base_type(annotation)
    parser.add_argument(
        flag, type=base if base in (int, float) else str, metavar=name.upper(), **kwargs
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML or JSON file of run parameters.")
    for name, info in RunParameters.model_fields.items():
        _add_parameter(parser, name, info)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpus",
        description="Validate, clean and publish a folder of documents as a versioned Parquet corpus.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the Prefect flow and publish a release.")
    _add_run_options(run)
    run.add_argument(
        "--fail-on-reject", action="store_true", help="Exit 1 when any input was rejected."
    )

    validate = commands.add_parser(
        "validate", help="Run every check, publish nothing; exit 1 if anything would be rejected."
    )
    _add_run_options(validate)
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


def resolve_parameters(args: argparse.Namespace) -> RunParameters:
    """Defaults < config file < command-line options."""
    from flows.settings import load_config_file, parameters

    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in RunParameters.model_fields})
    return parameters(values, where=f"config {args.config}" if args.config else "options")


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError as error:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from error


class RunGuard:
    """Ends ``corpus run`` within a bounded time, whatever stops it.

    SIGINT and SIGTERM, the temporary server exiting and an external API that stops
    answering all go through :meth:`request_stop`: the pool's worker processes are
    terminated at once (a worker busy with a shard would otherwise hold the flow's exit
    until the shard is done), the main thread gets a KeyboardInterrupt so Prefect unwinds
    and marks the flow run crashed, and a timer ends the process after ``grace`` seconds
    if that unwinding does not finish (a dead API, a stuck thread).

    Signals are watched through ``signal.set_wakeup_fd`` as well as by a handler: while a
    flow runs Prefect replaces the SIGTERM handler with its own, and the wakeup fd still
    reports the signal at once to the watcher thread here.
    """

    def __init__(self, grace: float, api_timeout: float) -> None:
        self.grace = grace
        self.api_timeout = api_timeout
        self.reason: str | None = None
        self.exit_code = EXIT_FAILURE
        self.server: TemporaryServer | None = None
        self.api_url: str | None = None
        self.out: Path | None = None
        self.log_path: Path | None = None
        self.cleaning = False
        self._stagings_before: set[str] = set()
        self._lock = threading.Lock()
        self._interrupted = False
        self._closed = threading.Event()
        self._timer: threading.Timer | None = None
        self._pipe: tuple[int, int] | None = None
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1

    # -- signals -------------------------------------------------------------------------

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals can only be handled in the main thread (tests calling main())
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._pipe = (read_fd, write_fd)
        self._old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch_signals, name="corpus-signals", daemon=True).start()

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        self.request_stop(*_signal_stop(signum))
        # Once: Prefect sends SIGTERM to itself again after handling it, and a second
        # KeyboardInterrupt must not cut short the cleanup that the first one started.
        if not self._interrupted and not self.cleaning:
            self._interrupted = True
            raise KeyboardInterrupt

    def _watch_signals(self) -> None:
        assert self._pipe is not None
        read_fd = self._pipe[0]
        try:
            while data := os.read(read_fd, 64):
                for signum in data:
                    if signum in (signal.SIGINT, signal.SIGTERM):
                        # The signal reaches the main thread by itself (our handler, or
                        # Prefect's for SIGTERM while a flow runs): no second interrupt.
                        self.request_stop(*_signal_stop(signum), interrupt_main=False)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(read_fd)

    # -- stopping ------------------------------------------------------------------------

    def request_stop(self, reason: str, exit_code: int, interrupt_main: bool = True) -> None:
        """The first reason wins; later calls do nothing."""
        with self._lock:
            if self.reason is not None or self._closed.is_set():
                return
            self.reason, self.exit_code = reason, exit_code
            self._timer = threading.Timer(self.grace, self._out_of_time)
            self._timer.daemon = True
            self._timer.start()
        logger.warning("stopping the run: %s", reason)
        terminate_pool_workers()
        if (
            interrupt_main
            and threading.current_thread() is not threading.main_thread()
            and not self._interrupted
        ):
            # A real signal to the main thread interrupts the lock wait it may be in; the
            # handler above turns it into a KeyboardInterrupt.
            with contextlib.suppress(OSError, ValueError):
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def _out_of_time(self) -> None:
        if self._closed.is_set():
            return
        logger.error("the run did not stop within %.0f s; ending it", self.grace)
        terminate_pool_workers(kill=True)
        if self.server is not None:
            self.server.kill()
        self.remove_staging()
        _say(f"{self.reason}; the previous release is still current", self.log_path)
        logging.shutdown()
        os._exit(self.exit_code)

    # -- the API -------------------------------------------------------------------------

    def watch_api(self) -> None:
        """From now on a temporary server that exits, or an API that stops answering for
        ``api_timeout`` seconds, stops the run (Prefect's client would retry for minutes)."""
        threading.Thread(target=self._watch_api, name="corpus-api-watch", daemon=True).start()

    def _watch_api(self) -> None:
        failing_since: float | None = None
        while not self._closed.wait(1.0 if self.server else 5.0):
            if self.reason is not None:
                return
            if self.server is not None:
                code = self.server.exited
                if code is not None:
                    self.request_stop(
                        f"the temporary Prefect server exited (code {code}) during the run",
                        EXIT_FAILURE,
                    )
                    return
                continue
            if self.api_url is None:
                continue
            problem = api_problem(self.api_url, min(5.0, self.api_timeout))
            if problem is None:
                failing_since = None
                continue
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since >= self.api_timeout:
                self.request_stop(
                    f"the Prefect API at {self.api_url} stopped answering during the run "
                    f"({problem})",
                    EXIT_FAILURE,
                )
                return

    # -- the output ----------------------------------------------------------------------

    def watch_output(self, out: Path) -> None:
        self.out = out
        self._stagings_before = {p.name for p in _stagings(out)}

    def remove_staging(self) -> None:
        """Remove the staging folder this run created, if this run held the output's lock
        (the lock file names the holder's pid; a later run overwrites it)."""
        if self.out is None:
            return
        try:
            holder = (self.out / ".lock").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        if not holder.startswith(f"pid {os.getpid()} "):
            return
        for staging in _stagings(self.out):
            if staging.name not in self._stagings_before:
                logger.info("removing the unfinished release %s", staging.name)
                shutil.rmtree(staging, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            if self._timer is not None:
                self._timer.cancel()
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            with contextlib.suppress(OSError):
                os.close(self._pipe[1])  # the watcher reads EOF and closes its end
            self._pipe = None


def _signal_stop(signum: int) -> tuple[str, int]:
    name = signal.Signals(signum).name
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    return f"{what} ({name})", EXIT_SIGNAL_BASE + signum


def _stagings(out: Path) -> list[Path]:
    from flows.output.release import RELEASES, STAGING_PREFIX

    try:
        return [p for p in (out / RELEASES).glob(f"{STAGING_PREFIX}*") if p.is_dir()]
    except OSError:
        return []


def terminate_pool_workers(kill: bool = False) -> None:
    """Stop this process's multiprocessing children (the ProcessPoolTaskRunner's workers).

    A dead worker breaks the pool at once, so Prefect's ``shutdown(wait=True)`` returns
    instead of waiting for the shards in progress.
    """
    import multiprocessing

    for _ in range(3):
        try:
            children = multiprocessing.active_children()
            break
        except RuntimeError:  # the pool's thread added a worker while we looked
            continue
    else:
        return
    for child in children:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            child.kill() if kill else child.terminate()
    for child in children:
        with contextlib.suppress(OSError, AssertionError, ValueError):
            child.join(timeout=2)


@contextlib.contextmanager
def prefect_api(guard: RunGuard) -> Iterator[None]:
    """Use the configured Prefect API; otherwise one temporary local server for the run.

    Prefect would start its own temporary server in every worker process of the process
    pool (10+ s each, and their task runs land in different databases); exporting the URL
    of a single server makes the workers report to it. The server is started before
    Prefect is imported, so its boot overlaps the CLI's imports.
    """
    server: TemporaryServer | None = None
    stack = contextlib.ExitStack()
    if not os.environ.get("PREFECT_API_URL"):
        # Started on speculation: only Prefect's settings (profiles, prefect.toml) can say
        # whether an API is configured, and reading them imports Prefect (~3 s).
        fd, log_name = tempfile.mkstemp(prefix="corpus-prefect-server-", suffix=".log")
        os.close(fd)
        server = TemporaryServer(Path(log_name))
        server.start()
        guard.server = server
    try:
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        import flows.orchestration.flow  # noqa: F401  # the expensive import, while the server boots

        _quiet_prefect_console()
        _quiet_workers(guard, stack)
        configured = get_current_settings().api.url
        if server is None or configured:
            _stop_server(server)
            server = guard.server = None
            assert configured is not None
            _check_api(configured, guard.api_timeout)
            guard.api_url = configured
            guard.watch_api()
            try:
                yield
            finally:
                _drain_prefect_workers(guard)
            return
        logger.info("PREFECT_API_URL is not set: starting a temporary Prefect server")
        try:
            server.wait_healthy(_env_seconds("CORPUS_SERVER_STARTUP_SECONDS", 120))
        except LocalServerError as error:
            raise LocalServerError(
                f"could not start a temporary Prefect server ({error}); "
                "start one with `prefect server start` and set PREFECT_API_URL"
            ) from error
        logger.info("temporary Prefect server on %s", server.api_url)
        # Through the environment, so the pool's worker processes inherit it, and into
        # Prefect's global settings, which every thread of this process reads (a
        # temporary_settings context would cover this thread only).
        os.environ["PREFECT_API_URL"] = server.api_url
        refresh_global_settings_context()
        guard.watch_api()
        try:
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)
            _drain_prefect_workers(guard)
            refresh_global_settings_context()
    finally:
        stack.close()
        _stop_server(server)


def _quiet_workers(guard: RunGuard, stack: contextlib.ExitStack) -> None:
    """Point the pool's worker processes (they inherit the environment) at a logging
    configuration that keeps errors off the terminal: see :mod:`flows.console`."""
    if guard.log_path is None or "PREFECT_LOGGING_CONFIG_PATH" in os.environ:
        return  # the user's own configuration wins
    from flows.console import worker_logging_config

    with contextlib.suppress(OSError):  # a full disk: the workers keep Prefect's
        config = worker_logging_config(guard.log_path.parent)
        if config is not None:
            os.environ["PREFECT_LOGGING_CONFIG_PATH"] = str(config)
            stack.callback(os.environ.pop, "PREFECT_LOGGING_CONFIG_PATH", None)


def _check_api(api_url: str, timeout: float) -> None:
    problem = api_problem(api_url, timeout)
    if problem is not None:
        raise PrefectApiError(
            f"the Prefect API at {api_url} is not answering ({problem}); "
            "start it or unset PREFECT_API_URL"
        )


def _drain_prefect_workers(guard: RunGuard) -> None:
    # Send the last logs and events while the server still listens. Bounded: against an
    # API that is gone these queues would retry for many minutes.
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    timeout = 2.0 if guard.reason else 10.0
    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout)
        except Exception:  # a failed flush must not hide the run's outcome
            logger.debug("draining %s failed", worker.__name__, exc_info=True)


def _stop_server(server: TemporaryServer | None) -> None:
    if server is None:
        return
    if server.exited is not None:  # it died on its own: what it said goes to the run's log
        logging.getLogger(FAILURE_LOGGER).error(
            "the temporary Prefect server exited with %s; its log:\n%s",
            server.exited,
            server.log_tail(),
        )
    server.stop()
    with contextlib.suppress(OSError):
        server.log_path.unlink()


def _run(args: argparse.Namespace, guard: RunGuard) -> int:
    from flows.engine.plan import preflight

    params = resolve_parameters(args)
    # A bad source, output, lock or rule file fails here, before a server starts (the
    # flow's prepare step runs the same check again, where a deployment starts it).
    out = preflight(params).out
    assert out is not None  # preflight of a run that publishes
    guard.log_path = _start_log_file(out)
    _start_resource_tracker(guard.log_path)
    guard.watch_output(out)
    with prefect_api(guard):
        from flows.orchestration.flow import corpus_release

        result = corpus_release(params)
    if guard.reason is not None:  # a stop that landed as the flow finished
        raise KeyboardInterrupt
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
    with local_prefect(Path(args.home), port=args.port) as stack:
        stack.create_pool()
        stack.deploy_all(project)
        if not args.no_worker:
            stack.start_worker(project)
        sys.stdout.write(
            f"Prefect UI and API: http://127.0.0.1:{args.port} (logs: {args.home}/corpus-server.log)\n"
            f"In another shell:   export PREFECT_API_URL={stack.api_url}\n"
            "Run now:            prefect deployment run corpus-release/manual "
            '--params \'{"params": {"source": "seeds", "out": "dist"}}\'\n'
            "The nightly deployment runs at 02:00 UTC. Ctrl-C stops the worker and the server.\n"
        )
        sys.stdout.flush()
        while all(process.poll() is None for process in stack.processes):
            time.sleep(1)
        failed = [p.args for p in stack.processes if p.poll() is not None]
        raise CorpusError(f"a Prefect process exited: {failed}")


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


FAILURE_LOGGER = "flows.cli.failure"
_PREFECT_CONSOLE_HANDLERS = ("PrefectConsoleHandler", "_SafeStreamHandler")
LOG_DIR = "logs"
KEEP_LOGS = 20
# The handlers this process installed, so Prefect's console handlers can be told apart.
_handlers: dict[str, logging.Handler] = {}


class _NoTraceback(logging.Formatter):
    """One line per record on the console: tracebacks go to the log file only."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _console_filter(record: logging.LogRecord) -> bool:
    # Prefect's errors restate the failure that the one `corpus:` line reports (with a
    # traceback each); they are kept in the log file.
    if record.name == FAILURE_LOGGER:
        return False
    return not (record.name.startswith("prefect") and record.levelno >= logging.ERROR)


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    # Like basicConfig: only where nobody (pytest, an embedding program) configured logging.
    if not root.handlers:
        console = _handlers["console"] = logging.StreamHandler()
        console.setFormatter(_NoTraceback("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        console.addFilter(_console_filter)
        root.addHandler(console)
        # Third-party loggers (httpx logs every API call) at WARNING; ours below at INFO.
        root.setLevel(logging.WARNING)
    logging.getLogger("flows").setLevel(logging.DEBUG if verbose else logging.INFO)


def _quiet_prefect_console() -> None:
    """Prefect's console handlers (on the root logger, and ``prefect._internal``'s, which
    does not propagate) go: their records reach ours instead, the console filter above and
    the log file."""
    for name in ["", *logging.root.manager.loggerDict]:
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            if type(handler).__name__ in _PREFECT_CONSOLE_HANDLERS:
                log.removeHandler(handler)
                log.propagate = True


class _LogFile(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        # A full disk must not turn every later record into a traceback on the terminal.
        pass


def _start_log_file(out: Path) -> Path:
    """``OUT/logs/corpus-<UTC time>-<pid>.log``: everything this run logs, with tracebacks."""
    folder = out / LOG_DIR
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        folder.mkdir(exist_ok=True)
        for old in sorted(folder.glob("corpus-*.log"))[:-KEEP_LOGS]:
            old.unlink(missing_ok=True)
        path = folder / f"corpus-{stamp}-{os.getpid()}.log"
        handler: logging.Handler = _LogFile(path, encoding="utf-8", delay=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / f"corpus-{stamp}-{os.getpid()}.log"
        handler = _LogFile(path, encoding="utf-8", delay=True)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(process)d %(threadName)s %(name)s: %(message)s"
        )
    )
    logging.getLogger().addHandler(handler)
    _handlers["file"] = handler
    return path


def _start_resource_tracker(log_path: Path) -> None:
    """Start multiprocessing's resource tracker with its stderr on the run's log file.

    The tracker outlives this process by a moment and reports the pool's semaphores that
    an interrupted run could not release ("leaked semaphore objects", which it then
    removes): worth a line in the log, not on the user's terminal.
    """
    from multiprocessing import resource_tracker

    try:
        with log_path.open("ab") as log:
            saved = os.dup(2)
            try:
                sys.stderr.flush()
                os.dup2(log.fileno(), 2)
                resource_tracker.ensure_running()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    except OSError:
        logger.debug("resource tracker not redirected", exc_info=True)


def _crash_log(error: BaseException) -> Path | None:
    """A log file for a failure before the run's own log file was opened."""
    try:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = Path(tempfile.gettempdir()) / f"corpus-{stamp}-{os.getpid()}.log"
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(traceback.format_exception(error)))
    except OSError:
        return None
    return path


def _say(message: str, log_path: Path | None) -> None:
    details = f" (details: {log_path})" if log_path is not None else ""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"corpus: {message}{details}\n")
        sys.stderr.flush()


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe(error: BaseException) -> tuple[int, str, bool]:
    """Exit code, message, and whether the message is the whole story (no log needed)."""
    for cause in _chain(error):
        # Prefect may hand back an error raised inside the flow as the cause of its own.
        if isinstance(cause, CorpusError):
            return cause.exit_code, str(cause), cause.__cause__ is None
    if isinstance(error, KeyboardInterrupt):
        return EXIT_SIGNAL_BASE + signal.SIGINT, "interrupted (SIGINT)", True
    signum = getattr(error, "signal", None)
    if isinstance(signum, int):  # prefect.exceptions.TerminationSignal
        return EXIT_SIGNAL_BASE + signum, _signal_stop(signum)[0], False
    for cause in _chain(error):
        if isinstance(cause, OSError):
            where = f": {cause.filename}" if cause.filename else ""
            return EXIT_FAILURE, f"{cause.strerror or cause}{where}", False
        module = type(cause).__module__
        if module.startswith("pyarrow"):
            return EXIT_FAILURE, f"a Parquet file could not be read or written ({cause})", False
        if module.startswith(("httpx", "httpcore")) or type(cause).__name__ == (
            "PrefectHTTPStatusError"
        ):
            return EXIT_FAILURE, f"the Prefect API failed ({type(cause).__name__}: {cause})", False
    return EXIT_SOFTWARE, f"internal error ({type(error).__name__}: {error})", False


def _fail(error: BaseException, guard: RunGuard | None) -> int:
    log_path = guard.log_path if guard is not None else None
    if guard is not None and guard.reason is not None:
        code, message, plain = guard.exit_code, guard.reason, False
        if code >= EXIT_SIGNAL_BASE or isinstance(error, KeyboardInterrupt | CorpusError):
            message += "; the previous release is still current"
    else:
        code, message, plain = _describe(error)
    logging.getLogger(FAILURE_LOGGER).error("corpus: %s", message, exc_info=error)
    if log_path is None and not plain:
        log_path = _crash_log(error)
    _say(message, None if plain else log_path)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The ``corpus`` command. Returns the exit code; run as the script, it also leaves the
    process at once after a bounded cleanup (see :func:`_leave`)."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    guard: RunGuard | None = None
    try:
        if args.command == "run":
            guard = RunGuard(
                _env_seconds("CORPUS_STOP_GRACE_SECONDS", 10),
                _env_seconds("CORPUS_API_TIMEOUT_SECONDS", 15),
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
        code = _fail(error, guard)
    finally:
        if guard is not None:
            guard.close()
        if "file" in _handlers:
            file_handler = _handlers.pop("file")
            logging.getLogger().removeHandler(file_handler)
            file_handler.close()
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
