"""The rich progress bar that flows.terminal draws for a run on a terminal."""

from __future__ import annotations

from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as Bar
from rich.text import Text

from flows.engine.progress import Progress
from flows.words import plural


def start_bar(stream: IO[str], progress: Progress) -> tuple[Bar, TaskID]:
    unit = "docs" if progress.documents_total else "shards"
    bar = Bar(
        SpinnerColumn(),
        TextColumn("{task.fields[shards]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} " + unit),
        RateColumn(unit),
        EtaColumn(),
        TextColumn("elapsed"),
        TimeElapsedColumn(),
        console=Console(file=stream, highlight=False, markup=False),
        redirect_stdout=False,
        redirect_stderr=False,
    )
    # The first frame is drawn as soon as the bar starts: with the totals, never "0/None".
    task = bar.add_task("run", **bar_fields(progress))
    bar.start()
    return bar, task


def bar_fields(progress: Progress) -> dict[str, Any]:
    """What the bar shows for ``progress``: documents where known, else shards."""
    return {
        "total": progress.documents_total or progress.shards_total,
        "completed": progress.documents if progress.documents_total else progress.shards,
        "shards": f"{progress.shards}/{plural(progress.shards_total, 'shard')}",
    }


class RateColumn(ProgressColumn):
    """Documents (or shards) per second since the bar started. Shards finish in bursts,
    seconds apart: a rate over the last few samples would count the burst and not the
    wait (rich's own speed starts from the first finished shard, so the first reading is
    the time between two workers' results)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = average_rate(task)
        if speed is None:
            return Text(f"-- {self.unit}/s")
        return Text(f"{speed:.0f} {self.unit}/s" if speed >= 10 else f"{speed:.1f} {self.unit}/s")


class EtaColumn(ProgressColumn):
    """The time left at the average rate."""

    def render(self, task: Task) -> Text:
        speed = average_rate(task)
        if task.total is None or speed is None:
            return Text("ETA -:--:--")
        seconds = int(max(0.0, task.total - task.completed) / speed)
        return Text(f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")


def average_rate(task: Task) -> float | None:
    elapsed = task.finished_time if task.finished else task.elapsed
    if not task.completed or not elapsed:
        return None
    return task.completed / elapsed


__all__ = ["EtaColumn", "RateColumn", "average_rate", "start_bar"]
