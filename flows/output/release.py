"""Write releases into the output folder atomically; touch nothing there it did not write.

Layout::

    OUT/.lock                          held (flock) by the one run publishing into OUT
    OUT/releases/.staging-<uuid>/      a release being written; never read by anyone
    OUT/releases/.staging-<uuid>.published
                                       while the run lasts: the id of the release it became
    OUT/releases/.deleting-<id>/       a release being pruned; later runs finish deleting it
    OUT/releases/<release-id>/         a complete release (renamed from staging at the end)
    OUT/current -> releases/<id>       switched with one rename(2) of a symlink

A reader following ``current`` sees either the previous complete release or the new
complete one, never a mix. A failed run removes its staging folder on the way out
(:func:`staging_folder`, :func:`output_lock`); one that is killed leaves it to the next run.
Pruning only ever deletes folders this tool published (:func:`is_release`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from flows.contracts import DOCUMENT_SCHEMA, DOCUMENTS_DIR, REJECTED_DIR, REJECTED_SCHEMA
from flows.errors import OutputError, OutputLockedError
from flows.models import DataFile, Manifest

logger = logging.getLogger(__name__)

RELEASES = "releases"
CURRENT = "current"
LOCK = ".lock"
MANIFEST = "manifest.json"
CARD = "README.md"
STAGING_PREFIX = ".staging-"
PUBLISHED_SUFFIX = ".published"
DELETING_PREFIX = ".deleting-"
CURRENT_TMP_PREFIX = ".current-"
PROBE_PREFIX = ".probe-"
# What release_id() produces: UTC second, input fingerprint prefix, ``.N`` on a collision.
RELEASE_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}(?:\.[0-9]+)?")
# Row groups of ~50 documents keep a reader's memory bounded (articles are ~5-20 kB each)
# while leaving the per-group overhead negligible.
ROW_GROUP_SIZE = 50
_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """A full disk or quota becomes one clear OutputError (exit 2); other OSErrors stay as
    they are, since they may be transient and worth a retry."""
    try:
        yield
    except OSError as error:
        reason = _FULL.get(error.errno or 0)
        if reason is None:
            raise
        raise OutputError(f"{reason} writing {path}; nothing was published") from error


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write then fsync: the release is renamed into place only after its bytes are on disk."""
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_SIZE)
            _fsync_file(path)
        except OSError:
            # A partial part would only hold on to the space that just ran out.
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            raise


def write_bytes(data: bytes, target: Path) -> None:
    """Write then fsync, like :func:`write_parquet` (a verified part of the previous release,
    copied): staged bytes are durable before the rename."""
    write_file(target, lambda handle: handle.write(data))


