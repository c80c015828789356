"""What the pool's worker processes print on the terminal they share with ``corpus run``.

Prefect's console handler prints a failing task's traceback in the worker, and every
finished task run, in a format of its own; the CLI reports a failure itself, in one line,
with the traceback in the run's log file, and says what each shard did (Prefect sends the
worker's records to the API either way). Workers therefore print warnings only, in the
CLI's line format.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from prefect.logging.handlers import PrefectConsoleHandler

from flows.terminal import RunFormatter

_PREFECT_CONSOLE = "class: prefect.logging.handlers.PrefectConsoleHandler"


class WorkerConsoleHandler(PrefectConsoleHandler):
    """Prefect's console handler (its configuration applies), for warnings only and in the
    CLI's line format. Errors are the CLI's one line; INFO records (a shard's task run
    finished) are said once, by the flow's progress line or bar."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.WARNING <= record.levelno < logging.ERROR:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(_FORMAT.format(record) + "\n")
                sys.stderr.flush()


_FORMAT = RunFormatter()


def worker_logging_config(folder: Path) -> Path | None:
    """Prefect's own logging configuration with :class:`WorkerConsoleHandler` as its
    console handler, written to ``folder``; None if Prefect's file is not as expected."""
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH

    text = DEFAULT_LOGGING_SETTINGS_PATH.read_text(encoding="utf-8")
    if _PREFECT_CONSOLE not in text:
        return None
    path = folder / ".prefect-logging.yml"
    path.write_text(
        text.replace(_PREFECT_CONSOLE, f"class: {__name__}.{WorkerConsoleHandler.__name__}"),
        encoding="utf-8",
    )
    return path
