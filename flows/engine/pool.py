"""A Runner over a local process pool, for runs without Prefect (``corpus validate``)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from flows.engine.headstart import take
from flows.engine.progress import Progress, log_progress
from flows.engine.shard import ShardResult, ShardWork, work_shard
from flows.engine.summary import Summary
from flows.models import Manifest
from flows.stages.language import warm_up
from flows.words import plural

if TYPE_CHECKING:
    from flows.report import Pairs

logger = logging.getLogger(__name__)

T = TypeVar("T")


def init_worker(records: Any = None) -> None:
    """Each worker loads langdetect's profiles once (~0.9 s) and leaves Ctrl-C to the parent,
    which stops the pool (a worker dying on its own SIGINT would leave the pool broken).
    With ``records`` (a queue), its warnings go to the parent's logging: the terminal's line
    format and the run's log file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(_leave_at_once)
    if records is not None:
        root = logging.getLogger()
        root.handlers[:] = [logging.handlers.QueueHandler(records)]
        root.setLevel(logging.WARNING)
    warm_up()


class _Relay(logging.Handler):
    """A worker's record, handled in this process as if logged here."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _ready() -> int:
    return os.getpid()


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
    return f"processing shards on {where}; progress follows as shards finish"


class _LocalPool:
    """The shard workers of this process, one pool shared by every run it makes."""

    lock = threading.Lock()
    executor: ProcessPoolExecutor | None = None
    workers = 0
    relay: logging.handlers.QueueListener | None = None  # the workers' log records
    closed = False  # stopped by a stop of the run: a retried shard must not start new ones


def start_local_pool(workers: int) -> None:
    """Start the shard workers now, so that their boot and their profile loading overlap
    whatever comes next (``corpus run``: the Prefect server's boot and Prefect's import).
    They never import Prefect: the flow's tasks run in threads and hand them the shards."""
    with _LocalPool.lock:
        _LocalPool.closed = False
        try:
            if _LocalPool.executor is None or getattr(_LocalPool.executor, "_broken", False):
                _LocalPool.executor, _LocalPool.workers = _new_pool(workers), workers
            for _ in range(workers):  # one each: a forkserver pool starts a worker per submit
                _LocalPool.executor.submit(_ready)
        except (OSError, RuntimeError) as error:  # the first shard tries again
            logger.warning("the shard workers did not start: %s", error)


def local_pool(workers: int) -> ProcessPoolExecutor:
    """This process's shard workers: the ones :func:`start_local_pool` started, or new ones
    (a deployment's flow run; a pool broken by a worker that died, for a retried shard)."""
    with _LocalPool.lock:
        executor = _LocalPool.executor
        if executor is not None and not getattr(executor, "_broken", False):
            return executor
        if _LocalPool.closed:
            raise RuntimeError("the run is stopping: its shard workers were stopped")
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        workers = workers or _LocalPool.workers or os.cpu_count() or 1
        _LocalPool.executor, _LocalPool.workers = _new_pool(workers), workers
        return _LocalPool.executor


def _new_pool(workers: int) -> ProcessPoolExecutor:
    """Workers forked from a forkserver that imported the engine and loaded the language
    profiles once (:mod:`flows.engine.warm`): never from this
    process, which may run Prefect's threads (a fork could copy a lock one of them holds)
    and whose signal handlers are the CLI's."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "flows.engine.warm"])
    if _LocalPool.relay is None:
        _LocalPool.relay = logging.handlers.QueueListener(context.Queue(), _Relay())
        _LocalPool.relay.start()
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=init_worker,
        initargs=(_LocalPool.relay.queue,),
    )


def stop_local_pool(wait: bool = True) -> None:
    """Stop this process's shard workers: at the end of a run (``wait``: each takes its
    sentinel and leaves), or because the run is stopping (its workers are being killed;
    until the next :func:`start_local_pool`, no new ones start)."""
    with _LocalPool.lock:
        executor, _LocalPool.executor = _LocalPool.executor, None
        _LocalPool.closed = not wait
    if executor is not None:
        executor.shutdown(wait=wait, cancel_futures=True)


def running_local_pool() -> ProcessPoolExecutor | None:
    """This process's shard workers if they are running (idle once the shard pass is over:
    publishing draws the report on one of them), else None."""
    with _LocalPool.lock:
        executor = _LocalPool.executor
        return None if executor is None or getattr(executor, "_broken", False) else executor


def warm_report_drawing() -> None:
    """Once the shard pass is over, the shard workers idle while the corpus step runs in
    this process: each imports matplotlib meanwhile, for the report that publishing draws
    on one of them."""
    pool = running_local_pool()
    if pool is None:
        return
    from flows.report import warm_up as warm_report

    with contextlib.suppress(RuntimeError):  # shutting down: nothing to prepare for
        for _ in range(_LocalPool.workers):
            pool.submit(warm_report)


def draw_report(
    manifest: Manifest, summary: Summary, previous: Manifest | None, pairs: Pairs | None
) -> Future[str] | None:
    """report.html drawn by the idle shard workers, each its share of the plots
    (:func:`flows.report.report_sections`); None when this process has no workers."""
    pool = running_local_pool()
    if pool is None:
        return None
    from flows.report import assemble, report_sections

    share = max(1, _LocalPool.workers)
    try:
        parts = [
            pool.submit(report_sections, manifest, summary, previous, pairs, (k, share))
            for k in range(share)
        ]
    except RuntimeError:  # shutting down: the caller draws it
        return None
    drawn: Future[str] = Future()
    lock = threading.Lock()

    def settle(_: Future[list[str | None]]) -> None:
        with lock:  # the last part to finish joins them, once
            if drawn.done() or not all(part.done() for part in parts):
                return
            if any(part.cancelled() for part in parts):
                drawn.set_exception(RuntimeError("the report's drawing was cancelled"))
            elif failed := next((p.exception() for p in parts if p.exception()), None):
                drawn.set_exception(failed)
            else:
                drawn.set_result(assemble(manifest.release_id, [p.result() for p in parts]))

    for part in parts:
        part.add_done_callback(settle)
    return drawn


def submit_shard(work: ShardWork, workers: int) -> Future[ShardResult]:
    """One shard handed to this process's shard workers."""
    return local_pool(workers).submit(work_shard, work)


def pooled_shard(work: ShardWork, workers: int) -> ShardResult:
    """One shard on this process's shard workers, waited for: the one a head start
    submitted already (:mod:`flows.engine.headstart`), else submitted now."""
    return (take(work) or submit_shard(work, workers)).result()


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
        if multiprocessing.get_start_method() == "fork":
            # Forked workers start with the profiles (and pyarrow's pandas) loaded here,
            # copy-on-write, instead of each loading its own: ~0.8 CPU-s less per worker but one.
            from flows.engine.warm import warm_workers

            warm_workers()
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


__all__ = [
    "PoolRunner",
    "draw_report",
    "init_worker",
    "local_pool",
    "pooled_shard",
    "running_local_pool",
    "start_local_pool",
    "starting_workers",
    "stop_local_pool",
    "submit_shard",
    "warm_report_drawing",
    "window",
]
