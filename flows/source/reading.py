"""Read the bytes of one input: bounded, never through a link leaving the root, retried."""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from flows.contracts import SourceDocument
from flows.stages.types import Reason, Rejection, Stage

logger = logging.getLogger(__name__)

# errno values a retry can cure: a flaky network file system (EIO, ESTALE, ETIMEDOUT), a
# file briefly locked or busy (EAGAIN, EBUSY), an interrupted call (EINTR). ENOENT, EACCES,
# EISDIR and the like are answers, not accidents, and are never retried.
TRANSIENT_ERRNOS = frozenset(
    {errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE, errno.ETIMEDOUT, errno.EBUSY}
)
# Three attempts, 0.05 s then 0.2 s apart: bounded (~0.25 s per document at worst) so a
# dead mount costs a shard seconds, not minutes; Prefect's task retries come on top.
READ_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.2)


def os_detail(error: OSError) -> str:
    """An OSError as a short, stable detail: its class and message, without the path."""
    return f"{type(error).__name__}: {error.strerror or error}"


def is_inside(root: Path, target: str) -> bool:
    """Whether ``target``, with every link resolved, is ``root`` or under it."""
    real = Path(os.path.realpath(target))
    return real == root or root in real.parents


def read_input(root: str, doc: SourceDocument, max_file_bytes: int) -> bytes | Rejection:
    """The bytes of one input, bounded; the file may have changed since discovery.

    A file swapped for a link leaving the root after discovery is not read: the path is
    resolved again here, checked, and the resolved path opened with O_NOFOLLOW, so a link
    slipped in between the check and the open fails instead of being followed.
    """
    real = os.path.realpath(os.path.join(root, doc.fs_relative or doc.source_path))
    real_root = _real_root(root)
    # ``real`` is resolved already: a prefix test, not is_inside's second realpath.
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return Rejection(
            Stage.DISCOVER,
            Reason.SYMLINK_OUTSIDE_ROOT,
            "became a link to a target outside the source folder after discovery; not read",
        )
    return read_bounded(real, max_file_bytes, nofollow=True)


@functools.lru_cache(maxsize=16)
def _real_root(root: str) -> str:
    return os.path.realpath(root)


def read_bounded(
    path: str,
    max_bytes: int | None,
    sleep: Callable[[float], None] = time.sleep,
    nofollow: bool = False,
) -> bytes | Rejection:
    """Read a regular file (at most ``max_bytes + 1`` bytes), retrying transient errors."""
    delays = iter(READ_RETRY_DELAYS)
    while True:
        try:
            data = _read_once(path, max_bytes, nofollow)
        except OSError as error:
            delay = next(delays, None) if error.errno in TRANSIENT_ERRNOS else None
            if delay is None:
                return Rejection(Stage.DISCOVER, Reason.UNREADABLE, os_detail(error))
            logger.warning("retrying %s in %.2f s after %s", path, delay, os_detail(error))
            sleep(delay)
            continue
        if data is None:
            return Rejection(Stage.DISCOVER, Reason.NOT_A_REGULAR_FILE, "not a regular file")
        if max_bytes is not None and len(data) > max_bytes:
            return Rejection(
                Stage.DISCOVER, Reason.TOO_LARGE, f"more than max_file_bytes {max_bytes} bytes"
            )
        return data


def _read_once(path: str, max_bytes: int | None, nofollow: bool = False) -> bytes | None:
    """One attempt; None when the path is not a regular file. OSError propagates."""
    # O_NONBLOCK: should the file have been swapped for a FIFO, open must not hang.
    flags = os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if nofollow else 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read() if max_bytes is None else handle.read(max_bytes + 1)
