"""What the pool's worker processes print on the terminal they share with ``corpus run``.

Prefect's console handler prints a failing task's traceback in the worker; the CLI reports
the failure itself, in one line, with the traceback in the run's log file (and Prefect
sends the worker's records to the API either way). Workers therefore print Prefect's
console records below ERROR only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect.logging.handlers import PrefectConsoleHandler

_PREFECT_CONSOLE = "class: prefect.logging.handlers.PrefectConsoleHandler"


class WorkerConsoleHandler(PrefectConsoleHandler):
    """Prefect's console handler without ERROR and CRITICAL records."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR:
            super().emit(record)


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
