"""A `corpus run` around its flow: Prefect API or temporary server, signals, bounded stop."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flows.errors import (
    EXIT_FAILURE,
    ConfigError,
    PrefectApiError,
)
from flows.failures import FAILURE_LOGGER, quiet_prefect_console, say, signal_stop
from flows.orchestration.server import LocalServerError, TemporaryServer, api_problem

logger = logging.getLogger(__name__)


def env_seconds(name: str, default: float) -> float:
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
        self._api_done = threading.Event()
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
        self.request_stop(*signal_stop(signum))
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
                        self.request_stop(*signal_stop(signum), interrupt_main=False)
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
        say(f"{self.reason}; the previous release is still current", self.log_path)
        logging.shutdown()
        os._exit(self.exit_code)

    # -- the API -------------------------------------------------------------------------

    def watch_api(self) -> None:
        """From now on a temporary server that exits, or an API that stops answering for
        ``api_timeout`` seconds, stops the run (Prefect's client would retry for minutes)."""
        threading.Thread(target=self._watch_api, name="corpus-api-watch", daemon=True).start()

    def unwatch_api(self) -> None:
        """The run is over: the server stops now because this process stops it."""
        self._api_done.set()

    def _watch_api(self) -> None:
        failing_since: float | None = None
        while not self._closed.wait(1.0 if self.server else 5.0):
            if self.reason is not None or self._api_done.is_set():
                return
            if self.server is not None:
                code = self.server.exited
                # Read after the exit code: unwatch_api() comes before the server's stop,
                # so a stop of our own is never taken for a death during the run.
                if code is not None and not self._api_done.is_set():
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
            if time.monotonic() - failing_since >= self.api_timeout and not self._api_done.is_set():
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
        pool = sys.modules.get("flows.engine.pool")
        if pool is not None:
            # The run is over and its workers are gone: a later run in this process (a
            # test's, a flow called directly) may start new ones.
            pool.stop_local_pool()
        if self.server is not None:  # stopped already, unless the run ended before its flow
            self.server.stop()
            with contextlib.suppress(OSError):
                self.server.log_path.unlink()
        if self._pipe is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            with contextlib.suppress(OSError):
                os.close(self._pipe[1])  # the watcher reads EOF and closes its end
            self._pipe = None


def _stagings(out: Path) -> list[Path]:
    from flows.output.release import RELEASES, STAGING_PREFIX

    try:
        return [p for p in (out / RELEASES).glob(f"{STAGING_PREFIX}*") if p.is_dir()]
    except OSError:
        return []


def terminate_pool_workers(kill: bool = False) -> None:
    """Stop this process's multiprocessing children (the shard workers of
    :mod:`flows.engine.pool`, or of a ProcessPoolTaskRunner).

    A dead worker breaks the pool at once, so Prefect's ``shutdown(wait=True)`` returns
    instead of waiting for the shards in progress.
    """
    import multiprocessing

    pool = sys.modules.get("flows.engine.pool")  # imported if it started any (no import now)
    if pool is not None:
        pool.stop_local_pool(wait=False)  # first: a retried shard must not start new ones
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
    headstart = sys.modules.get("flows.engine.headstart")
    if headstart is not None:  # now that no worker writes into its staging folder
        headstart.discard()


def start_temporary_server() -> TemporaryServer:
    """Spawn a temporary server (its log in a temporary file); returns at once."""
    fd, log_name = tempfile.mkstemp(prefix="corpus-prefect-server-", suffix=".log")
    os.close(fd)
    server = TemporaryServer(Path(log_name))
    server.start()
    return server


@contextlib.contextmanager
def prefect_api(guard: RunGuard) -> Iterator[None]:
    """Use the configured Prefect API; otherwise one temporary local server for the run.

    Prefect would start its own temporary server in every worker process of the process
    pool (10+ s each, and their task runs land in different databases); exporting the URL
    of a single server makes the workers report to it. The server is started before
    Prefect is imported, so its boot overlaps the CLI's imports.
    """
    server = guard.server  # started with the command (a cold run), else now
    stack = contextlib.ExitStack()
    if server is None and not os.environ.get("PREFECT_API_URL"):
        # Started on speculation: only Prefect's settings (profiles, prefect.toml) can say
        # whether an API is configured, and reading them imports Prefect (~3 s).
        server = guard.server = start_temporary_server()
    try:
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        import flows.orchestration.flow  # noqa: F401  # the expensive import, while the server boots

        quiet_prefect_console()
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
                guard.unwatch_api()
                _drain_prefect_workers(guard)
            return
        _while_the_server_boots()
        try:
            server.wait_healthy(env_seconds("CORPUS_SERVER_STARTUP_SECONDS", 120))
        except LocalServerError as error:
            raise LocalServerError(
                f"could not start a temporary Prefect server ({error}); "
                "start one with `prefect server start` and set PREFECT_API_URL"
            ) from error
        _use_server(server)
        guard.watch_api()
        try:
            with _no_heartbeats():
                yield
        finally:
            guard.unwatch_api()
            os.environ.pop("PREFECT_API_URL", None)
            _drain_prefect_workers(guard)
            refresh_global_settings_context()
    finally:
        stack.close()
        _stop_server(server)


def _use_server(server: TemporaryServer) -> None:
    from prefect.context import refresh_global_settings_context

    logger.info("temporary Prefect server on %s", server.api_url)
    # Through the environment, so the pool's worker processes inherit it, and into
    # Prefect's global settings, which every thread of this process reads (a
    # temporary_settings context would cover this thread only).
    os.environ["PREFECT_API_URL"] = server.api_url
    refresh_global_settings_context()


def _while_the_server_boots() -> None:
    logger.info("PREFECT_API_URL is not set: starting a temporary Prefect server")
    # What creating the flow run imports (Flow.serialize_parameters), while waiting.
    import fastapi.encoders  # noqa: F401


def _no_heartbeats() -> contextlib.AbstractContextManager[Any]:
    """No flow-run heartbeats against the temporary server, unless the environment asks
    for them. They are for a long-running server to find runs whose process died; this
    server dies with the run. And a flow run's end joins the heartbeat thread, which sleeps
    in whole seconds: half a second on average at the end of every run."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if any(name in os.environ for name in HEARTBEAT_VARIABLES):
        return contextlib.nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


# Where a user sets Prefect's heartbeat frequency (the second is its legacy name).
HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


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
