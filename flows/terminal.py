"""The terminal's view of a run's log: one line format, and a progress bar on a terminal.

Every line the CLI prints about a run is a log record (ours, Prefect's, a pool worker's);
they all go through :class:`RunFormatter`, which names the task or flow a Prefect record
comes from ("task publish: Finished in state Completed()"). The runners' progress records
carry a :class:`~flows.engine.progress.Progress`: attached to a terminal, the
:class:`TerminalHandler` draws them as one bar with documents per second and the time
left; otherwise (a pipe, a file, CI) they stay the plain "progress: N/M shards done" lines
that scripts and the benchmarks read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import IO, TYPE_CHECKING

from flows.engine.progress import PROGRESS_EXTRA, Progress

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(where)s: %(message)s"
CONSOLE_DATE_FORMAT = "%H:%M:%S"


def where(record: logging.LogRecord) -> str:
    """Who says it: the Prefect task or flow of a run's record, else the logger's name."""
    task_run = getattr(record, "task_run_name", None)
    if task_run:
        return f"task {task_run}"
    flow = getattr(record, "flow_name", None)
    if flow:
        return f"flow {flow}"
    return record.name


class RunFormatter(logging.Formatter):
    """The one line format of the terminal, tracebacks left to the run's log file."""

    def __init__(self) -> None:
        super().__init__(CONSOLE_FORMAT, CONSOLE_DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.where = where(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def is_terminal(stream: IO[str]) -> bool:
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return interactive and os.environ.get("TERM", "") != "dumb"


class TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Plain lines, and the progress records as one live bar above which the other lines
    scroll. The bar starts with the first progress record and stops when every shard is
    done (its last state stays on the screen), or when :meth:`stop` is called."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._bar: Bar | None = None
        self._task: TaskID | None = None
        self._bar_lock = threading.RLock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            progress = getattr(record, PROGRESS_EXTRA, None)
            if isinstance(progress, Progress) and progress.shards_total:
                self._draw(progress)
                return
            with self._bar_lock:
                if self._bar is not None:
                    from rich.text import Text

                    self._bar.console.print(Text(self.format(record)), soft_wrap=True)
                    return
            super().emit(record)
        except Exception:  # noqa: BLE001  # logging must never fail the run
            self.handleError(record)

    def _draw(self, progress: Progress) -> None:
        with self._bar_lock:
            if self._bar is None:
                # Imported here: commands that never draw a bar do not pay for rich.
                from flows.progress_bar import start_bar

                self._bar, self._task = start_bar(self.stream, progress)
            assert self._task is not None
            from flows.progress_bar import bar_fields

            self._bar.update(self._task, **bar_fields(progress))
            if progress.shards >= progress.shards_total:
                self.stop()

    def stop(self) -> None:
        """Stop the bar, if one is live, leaving its last state on the screen."""
        with self._bar_lock:
            bar, self._bar = self._bar, None
            if bar is not None:
                with contextlib.suppress(Exception):
                    bar.refresh()
                    bar.stop()

    def close(self) -> None:
        self.stop()
        super().close()


_terminal: list[TerminalHandler] = []


def console_handler(stream: IO[str]) -> logging.Handler:
    """The CLI's console handler: a bar-drawing one on a terminal, a plain one otherwise."""
    handler: logging.Handler
    if is_terminal(stream):
        handler = TerminalHandler(stream)
        _terminal.append(handler)
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(RunFormatter())
    return handler


def stop_progress() -> None:
    """Before writing to the terminal directly (a failure, the result): no bar is live."""
    for handler in _terminal:
        handler.stop()


__all__ = [
    "RunFormatter",
    "TerminalHandler",
    "console_handler",
    "is_terminal",
    "stop_progress",
    "where",
]
