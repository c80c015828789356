"""A cold ``corpus run``'s plan and first shards, started before its flow and handed over to it.

``corpus run`` knows its parameters seconds before its flow starts (Prefect's import and
the temporary server's boot come first). :func:`begin` plans the run then (one walk of the
source), takes the output's lock, opens the staging folder and hands the first shards to
the engine's worker pool. The flow then takes over what was started, in this process:
its prepare step gets the plan (:func:`planned`: the source is never walked twice),
:func:`~flows.engine.run.execute` the lock, the staging folder and the shards already read
(:func:`claim`), and each shard's task the future of its shard (:func:`take`) instead of
submitting it again, so there is still one task run per shard. Nothing here knows Prefect,
and a run without a head start (a deployment's, ``corpus validate``, a thread or Dask task
runner) finds nothing and runs as it always did.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from flows.contracts import SHARDS_DIR
from flows.engine.plan import Plan, Preflight, prepare, run_context
from flows.engine.shard import ShardResult, ShardWork, prepare_shard, read_inputs
from flows.models import RunParameters
from flows.output.release import output_lock, staging_folder
from flows.words import plural

logger = logging.getLogger(__name__)

Submit = Callable[[ShardWork], "Future[ShardResult]"]


class HeadStartDiscarded(Exception):
    """Closes the staging folder of a head start no flow took over (it is removed)."""


@dataclass(slots=True)
class _HeadStart:
    """One run's head start, while its flow has not taken it over."""

    params: RunParameters
    planned: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    plan: Plan | None = None
    # The output's lock and the staging folder, open until the run's execute closes them.
    hold: contextlib.ExitStack | None = None
    staging: Path | None = None
    works: dict[int, ShardWork] = field(default_factory=dict)
    discarded: bool = False
    first_done: bool = False


class _Started:
    """This process's head start (one run at a time) and the shards it has in flight."""

    current: _HeadStart | None = None
    # (staging folder, shard index) -> the shard's future, until its task takes it.
    in_flight: dict[tuple[str, int], Future[ShardResult]] = {}  # noqa: RUF012 - one per process


_lock = threading.Lock()


def begin(params: RunParameters, checked: Preflight, shards: int, submit: Submit) -> None:
    """Plan the run and hand its first ``shards`` shards to ``submit``, in a thread of
    this process; returns at once. Only for a run that publishes with no current release
    (a cold run): a run that may reuse or find nothing changed plans in its flow."""
    state = _HeadStart(params)
    with _lock:
        _Started.current = state
    threading.Thread(
        target=_start, args=(state, checked, shards, submit), name="corpus-head-start", daemon=True
    ).start()


def _start(state: _HeadStart, checked: Preflight, shards: int, submit: Submit) -> None:
    try:
        try:
            plan = prepare(state.params, checked=checked)
        except Exception:  # the flow's own prepare says it, as without a head start
            logger.debug("head start: planning failed; the flow plans again", exc_info=True)
            return
        with _lock:
            state.plan = plan
        state.planned.set()
        staging = _open_staging(state, plan)
        if staging is not None:
            _hand_out(state, plan, staging, shards, submit)
    except Exception:  # the run reads and submits what was not handed out, as without one
        logger.debug("head start: stopped early", exc_info=True)
    finally:
        state.planned.set()
        state.finished.set()


def _open_staging(state: _HeadStart, plan: Plan) -> Path | None:
    """The output's lock and a staging folder, as execute would take them; None when the
    run is not cold after all (a release appeared) or the output is locked (the flow's
    execute then fails as it would have)."""
    out = plan.out
    if out is None:
        return None
    hold = contextlib.ExitStack()
    with _lock:
        if state.discarded:
            return None
        try:
            hold.enter_context(output_lock(out))
            # Under the lock: a run that published meanwhile makes this one warm.
            if os.path.lexists(out / "current"):
                hold.close()
                return None
            staging: Path = hold.enter_context(staging_folder(out))
        except Exception:  # e.g. locked by another run: execute says so
            hold.close()
            logger.debug("head start: no staging folder", exc_info=True)
            return None
        state.hold, state.staging = hold, staging
    return staging


