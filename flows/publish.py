"""Write a release atomically. Everything here touches the output folder.

Layout::

    OUT/.lock                          held (flock) by the one run publishing into OUT
    OUT/releases/.staging-<uuid>/      a release being written; never read by anyone
    OUT/releases/<release-id>/         a complete release (renamed from staging at the end)
    OUT/current -> releases/<id>       switched with one rename(2) of a symlink

A reader following ``current`` sees either the previous complete release or the new
complete one, never a mix; a run that dies leaves only a staging folder, which the next
run removes.
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
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows.contracts import DOCUMENT_SCHEMA, DOCUMENTS_DIR, REJECTED_DIR, REJECTED_SCHEMA
from flows.errors import OutputError, OutputLockedError
from flows.models import DataFile, Manifest

logger = logging.getLogger(__name__)

RELEASES = "releases"
CURRENT = "current"
STAGING_PREFIX = ".staging-"
DELETING_PREFIX = ".deleting-"
CURRENT_TMP_PREFIX = ".current-"
PROBE_PREFIX = ".probe-"
# Row groups of ~50 documents keep a reader's memory bounded (articles are ~5-20 kB each)
# while leaving the per-group overhead negligible.
ROW_GROUP_SIZE = 50


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write then fsync: the release is renamed into place only after its bytes are on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_SIZE)
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def copy_file(source: Path, target: Path) -> None:
    """Copy then fsync, like :func:`write_parquet`: staged bytes are durable before the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


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
    current = root / CURRENT
    if current.exists() and not current.is_symlink():
        raise OutputError(f"{current} exists and is not a symbolic link; refusing to replace it")
    return root.resolve()


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on OUT for the whole run; a second run fails at once with who holds it."""
    path = out / ".lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputLockedError(
                f"another corpus run ({holder}) is publishing to {out}; wait for it to finish"
            ) from error
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} since {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
        )
        handle.flush()
        yield
    finally:
        handle.close()


def new_staging(out: Path) -> Path:
    """Remove what crashed runs left and open a fresh staging folder. Call under the lock."""
    releases = out / RELEASES
    for leftover in releases.glob(f"{STAGING_PREFIX}*"):
        logger.warning("removing %s left by an interrupted run", leftover.name)
        shutil.rmtree(leftover, ignore_errors=True)
    # A run killed between creating the new ``current`` link and renaming it over the old
    # one leaves ``.current-<uuid>``; one killed mid-probe leaves ``.probe-<uuid>``.
    for leftover in (*out.glob(f"{CURRENT_TMP_PREFIX}*"), *releases.glob(f"{PROBE_PREFIX}*")):
        logger.warning("removing %s left by an interrupted run", leftover.name)
        leftover.unlink(missing_ok=True)
    staging = releases / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    return staging


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    """A release always has at least one file per table, so readers always find a schema."""
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
    while (out / RELEASES / candidate).exists():
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def finalize(staging: Path, manifest: Manifest, card: str, out: Path) -> Path:
    """Write manifest and card, move the release into place, switch ``current``."""
    (staging / "manifest.json").write_text(
        json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (staging / "README.md").write_text(card, encoding="utf-8")
    for name in ("manifest.json", "README.md"):
        with (staging / name).open("rb") as handle:
            os.fsync(handle.fileno())
    final = out / RELEASES / manifest.release_id
    os.rename(staging, final)
    _fsync_dir(out / RELEASES)
    link = out / f"{CURRENT_TMP_PREFIX}{uuid.uuid4().hex}"
    os.symlink(f"{RELEASES}/{manifest.release_id}", link)
    os.replace(link, out / CURRENT)
    _fsync_dir(out)
    logger.info("published release %s", manifest.release_id)
    return final


def _age_key(name: str) -> tuple[str, int]:
    """Release ids sort by creation time; a same-second collision gets ``.2``, ``.3``, ...,
    which must sort numerically (``.10`` after ``.9``)."""
    base, dot, suffix = name.rpartition(".")
    if dot and suffix.isdigit():
        return base, int(suffix)
    return name, 1


def prune(out: Path, keep: int) -> list[str]:
    """Delete the oldest complete releases beyond ``keep``; never the current one."""
    current = os.path.realpath(out / CURRENT)
    releases = sorted(
        (p for p in (out / RELEASES).iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: _age_key(p.name),
    )
    removed = []
    for old in releases[: max(0, len(releases) - keep)]:
        if os.path.realpath(old) == current:
            continue
        # Rename first: a half-deleted folder must not look like a release.
        doomed = old.with_name(f"{DELETING_PREFIX}{old.name}")
        os.rename(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(old.name)
    for leftover in (out / RELEASES).glob(f"{DELETING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if removed:
        logger.info("pruned %d old release(s): %s", len(removed), ", ".join(removed))
    return removed