def write_file(target: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``target`` through ``fill`` (a streamed copy, a ParquetWriter), then fsync, like
    :func:`write_parquet`; a file left half written by any failure is removed."""
    with _writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with target.open("wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
            raise


def write_parts(staging: str, shard: int, tables: Sequence[tuple[str, pa.Table]]) -> list[str]:
    """Write one shard's non-empty tables as ``<folder>/part-NNNNN.parquet``; return their
    paths relative to the staging folder."""
    name = f"part-{shard:05d}.parquet"
    written = []
    for folder, table in tables:
        if table.num_rows:
            write_parquet(table, Path(staging, folder, name))
            written.append(f"{folder}/{name}")
    return written


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a device")


def _check_lock_file(path: Path, status: os.stat_result) -> None:
    """The lock file must be a plain file of its own: never a link, FIFO or device, and no
    hard link to some other file, which writing the holder's pid would overwrite."""
    if not stat.S_ISREG(status.st_mode):
        raise OutputError(f"{path} is {_kind(status.st_mode)}, not a regular file; remove it")
    if status.st_nlink != 1:
        raise OutputError(
            f"{path} has {status.st_nlink} hard links, so it is also another file; remove it"
        )


def _check_output_entries(root: Path) -> None:
    """``current`` must be a symlink (or absent; a dangling one is replaced by the next
    release) and ``.lock`` a regular file (or absent). Checked without opening anything."""
    for name, check in ((CURRENT, None), (LOCK, _check_lock_file)):
        path = root / name
        try:
            status = path.lstat()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise OutputError(f"cannot inspect {path}: {error.strerror or error}") from error
        if check is not None:
            check(path, status)
        elif not stat.S_ISLNK(status.st_mode):
            raise OutputError(
                f"{path} is {_kind(status.st_mode)}, not a symbolic link to a release; "
                "move it away or choose another output folder"
            )


def ensure_output(out: str) -> Path:
    root = Path(out)
    try:
        (root / RELEASES).mkdir(parents=True, exist_ok=True)
        probe = root / RELEASES / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        # missing_ok: the run holding the lock clears stray probes, possibly this one.
        probe.unlink(missing_ok=True)
    except OSError as error:
        raise OutputError(
            f"output folder {out!r} is not writable: {error.strerror or error}"
        ) from error
    _check_output_entries(root)
    return root.resolve()


def _open_lock(path: Path) -> int:
    """Open (creating) the lock file without following a link, blocking on a FIFO or taking
    a terminal; then check what was really opened."""
    with contextlib.suppress(FileNotFoundError):
        # Before opening: opening a device or FIFO can have effects of its own.
        _check_lock_file(path, path.lstat())
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputError(
                f"{path} is a symbolic link, not a regular file; remove it"
            ) from error
        raise OutputError(f"cannot open {path}: {error.strerror or error}") from error
    try:
        _check_lock_file(path, os.fstat(fd))  # the file opened, whatever lstat saw before
    except OutputError:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on OUT for the whole run; a second run fails at once with who holds it.

    On the way out, still under the lock, whatever the run left in ``releases/`` (the staging
    folder of a failed run) is removed.
    """
    path = out / LOCK
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = " ".join(os.pread(fd, 200, 0).decode("utf-8", "replace").split())
            raise OutputLockedError(
                f"another corpus run ({holder or 'unknown'}) is publishing to {out}; "
                "wait for it to finish"
            ) from error
        # Only now, held and verified, is the file truncated.
        os.ftruncate(fd, 0)
        since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} since {since}".encode(), 0)
        try:
            yield
        finally:
            _remove_staging_leftovers(out, "left by this run")
    finally:
        os.close(fd)


def _delete_tree(path: Path) -> list[OSError]:
    """Delete as much of ``path`` as possible; return what could not be deleted."""
    errors: list[OSError] = []
    if path.is_symlink() or not path.is_dir():
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            errors.append(error)
        return errors

    def record(error: BaseException) -> None:
        if not isinstance(error, OSError):
            raise error
        errors.append(error)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=lambda _f, _p, error: record(error))
    else:
        shutil.rmtree(path, onerror=lambda _f, _p, info: record(info[1]))
    return errors


def _describe(errors: Sequence[OSError]) -> str:
    first = errors[0]
    text = f"{first.strerror or first}" + (f": {first.filename}" if first.filename else "")
    return text + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def _published_marker(staging: Path) -> Path:
    return staging.with_name(staging.name + PUBLISHED_SUFFIX)


def _remove_staging_leftovers(out: Path, why: str) -> None:
    releases = out / RELEASES
    for leftover in sorted(releases.glob(f"{STAGING_PREFIX}*")):
        if leftover.name.endswith(PUBLISHED_SUFFIX) and not leftover.is_dir():
            leftover.unlink(missing_ok=True)  # bookkeeping of a finished finalize
            continue
        logger.warning("removing %s %s", leftover.name, why)
        errors = _delete_tree(leftover)
        if errors:
            logger.warning("could not remove all of %s: %s", leftover.name, _describe(errors))


def new_staging(out: Path) -> Path:
    """Remove what crashed runs left and open a fresh staging folder. Call under the lock."""
    _remove_staging_leftovers(out, "left by an interrupted run")
    # A run killed between creating the new ``current`` link and renaming it over the old
    # one leaves ``.current-<uuid>``; one killed mid-probe leaves ``.probe-<uuid>``.
    releases = out / RELEASES
    for leftover in (*out.glob(f"{CURRENT_TMP_PREFIX}*"), *releases.glob(f"{PROBE_PREFIX}*")):
        logger.warning("removing %s left by an interrupted run", leftover.name)
        leftover.unlink(missing_ok=True)
    staging = releases / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    return staging


@contextlib.contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """:func:`new_staging`, removed at once if the block fails. Call under the lock.

    After a successful :func:`finalize` the folder has become a release and nothing is
    removed, even if the block fails later.
    """
    staging = new_staging(out)
    try:
        yield staging
    except BaseException:
        if staging.is_dir() and not staging.is_symlink():
            logger.warning("removing %s of this failed run", staging.name)
            errors = _delete_tree(staging)
            if errors:
                logger.warning("could not remove all of %s: %s", staging.name, _describe(errors))
        raise
    finally:
        with contextlib.suppress(OSError):
            _published_marker(staging).unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def data_files(staging: Path) -> list[DataFile]:
    """Every Parquet file in the staging folder, with rows and checksum, in name order."""
    files = []
    for path in sorted(staging.rglob("*.parquet")):
        files.append(
            DataFile(
                path=path.relative_to(staging).as_posix(),
                rows=pq.ParquetFile(path).metadata.num_rows,
                bytes=path.stat().st_size,
                sha256=sha256_file(path),
            )
        )
    return files


def ensure_tables(staging: Path) -> None:
    """A release always has at least one file per table, so readers always find a schema.

    A staging folder that is gone is left gone: it was published already (a retried publish;
    :func:`finalize` returns that release) or removed, and must not come back empty.
    """
    if not staging.is_dir():
        return
    for folder, schema in ((DOCUMENTS_DIR, DOCUMENT_SCHEMA), (REJECTED_DIR, REJECTED_SCHEMA)):
        if not any((staging / folder).glob("*.parquet")):
            write_parquet(schema.empty_table(), staging / folder / "part-00000.parquet")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def release_id(created: dt.datetime, fingerprint: str, out: Path) -> str:
    base = f"{created.strftime('%Y%m%dT%H%M%SZ')}-{fingerprint[:8]}"
    candidate, n = base, 1
    releases = out / RELEASES
    # Also clear of a release of that name still being deleted: pruning renames onto it.
    while (releases / candidate).exists() or (releases / f"{DELETING_PREFIX}{candidate}").exists():
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def read_manifest(release: Path) -> Manifest | None:
    """The manifest of a complete release this tool wrote, else None (never raises)."""
    try:
        if not stat.S_ISDIR(release.lstat().st_mode):
            return None
        path = release / MANIFEST
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        manifest = Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
        return None
    return manifest if manifest.release_id == release.name else None


def is_release(path: Path) -> bool:
    """A folder this tool published: named like :func:`release_id` makes them, holding a
    ``manifest.json`` that is a valid :class:`Manifest` of that id."""
    return RELEASE_ID.fullmatch(path.name) is not None and read_manifest(path) is not None


def _switch_current(out: Path, release: str) -> None:
    current = out / CURRENT
    target = f"{RELEASES}/{release}"
    try:
        old: str | None = os.readlink(current)
    except FileNotFoundError:
        old = None
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
        # Replaced by something else during the run: never rename over a user's file.
        raise OutputError(
            f"{current} is {_kind(current.lstat().st_mode)}, not a symbolic link; release "
            f"{release} is complete but not current: move {current} away and run again"
        ) from error
    if old == target:
        return
    if old is not None and not (out / old).exists():
        logger.warning("%s pointed at %s, which does not exist; replacing it", current, old)
    link = out / f"{CURRENT_TMP_PREFIX}{uuid.uuid4().hex}"
    os.symlink(target, link)
    os.replace(link, current)
    _fsync_dir(out)


def _already_published(staging: Path, manifest: Manifest, out: Path) -> Path:
    try:
        published_id = _published_marker(staging).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        published_id = ""
    final = out / RELEASES / published_id
    published = read_manifest(final) if RELEASE_ID.fullmatch(published_id) else None
    if published is None:
        raise OutputError(
            f"staging folder {staging} is gone and no release was published from it; "
            "the previous release stays current"
        )
    with _writing(out / CURRENT):
        _switch_current(out, published_id)
    # The caller reports this manifest: make it the one published, not the retry's.
    for name in Manifest.model_fields:
        setattr(manifest, name, getattr(published, name))
    logger.info("release %s was published already; nothing new published", published_id)
    return final


def finalize(
    staging: Path,
    manifest: Manifest,
    card: str,
    out: Path,
    extra: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write manifest, card (and ``extra`` files: name, text), move the release into place,
    switch ``current``.

    Idempotent: called again once the staging folder was renamed into place (a retried
    task), it publishes nothing new. It finishes switching ``current`` to the release that
    folder became, updates ``manifest`` in place to that release's, and returns its path.
    """
    if not staging.is_dir():
        return _already_published(staging, manifest, out)
    releases = out / RELEASES
    for name, text in (
        (
            MANIFEST,
            json.dumps(
                manifest.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False
            )
            + "\n",
        ),
        (CARD, card),
        *extra,
    ):
        with _writing(staging / name):
            (staging / name).write_text(text, encoding="utf-8")
            _fsync_file(staging / name)
    final = releases / manifest.release_id
    with _writing(final):
        # Where the staging folder goes is recorded before it goes: a repeated call finds it.
        _published_marker(staging).write_text(manifest.release_id, encoding="utf-8")
        os.rename(staging, final)
        _fsync_dir(releases)
        _switch_current(out, manifest.release_id)
    logger.info("published release %s", manifest.release_id)
    return final


def _age_key(name: str) -> tuple[str, int]:
    """Release ids sort by creation time; a same-second collision gets ``.2``, ``.3``, ...,
    which must sort numerically (``.10`` after ``.9``)."""
    base, dot, suffix = name.rpartition(".")
    if dot and suffix.isdigit():
        return base, int(suffix)
    return name, 1


def _finish_deleting(doomed: Path) -> bool:
    errors = _delete_tree(doomed)
    if errors:
        logger.warning(
            "could not finish deleting %s (kept under that name; the next run retries): %s",
            doomed.name,
            _describe(errors),
        )
    return not errors


def _read_only_folder(release: Path) -> Path | None:
    """A folder of the release whose entries this process may not delete, if any."""
    for folder, _dirs, _files in os.walk(release):
        if not os.access(folder, os.W_OK | os.X_OK):
            return Path(folder)
    return None


def prune(out: Path, keep: int) -> list[str]:
    """Delete the oldest releases this tool wrote beyond ``keep``; never the current one.

    Housekeeping: a release that cannot be deleted is logged and left, never raised, so a
    failed prune cannot fail a run or touch ``current``. Folders that are not releases of
    this tool (:func:`is_release`) are neither counted nor touched. Returns the names pruned.
    """
    releases_dir = out / RELEASES
    try:
        entries = sorted(releases_dir.iterdir())
    except OSError as error:
        logger.warning("could not list %s to prune it: %s", releases_dir, error.strerror or error)
        return []
    releases = []
    for entry in entries:
        if is_release(entry):
            releases.append(entry)
        elif not entry.name.startswith("."):
            logger.debug("not a release written by corpus, left alone: %s", entry.name)
    releases.sort(key=lambda p: _age_key(p.name))
    current = os.path.realpath(out / CURRENT)
    removed, handled = [], set()
    for old in releases[: max(0, len(releases) - keep)]:
        if os.path.realpath(old) == current:
            continue
        locked = _read_only_folder(old)
        if locked is not None:
            # Made read-only (chmod, chattr +i): kept whole rather than half deleted.
            logger.warning(
                "could not prune release %s (left in place): %s is read-only", old.name, locked
            )
            continue
        # Rename first: a half-deleted folder must not look like a release.
        doomed = old.with_name(f"{DELETING_PREFIX}{old.name}")
        try:
            os.rename(old, doomed)
        except OSError as error:
            logger.warning(
                "could not prune release %s (left in place): %s", old.name, error.strerror or error
            )
            continue
        removed.append(old.name)
        handled.add(doomed.name)
        _finish_deleting(doomed)
    # Releases earlier runs could not finish deleting: only names this tool gave them.
    for leftover in sorted(releases_dir.glob(f"{DELETING_PREFIX}*")):
        name = leftover.name.removeprefix(DELETING_PREFIX)
        if leftover.name in handled or not RELEASE_ID.fullmatch(name) or leftover.is_symlink():
            continue
        _finish_deleting(leftover)
    if removed:
        logger.info("pruned %d old release(s): %s", len(removed), ", ".join(removed))
    return removed