def _hand_out(state: _HeadStart, plan: Plan, staging: Path, shards: int, submit: Submit) -> None:
    """Read the first shards, as the run's execute would, and submit each at once."""
    context = run_context(plan, staging / SHARDS_DIR, None)
    for job in itertools.islice(plan.shards, shards):
        work = prepare_shard(
            job, context, None, read_inputs(job, context.root, plan.params.max_file_bytes)
        )
        assert isinstance(work, ShardWork)  # without a previous release nothing is copied
        try:
            # Not under the lock: the first submit may wait a second for the pool's start.
            future = submit(work)
        except RuntimeError as error:  # the pool is stopping (the run is)
            logger.debug("head start: shard %d not submitted: %s", job.index, error)
            return
        with _lock:
            if state.discarded:
                future.cancel()
                return
            state.works[job.index] = work
            _Started.in_flight[(context.staging, job.index)] = future
        future.add_done_callback(functools.partial(_first_done, state))
    if state.works:
        logger.info(
            "head start: %s handed to the shard workers while the flow starts",
            plural(len(state.works), "shard"),
        )


def _first_done(state: _HeadStart, future: Future[ShardResult]) -> None:
    """Say when the first head-started shard is done (the run's own timeline)."""
    if future.cancelled() or future.exception() is not None:
        return  # its task says what went wrong, as for any shard
    with _lock:
        first, state.first_done = not state.first_done, True
    if first:
        logger.info("head start: first shard done (shard %d)", future.result().index)


def planned(params: RunParameters) -> Plan | None:
    """The plan a head start made for these parameters (waiting for its walk to end), or
    None: then the caller plans itself."""
    with _lock:
        state = _Started.current
    if state is None or state.params != params:
        return None
    state.planned.wait()
    return state.plan


@dataclass(frozen=True, slots=True)
class Claimed:
    """What the run's execute takes over: the shards already read and submitted, and the
    output's lock with its staging folder (closed by leaving :meth:`staging`)."""

    works: dict[int, ShardWork]  # execute pops each as it hands it out (the bytes go)
    hold: contextlib.ExitStack
    folder: Path

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """The staging folder, as ``output_lock`` + ``staging_folder`` give it: removed if
        the block fails, the lock released when it ends."""
        with self.hold:
            yield self.folder


def claim(plan: Plan) -> Claimed | None:
    """The head start of ``plan``'s run, taken over by its execute (once), or None."""
    with _lock:
        state = _Started.current
    if state is None or state.params != plan.params:
        return None
    state.finished.wait()
    with _lock:
        if _Started.current is not state or state.discarded or state.hold is None:
            return None
        assert state.staging is not None  # set with the hold
        _Started.current = None
        hold, state.hold = state.hold, None
        works, state.works = state.works, {}
        return Claimed(works, hold, state.staging)


def take(work: ShardWork) -> Future[ShardResult] | None:
    """The future of ``work``'s shard if a head start submitted it (once), else None."""
    with _lock:
        return _Started.in_flight.pop((work.context.staging, work.index), None)


def in_flight() -> frozenset[int]:
    """Shard indexes submitted by a head start and not yet taken by their task."""
    with _lock:
        return frozenset(index for _, index in _Started.in_flight)


def discard() -> None:
    """Drop a head start no flow took over (the run failed or stopped before): its
    futures are cancelled, its staging folder removed and the output's lock released.
    Call after the workers are stopped, so none writes into the folder afterwards."""
    with _lock:
        state, _Started.current = _Started.current, None
        futures = list(_Started.in_flight.values())
        _Started.in_flight.clear()
        hold = None
        if state is not None:
            state.discarded = True
            hold, state.hold = state.hold, None
    for future in futures:
        future.cancel()
    if hold is not None:
        error = HeadStartDiscarded("the run ended before its flow took over its head start")
        hold.__exit__(HeadStartDiscarded, error, None)


__all__ = ["Claimed", "begin", "claim", "discard", "in_flight", "planned", "take"]
