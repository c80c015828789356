"""CLI failures: one line on the terminal, the traceback in the run's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from flows.errors import (
    EXIT_FAILURE,
    EXIT_SIGNAL_BASE,
    EXIT_SOFTWARE,
    CorpusError,
)
from flows.terminal import console_handler, stop_progress

if TYPE_CHECKING:
    from flows.orchestration.lifecycle import RunGuard

logger = logging.getLogger(__name__)


FAILURE_LOGGER = "flows.cli.failure"
_PREFECT_CONSOLE_HANDLERS = ("PrefectConsoleHandler", "_SafeStreamHandler")
LOG_DIR = "logs"
KEEP_LOGS = 20
# The handlers this process installed, so Prefect's console handlers can be told apart.
_handlers: dict[str, logging.Handler] = {}


def _console_filter(record: logging.LogRecord) -> bool:
    # Prefect's errors restate the failure that the one `corpus:` line reports (with a
    # traceback each); they are kept in the log file.
    if record.name == FAILURE_LOGGER:
        return False
    # A shard's task run finishing is said once, by the progress line or bar (the shards'
    # tasks run in this process's threads: flows.orchestration.flow.task_runner_for).
    if (
        record.levelno < logging.WARNING
        and record.name == "prefect.task_runs"
        and str(getattr(record, "task_run_name", "")).startswith("process-shard")
    ):
        return False
    return not (record.name.startswith("prefect") and record.levelno >= logging.ERROR)


def configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    # Like basicConfig: only where nobody (pytest, an embedding program) configured logging.
    if not root.handlers:
        # One line format for ours, Prefect's and the pool workers' records; a progress
        # bar when stderr is a terminal (flows.terminal).
        console = _handlers["console"] = console_handler(sys.stderr)
        console.addFilter(_console_filter)
        root.addHandler(console)
        # Third-party loggers (httpx logs every API call) at WARNING; ours below at INFO.
        root.setLevel(logging.WARNING)
    logging.getLogger("flows").setLevel(logging.DEBUG if verbose else logging.INFO)


def quiet_prefect_console() -> None:
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

    def close(self) -> None:
        # Closing flushes: on a full disk that fails too, and the log is only the details.
        with contextlib.suppress(OSError):
            super().close()


def start_log_file(out: Path) -> Path:
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


def start_resource_tracker(log_path: Path) -> None:
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


def say(message: str, log_path: Path | None) -> None:
    details = f" (details: {log_path})" if log_path is not None else ""
    stop_progress()  # the line goes below the bar, not through it
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
        return EXIT_SIGNAL_BASE + signum, signal_stop(signum)[0], False
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


def fail(error: BaseException, guard: RunGuard | None) -> int:
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
    say(message, None if plain else log_path)
    return code


def signal_stop(signum: int) -> tuple[str, int]:
    name = signal.Signals(signum).name
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    return f"{what} ({name})", EXIT_SIGNAL_BASE + signum


def close_log_file() -> None:
    """Detach and close the run's log file, if one was started."""
    handler = _handlers.pop("file", None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close()
