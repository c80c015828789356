"""Consumer files of the tables the pairs step leaves alone, packed while it runs."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Collection
from concurrent.futures import Future, wait
from pathlib import Path

from flows.contracts import DOCUMENTS_DIR, REJECTED_DIR, SHARDS_DIR
from flows.engine.pool import running_local_pool
from flows.output.compact import Packing, pack_release, shard_of
from flows.output.release import read_manifest

logger = logging.getLogger(__name__)

# Final once learned furniture is applied: the pairs step writes only ``pairs``, ``bitext``
# and the documents parts it cleans (then the documents are packed again, at publish).
EARLY_TABLES = (DOCUMENTS_DIR, REJECTED_DIR)


class EarlyPacking:
    """Pack :data:`EARLY_TABLES` on an idle shard worker (``corpus run``'s process pool,
    idle once the shard pass is over) while this process runs the pairs step, so that the
    packing (one more read and zstd write of every document) costs publishing nothing.

    Used around the pairs step: ``with EarlyPacking(...) as early: written = pairs(...);
    early.keep_unless(written)``. Nothing is packed early where there is no such worker
    (validate, Dask, tests). A failed step waits for the worker, which must not write into
    a staging folder that is being removed."""

    def __init__(self, staging: Path | None, target_bytes: int, previous: Path | None) -> None:
        # The release being written (its shard parts in shards/); None: a run that
        # publishes nothing (validate), so nothing to pack.
        self.staging = staging
        self.future: Future[Packing] | None = None
        pool = running_local_pool()
        if staging is None or pool is None or not _only_parts(staging, EARLY_TABLES):
            return
        try:
            before = read_manifest(previous) if previous is not None else None
        except Exception:  # noqa: BLE001 - publishing reads it again and says what is wrong
            return
        with contextlib.suppress(RuntimeError):  # shutting down: publishing packs them
            self.future = pool.submit(
                pack_release, staging, target_bytes, previous, before, tables=EARLY_TABLES
            )

    def __enter__(self) -> EarlyPacking:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None and self.future is not None:
            wait([self.future], timeout=_FAILED_WAIT_SECONDS)
            self.future = None

    def keep_unless(self, written: Collection[str]) -> Future[Packing] | None:
        """The early packing once done, unless the pairs step rewrote a documents part
        (``written``) or the packing failed: its files are then removed, and publishing
        packs those tables."""
        early, self.future = self.future, None
        if early is None:
            return None
        wait([early])  # done before its files are kept, or removed
        stale = any(path.startswith(f"{DOCUMENTS_DIR}/") for path in written)
        if not stale and early.exception() is None:
            logger.debug("consumer files of %s packed during the pairs step", EARLY_TABLES)
            return early
        logger.debug("consumer files of %s packed again at publish", EARLY_TABLES)
        if not stale:
            logger.debug("early packing failed: packed at publish", exc_info=early.exception())
        for table in EARLY_TABLES:
            assert self.staging is not None  # a future was submitted
            shutil.rmtree(self.staging / table, ignore_errors=True)
        return None


# How long a failed pairs step waits for the early packing before the staging folder is
# removed (a worker stopped by Ctrl-C ends it at once).
_FAILED_WAIT_SECONDS = 60.0


def _only_parts(staging: Path, tables: Collection[str]) -> bool:
    """Every file of these tables is a shard part, and no consumer file exists yet: so
    the early packing writes the tables' consumer folders alone, and they can be removed."""
    for table in tables:
        if (staging / table).exists():
            return False
        folder = staging / SHARDS_DIR / table
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        if any(shard_of(name) is None for name in names):
            return False
    return True


__all__ = ["EARLY_TABLES", "EarlyPacking"]
