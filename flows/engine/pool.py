"""A Runner over a local process pool, for runs without Prefect (``corpus validate``)."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

from flows.engine.progress import Progress, log_progress
from flows.engine.shard import ShardResult, ShardWork, work_shard
from flows.stages.language import warm_up
from flows.words import plural

logger = logging.getLogger(__name__)

T = TypeVar("T")


def init_worker() -> None:
    """Each worker loads langdetect's profiles once (~0.9 s) and leaves Ctrl-C to the parent,
    which stops the pool (a worker dying on its own SIGINT would leave the pool broken)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_leave_at_once)
    warm_up()


def _leave_at_once() -> None:
    """A pool worker's last step: leave without the interpreter's teardown.

    By the time exit handlers run, multiprocessing has already flushed the worker's queues
    (``util._exit_function`` in ``BaseProcess._bootstrap``: results, and the logs and events
    Prefect's process pool forwards through its queue) and joined its threads. What would
    follow -- Prefect's import-time exit handlers and tearing down a process that holds
    Prefect, pydantic, pyarrow and the language profiles -- took 1.7-4 s per worker on the
    2-core machine, and the flow's end waits for every worker to exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def window(workers: int) -> int:
    """Shards in flight at once: enough to keep every worker busy, few enough that the bytes
    they carry stay bounded whatever the corpus size."""
    return 2 * workers + 1


def starting_workers(where: str) -> str:
    """What a run does between planning and its first finished shard (seconds of quiet)."""
    return (
        f"processing shards on {where} (starting them; each loads the language profiles "
        "once); progress follows as shards finish"
    )


class PoolRunner:
    """Shards on a process pool (started only when a shard needs processing); steps inline."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1

    def shards(self, works: Iterable[ShardWork]) -> Iterator[ShardResult]:
        iterator = iter(works)
        first = next(iterator, None)
        second = next(iterator, None) if first is not None else None
        if first is None or second is None:
            # One shard or none: a pool would cost more to start than it saves.
            yield from (work_shard(work) for work in (first,) if work is not None)
            return
        logger.info(starting_workers(plural(self.workers, "worker process", "worker processes")))
        with ProcessPoolExecutor(max_workers=self.workers, initializer=init_worker) as pool:
            pending: set[Future[ShardResult]] = {
                pool.submit(work_shard, first),
                pool.submit(work_shard, second),
            }
            for work in iterator:
                pending.add(pool.submit(work_shard, work))
                while len(pending) >= window(self.workers):
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (future.result() for future in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)

    def step(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def progress(self, progress: Progress, news: str) -> None:
        log_progress(logger, progress, news)


__all__ = ["PoolRunner", "init_worker", "starting_workers", "window"]
