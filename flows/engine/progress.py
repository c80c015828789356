"""How far a run is: shards and documents done, as a log record the terminal can draw."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flows.words import plural

# The log record's attribute that carries a Progress: the terminal draws a bar from it
# (flows.terminal); everywhere else the record is the plain line it always was.
PROGRESS_EXTRA = "corpus_progress"


@dataclass(frozen=True, slots=True)
class Progress:
    """Shards done of all shards, and the documents (inputs) in the shards done."""

    shards: int
    shards_total: int
    documents: int = 0
    documents_total: int = 0

    @property
    def percent(self) -> float:
        # By documents where they are known: shards differ in size (the last one) and cost.
        if self.documents_total:
            return 100.0 * self.documents / self.documents_total
        return 100.0 * self.shards / self.shards_total if self.shards_total else 100.0

    def describe(self) -> str:
        """For the Prefect UI's progress card, which shows this text but not the number."""
        shards = f"{self.percent:.0f}%: {self.shards} of {plural(self.shards_total, 'shard')} done"
        if not self.documents_total:
            return shards
        return f"{shards}, {self.documents} of {plural(self.documents_total, 'document')}"


def log_progress(
    log: logging.Logger | logging.LoggerAdapter[Any], progress: Progress, news: str
) -> None:
    """The one progress line of a runner, with the Progress attached for the terminal."""
    log.info(
        "progress: %d/%d shards done; %s",
        progress.shards,
        progress.shards_total,
        news,
        extra={PROGRESS_EXTRA: progress},
    )


__all__ = ["PROGRESS_EXTRA", "Progress", "log_progress"]
