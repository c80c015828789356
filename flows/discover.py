"""Find the inputs under a source folder and read their bytes. File IO lives here.

Nothing here ever writes to the source folder, follows a symbolic link that leaves the
source root, or opens anything but a regular file (opening a FIFO would block the run).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.contracts import SourceDocument
from flows.errors import ConfigError, SourceError
from flows.models import MetadataIssue
from flows.stages.metadata import derive_id
from flows.stages.types import Reason, Rejection, Stage

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.jsonl"

# errno values a retry can cure: a flaky network file system (EIO, ESTALE, ETIMEDOUT), a
# file briefly locked or busy (EAGAIN, EBUSY), an interrupted call (EINTR). ENOENT, EACCES,
# EISDIR and the like are answers, not accidents, and are never retried.
TRANSIENT_ERRNOS = frozenset(
    {errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE, errno.ETIMEDOUT, errno.EBUSY}
)
# Three attempts, 0.05 s then 0.2 s apart: bounded (~0.25 s per document at worst) so a
# dead mount costs a shard seconds, not minutes; Prefect's task retries come on top.
READ_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.2)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a source folder holds: inputs to process, inputs already rejected, and notes."""

    root: str
    documents: tuple[SourceDocument, ...]
    rejected: tuple[SourceDocument, ...]  # each with ``rejection`` set
    skipped: int  # files that match no include glob (or an exclude glob)
    metadata_issues: tuple[MetadataIssue, ...] = field(default_factory=tuple)

    @property
    def inputs(self) -> int:
        return len(self.documents) + len(self.rejected)


def display_path(fs_relative: str) -> str:
    """A path that is valid Unicode: undecodable bytes in file names become ``\\xNN``."""
    return os.fsencode(fs_relative).decode("utf-8", errors="backslashreplace")


def matches(relative: str, patterns: Iterable[str]) -> bool:
    """A pattern without '/' matches the file name, one with '/' the relative path."""
    name = relative.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern) for pattern in patterns
    )


def resolve_source(source: str) -> Path:
    root = Path(source)
    if not root.exists():
        raise SourceError(f"source folder {source!r} does not exist")
    if not root.is_dir():
        raise SourceError(f"source {source!r} is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SourceError(f"source folder {source!r} is not readable")
    return root.resolve()


def check_out_not_in_source(root: Path, out: str) -> None:
    out_path = Path(out).resolve()
    if out_path == root or root in out_path.parents:
        raise ConfigError(
            f"output {out!r} is inside the source folder: the next run would read its own output"
        )


def _inside(root: Path, target: str) -> bool:
    real = Path(os.path.realpath(target))
    return real == root or root in real.parents


@dataclass(slots=True)
class _Entry:
    fs_relative: str
    size: int
    rejection: Rejection | None = None


def _classify(root: Path, fs_relative: str, max_bytes: int) -> _Entry:
    path = os.path.join(root, fs_relative)
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if not _inside(root, path):
                return _Entry(
                    fs_relative,
                    0,
                    Rejection(
                        Stage.DISCOVER,
                        Reason.SYMLINK_OUTSIDE_ROOT,
                        "symbolic link to a target outside the source folder; not followed",
                    ),
                )
            info = os.stat(path)
    except OSError as error:
        return _Entry(
            fs_relative, 0, Rejection(Stage.DISCOVER, Reason.UNREADABLE, _os_detail(error))
        )
    if not stat.S_ISREG(info.st_mode):
        return _Entry(
            fs_relative,
            0,
            Rejection(Stage.DISCOVER, Reason.NOT_A_REGULAR_FILE, "not a regular file; not opened"),
        )
    if info.st_size > max_bytes:
        return _Entry(
            fs_relative,
            info.st_size,
            Rejection(
                Stage.DISCOVER,
                Reason.TOO_LARGE,
                f"{info.st_size} bytes > max_file_bytes {max_bytes}; not read",
            ),
        )
    return _Entry(fs_relative, info.st_size)


def _os_detail(error: OSError) -> str:
    return f"{type(error).__name__}: {error.strerror or error}"


def _walk(
    root: Path, include: Sequence[str], exclude: Sequence[str]
) -> tuple[list[str], int, list[str], list[_Entry]]:
    """Candidate files, count of skipped files, escaping folder links, unreadable folders.

    os.walk skips a folder it cannot list unless told otherwise; every file in it would
    vanish without a trace, so each such folder becomes an ``unreadable`` rejection.
    """
    files: list[str] = []
    escaping_dirs: list[str] = []
    unreadable: list[_Entry] = []
    skipped = 0

    def on_error(error: OSError) -> None:
        where = os.path.relpath(error.filename, root) if error.filename else "."
        logger.warning("cannot list folder %s: %s", where, _os_detail(error))
        unreadable.append(
            _Entry(
                where,
                0,
                Rejection(
                    Stage.DISCOVER,
                    Reason.UNREADABLE,
                    f"folder could not be listed ({_os_detail(error)}); its files were not seen",
                ),
            )
        )

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        base = os.path.relpath(dirpath, root)
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                rel = name if base == "." else f"{base}/{name}"
                if not _inside(root, full):
                    escaping_dirs.append(rel)
                else:
                    skipped += 1  # its contents are reached through the real folder
        for name in sorted(filenames):
            rel = name if base == "." else f"{base}/{name}"
            if rel == METADATA_FILE:
                continue
            if matches(rel, include) and not matches(rel, exclude):
                files.append(rel)
            else:
                skipped += 1
    return sorted(files), skipped, sorted(escaping_dirs), unreadable


def _read_metadata_bytes(root: Path) -> bytes | MetadataIssue | None:
    """The bytes of ``metadata.jsonl``; None when there is none; an issue when it is unsafe.

    The same rules as for documents: a link leaving the root is not followed and anything
    but a regular file is not read (a FIFO would block the run). An unreadable file stops
    the run (SourceError): publishing without it would silently change every id it sets.
    """
    path = root / METADATA_FILE
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SourceError(f"{METADATA_FILE} cannot be read: {_os_detail(error)}") from error
    if stat.S_ISLNK(info.st_mode) and not _inside(root, str(path)):
        return MetadataIssue(
            line=1,
            problem="symlink_outside_root",
            detail=f"{METADATA_FILE} is a link leaving the source folder; not read",
        )
    data = _read_bounded(str(path), None)
    if isinstance(data, Rejection):
        if data.reason == Reason.NOT_A_REGULAR_FILE:
            return MetadataIssue(line=1, problem="not_a_regular_file", detail=data.detail)
        raise SourceError(f"{METADATA_FILE} cannot be read: {data.detail}")
    return data


def _read_metadata(root: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[MetadataIssue]]:
    data = _read_metadata_bytes(root)
    if data is None:
        return [], []
    if isinstance(data, MetadataIssue):
        logger.warning("%s: %s", METADATA_FILE, data.detail)
        return [], [data]
    records: list[tuple[int, dict[str, Any]]] = []
    issues: list[MetadataIssue] = []
    raw = data.decode("utf-8-sig", errors="replace")
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            issues.append(MetadataIssue(line=number, problem="not_json", detail=str(error)))
            continue
        if not isinstance(value, dict):
            issues.append(
                MetadataIssue(line=number, problem="not_an_object", detail=type(value).__name__)
            )
            continue
        records.append((number, value))
    return records, issues


def _surrogate_field(value: Any, where: str = "") -> str | None:
    """Where a JSON value holds an unpaired surrogate escape (``"\\ud800"``), if anywhere.

    JSON lets a string spell one, but it is not Unicode: no UTF-8 writer (Parquet, the
    manifest) can store it, so the record is invalid rather than a crash at publish time.
    """
    if isinstance(value, str):
        return None if _encodable(value) else (where or "(value)")
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_field(item, f"{where}[{index}]")
            if found:
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if not _encodable(str(key)):
                return name.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            found = _surrogate_field(item, name)
            if found:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _normal_file_name(value: Any) -> str | None:
    """The metadata ``file_name`` as a relative path inside the root, or None if it is not."""
    if not isinstance(value, str) or not value.strip():
        return None
    path = value.strip().replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or ".." in path.split("/"):
        return None
    return "/".join(part for part in path.split("/") if part not in {"", "."})


def discover(
    source: str, include: Sequence[str], exclude: Sequence[str], max_file_bytes: int
) -> Discovery:
    """List every input under ``source`` and attach its metadata line, if any."""
    root = resolve_source(source)
    files, skipped, escaping_dirs, unreadable_dirs = _walk(root, include, exclude)
    entries = [_classify(root, rel, max_file_bytes) for rel in files]
    entries.extend(unreadable_dirs)
    for rel in escaping_dirs:
        entries.append(
            _Entry(
                rel,
                0,
                Rejection(
                    Stage.DISCOVER,
                    Reason.SYMLINK_OUTSIDE_ROOT,
                    "symbolic link to a folder outside the source folder; not followed",
                ),
            )
        )
    by_path = {entry.fs_relative: entry for entry in entries}
    records, issues = _read_metadata(root)

    attached: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for line_no, rec in records:
        name = _normal_file_name(rec.get("file_name"))
        if name is None:
            problem = "outside_root" if isinstance(rec.get("file_name"), str) else "no_file_name"
            issues.append(
                MetadataIssue(
                    line=line_no, problem=problem, detail=repr(rec.get("file_name"))[:200]
                )
            )
        elif name not in by_path:
            issues.append(
                MetadataIssue(
                    line=line_no,
                    problem="no_such_document",
                    detail=f"{name!r} is not a document under the source (missing or excluded)",
                )
            )
        else:
            attached.setdefault(name, []).append((line_no, rec))

    documents: list[SourceDocument] = []
    rejected: list[SourceDocument] = []
    for entry in sorted(entries, key=lambda e: display_path(e.fs_relative)):
        path = display_path(entry.fs_relative)
        lines = attached.get(entry.fs_relative, [])
        rejection = entry.rejection
        if rejection is None and len(lines) > 1:
            numbers = ", ".join(str(n) for n, _ in lines)
            rejection = Rejection(
                Stage.DISCOVER,
                Reason.DUPLICATE_METADATA,
                f"metadata.jsonl lines {numbers} all describe this file",
            )
            issues.append(
                MetadataIssue(line=lines[1][0], problem="duplicate_file_name", detail=path)
            )
        number: int | None = None
        record: dict[str, Any] | None = None
        if len(lines) == 1:
            number, record = lines[0]
            # file_name only locates the file (a non-UTF-8 name arrives as surrogates).
            bad = _surrogate_field({k: v for k, v in record.items() if k != "file_name"})
            if rejection is None and bad is not None:
                rejection = Rejection(
                    Stage.METADATA,
                    Reason.METADATA_INVALID,
                    f"metadata.jsonl line {number}: {bad}: unpaired surrogate escape, "
                    "not valid Unicode",
                )
        raw_id = record.get("id") if record else None
        doc = SourceDocument(
            source_path=path,
            doc_id=raw_id if isinstance(raw_id, str) and raw_id else derive_id(path),
            size=entry.size,
            metadata=record,
            metadata_line=number,
            rejection=rejection,
            fs_relative=entry.fs_relative,
        )
        (rejected if rejection else documents).append(doc)

    documents, duplicates = _unique_ids(documents)
    rejected.extend(duplicates)
    rejected.sort(key=lambda d: d.source_path)
    logger.info(
        "discovered %d inputs under %s (%d to process, %d rejected, %d skipped)",
        len(documents) + len(rejected),
        root,
        len(documents),
        len(rejected),
        skipped,
    )
    return Discovery(
        str(root),
        tuple(documents),
        tuple(rejected),
        skipped,
        tuple(sorted(issues, key=lambda i: i.line)),
    )


def _unique_ids(
    documents: list[SourceDocument],
) -> tuple[list[SourceDocument], list[SourceDocument]]:
    """The first document (in path order) keeps an id; later holders are rejected."""
    holders: dict[str, str] = {}
    kept: list[SourceDocument] = []
    duplicates: list[SourceDocument] = []
    for doc in documents:
        first = holders.setdefault(doc.doc_id, doc.source_path)
        if first == doc.source_path:
            kept.append(doc)
            continue
        duplicates.append(
            SourceDocument(
                source_path=doc.source_path,
                doc_id=doc.doc_id,
                size=doc.size,
                metadata=doc.metadata,
                metadata_line=doc.metadata_line,
                rejection=Rejection(
                    Stage.DISCOVER,
                    Reason.DUPLICATE_ID,
                    f"id {doc.doc_id!r} already used by {first!r}",
                ),
                fs_relative=doc.fs_relative,
            )
        )
    return kept, duplicates


def read_input(root: str, doc: SourceDocument, max_file_bytes: int) -> bytes | Rejection:
    """The bytes of one input, bounded; the file may have changed since discovery.

    A file swapped for a link leaving the root after discovery is not read: the path is
    resolved again here, checked, and the resolved path opened with O_NOFOLLOW, so a link
    slipped in between the check and the open fails instead of being followed.
    """
    real = os.path.realpath(os.path.join(root, doc.fs_relative or doc.source_path))
    real_root = _real_root(root)
    # ``real`` is resolved already: a prefix test, not _inside's second realpath.
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return Rejection(
            Stage.DISCOVER,
            Reason.SYMLINK_OUTSIDE_ROOT,
            "became a link to a target outside the source folder after discovery; not read",
        )
    return _read_bounded(real, max_file_bytes, nofollow=True)


@functools.lru_cache(maxsize=16)
def _real_root(root: str) -> str:
    return os.path.realpath(root)


def _read_bounded(
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
                return Rejection(Stage.DISCOVER, Reason.UNREADABLE, _os_detail(error))
            logger.warning("retrying %s in %.2f s after %s", path, delay, _os_detail(error))
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
