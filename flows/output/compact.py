"""Consumer files: each published table packed from the shard parts into files of a target size.

The shard pass writes one small part per shard and table under ``shards/`` (what the next
run reuses and copies). Readers (DuckDB, Spark, ``datasets``, the Hub's viewer) want few
large files with large row groups, so publishing packs consecutive shard parts into
*groups* and writes one consumer file per group, ``<table>/part-SSSSS.parquet``, named by
the group's first shard. The name is the whole layout: the next run reads the groups back
from the previous manifest and keeps them, so one changed document rewrites one consumer
file, and an unchanged group's file is copied (verified) rather than written again.
Groups are only merged when one of them is small (under half the target): new shards
accumulate in the last file until it is full, and a release of many small parts is
compacted once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.contracts import SHARDS_DIR, TABLES, published_tables
from flows.models import Manifest
from flows.output.release import write_file, write_parquet

logger = logging.getLogger(__name__)

PART = re.compile(r"part-([0-9]{5,})\.parquet")
# Rows are sorted by this column within each file (and files follow shard order, so across
# files too): the shard pass writes every part in path order.
SORT_KEY = "source_path"
# Uncompressed bytes per row group: large enough for fast scans, small enough that a reader
# (or the Hub's viewer, which reads one row group for a page) holds little in memory.
ROW_GROUP_BYTES = 64 * 1024 * 1024
# A row group ends at the first row past its byte budget whose key hashes to 0 mod this:
# about 32 rows later on average, a fraction of a row group either way.
ANCHOR_EVERY = 32


@dataclass(frozen=True, slots=True)
class Group:
    """Consecutive shards whose parts of one table make one consumer file."""

    start: int  # the first shard index: the file's name
    members: tuple[int, ...]  # shard indices with a part of this table, in order
    size: int  # bytes of those parts on disk

    @property
    def name(self) -> str:
        return part_file(self.start)


@dataclass(slots=True)
class Packing:
    """What publishing did to one release's consumer files."""

    written: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # the tables packed


def part_file(index: int) -> str:
    return f"part-{index:05d}.parquet"


def shard_of(name: str) -> int | None:
    match = PART.fullmatch(name)
    return int(match.group(1)) if match else None


def plan_groups(
    sizes: Mapping[int, int], previous: Sequence[tuple[int, tuple[int, ...]]], target: int
) -> list[Group]:
    """Groups of shard parts (index -> bytes) for one table. Pure.

    ``previous`` holds the previous release's groups (start, member shards); those still
    present are kept as they were, so an unchanged group's file can be copied. A group now
    over twice the target is split; shards no previous group held start alone. Then
    neighbours merge while one of the two is under half the target and together they stay
    within it: a few full files, never one file per shard.
    """
    groups: list[tuple[int, list[int]]] = []
    taken: set[int] = set()
    for first, held in previous:
        present = [i for i in held if i in sizes and i not in taken]
        if not present:
            continue
        taken.update(present)
        if len(present) > 1 and sum(sizes[i] for i in present) > 2 * target:
            groups += [(i, [i]) for i in present]
        else:
            groups.append((first, present))
    for i in sorted(set(sizes) - taken):
        # A shard that now has a part inside a kept group's span joins it (the group is
        # written again); any other starts alone.
        home = next((g for g in groups if g[0] <= i <= g[1][-1]), None)
        if home is None:
            groups.append((i, [i]))
        else:
            home[1].append(i)
            home[1].sort()
    groups.sort(key=lambda g: g[0])
    merged: list[tuple[int, list[int]]] = []
    for start, members in groups:
        if merged:
            last_start, last = merged[-1]
            a, b = sum(sizes[i] for i in last), sum(sizes[i] for i in members)
            if a + b <= target and min(a, b) < target / 2:
                merged[-1] = (last_start, last + members)
                continue
        merged.append((start, list(members)))
    return [Group(s, tuple(m), sum(sizes[i] for i in m)) for s, m in merged]


def previous_groups(manifest: Manifest, table: str) -> list[tuple[int, tuple[int, ...]]]:
    """The groups a release (in this layout) published for ``table``: each consumer file's
    first shard and the shard parts up to the next file's."""
    prefix = f"{SHARDS_DIR}/{table}/"
    shards = sorted(
        i
        for f in manifest.files
        if f.path.startswith(prefix) and (i := shard_of(f.path[len(prefix) :])) is not None
    )
    if not shards:
        return []  # an older layout (no shards/): its parts are packed afresh
    starts = sorted(
        i
        for f in manifest.files
        if f.path.startswith(f"{table}/") and (i := shard_of(f.path[len(table) + 1 :])) is not None
    )
    bounds = [*starts[1:], shards[-1] + 1]
    return [
        (start, tuple(i for i in shards if start <= i < end))
        for start, end in zip(starts, bounds, strict=True)
    ]


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_sorted(parts: Sequence[Path], key: str) -> bool:
    """Whether ``key`` never decreases across the parts, in order (reads that column only)."""
    last: str | None = None
    for path in parts:
        column = pq.ParquetFile(path).read(columns=[key]).column(key)
        if len(column) == 0:
            continue
        if column.null_count:
            return False
        values = column.combine_chunks()
        if (
            len(values) > 1
            and not pc.all(pc.less_equal(values.slice(0, len(values) - 1), values.slice(1))).as_py()
        ):
            return False
        if last is not None and values[0].as_py() < last:
            return False
        last = values[-1].as_py()
    return True


def _writer_options(schema: pa.Schema, sorted_by_key: bool) -> dict[str, object]:
    """What readers gain from the pinned pyarrow: page indexes (row-group and page pruning),
    declared sort order, a Bloom filter on ``id`` (point lookups), and content-defined
    pages, so an unchanged run of rows encodes to the same bytes in the next release and
    content-addressed storage (the Hub's Xet) stores and transfers it once."""
    options: dict[str, object] = {
        "compression": "zstd",
        "write_page_index": True,
        "use_content_defined_chunking": True,
        "write_statistics": True,
    }
    if sorted_by_key:
        options["sorting_columns"] = [pq.SortingColumn(schema.get_field_index(SORT_KEY))]
    if "id" in schema.names:
        options["bloom_filter_options"] = {"id": {"fpp": 0.01}}
    return options


def _anchor(table: pa.Table, start: int) -> int | None:
    """The first row from ``start`` on that may open a row group: one whose sort key hashes
    to a 1-in-:data:`ANCHOR_EVERY` value. Row groups then end where the *content* says, so a
    row inserted or deleted upstream moves no later boundary (and content-defined pages stay
    the same bytes); None when there is none yet, or the table has no sort key."""
    if SORT_KEY not in table.schema.names or start >= table.num_rows:
        return None
    keys = table.column(SORT_KEY).slice(start).to_pylist()
    for offset, key in enumerate(keys):
        if hashlib.sha256(str(key).encode()).digest()[0] % ANCHOR_EVERY == 0:
            return start + offset if start + offset > 0 else None
    return None


def write_group(parts: Sequence[Path], schema: pa.Schema, target: Path) -> int:
    """One consumer file from the parts, in order, in row groups of about
    :data:`ROW_GROUP_BYTES` (uncompressed), each ending at a content-defined row
    (:func:`_anchor`); returns its row count."""
    sorted_by_key = SORT_KEY in schema.names and _is_sorted(parts, SORT_KEY)
    rows = 0

    def write(writer: pq.ParquetWriter) -> None:
        nonlocal rows
        pending: list[pa.Table] = []
        pending_bytes = 0
        for path in parts:
            table = pq.ParquetFile(path).read().cast(schema)
            pending.append(table)
            pending_bytes += table.nbytes
            while pending_bytes >= ROW_GROUP_BYTES:
                buffer = pa.concat_tables(pending)
                take = max(1, int(buffer.num_rows * ROW_GROUP_BYTES / pending_bytes))
                cut = _anchor(buffer, take)
                if cut is None and pending_bytes < 2 * ROW_GROUP_BYTES:
                    pending = [buffer]
                    break  # no anchor yet: read on
                cut = cut or take
                writer.write_table(buffer.slice(0, cut), row_group_size=cut)
                rows += cut
                rest = buffer.slice(cut)
                pending_bytes = pending_bytes * rest.num_rows // max(1, buffer.num_rows)
                pending = [rest] if rest.num_rows else []
        if pending:
            buffer = pa.concat_tables(pending)
            if buffer.num_rows or rows == 0:
                writer.write_table(buffer, row_group_size=max(1, buffer.num_rows))
                rows += buffer.num_rows

    options = _writer_options(schema, sorted_by_key)

    def fill(handle: BinaryIO) -> None:
        with pq.ParquetWriter(handle, schema, **options) as writer:
            write(writer)

    write_file(target, fill)
    return rows


def _copy_verified(source: Path, expected: str, target: Path) -> bool:
    """Copy the previous release's consumer file when it still hashes to what its manifest
    recorded (streamed: the file may be hundreds of MB); False, with nothing left, if not."""
    digest = hashlib.sha256()

    def fill(handle: BinaryIO) -> None:
        with source.open("rb") as reader:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                handle.write(chunk)

    try:
        write_file(target, fill)
    except OSError as error:
        logger.warning("previous %s not copied (%s): written again", source.name, error)
        target.unlink(missing_ok=True)
        return False
    if digest.hexdigest() != expected:
        logger.warning(
            "previous %s/%s differs from its manifest: written again",
            source.parent.name,
            source.name,
        )
        target.unlink(missing_ok=True)
        return False
    return True


def pack_release(
    staging: Path,
    target_bytes: int,
    previous: Path | None = None,
    previous_manifest: Manifest | None = None,
    tables: Collection[str] | None = None,
    done: Packing | None = None,
) -> Packing:
    """Write every published table's consumer files at the top of ``staging`` from its
    parts under ``shards/``: unchanged groups copied from ``previous``, the rest written.

    ``tables``: only these (packed early, while the run's last step runs; nothing is
    logged); ``done``: what such an early packing did, whose tables are not packed again."""
    packing = Packing() if done is None else done
    old_sha = {f.path: f.sha256 for f in previous_manifest.files} if previous_manifest else {}
    for table, schema in published_tables().items():
        if (tables is not None and table not in tables) or table in packing.tables:
            continue
        packing.tables.append(table)
        folder = staging / SHARDS_DIR / table
        names = sorted(os.listdir(folder)) if folder.is_dir() else []
        parts = {i: folder / name for name in names if (i := shard_of(name)) is not None}
        for name in names:
            if shard_of(name) is None and name.endswith(".parquet"):
                # Written once for the whole corpus, not per shard: published as it is.
                (staging / table).mkdir(exist_ok=True)
                os.rename(folder / name, staging / table / name)
                packing.written.append(f"{table}/{name}")
        sizes = {i: path.stat().st_size for i, path in parts.items()}
        before = previous_groups(previous_manifest, table) if previous_manifest else []
        kept = dict(before)
        for group in plan_groups(sizes, before, target_bytes):
            name = f"{table}/{group.name}"
            if (
                previous is not None
                and kept.get(group.start) == group.members
                and name in old_sha
                and all(
                    old_sha.get(f"{SHARDS_DIR}/{table}/{part_file(i)}") == _sha256(parts[i])
                    for i in group.members
                )
                and _copy_verified(previous / name, old_sha[name], staging / name)
            ):
                packing.copied.append(name)
                continue
            write_group([parts[i] for i in group.members], schema, staging / name)
            packing.written.append(name)
        if not parts and not (staging / table).is_dir():
            # Every table has a file, so every reader finds its schema.
            write_parquet(schema.empty_table(), staging / table / part_file(0))
            packing.written.append(f"{table}/{part_file(0)}")
    if tables is not None:
        return packing
    logger.info(
        "consumer files: %d written, %d unchanged and copied",
        len(packing.written),
        len(packing.copied),
    )
    return packing


def lift_extras(staging: Path) -> list[str]:
    """Move what the engine wrote under ``shards/`` outside the table registry (say, the
    learned furniture list for review) to the top of the release, where it always was."""
    shards = staging / SHARDS_DIR
    moved = []
    for entry in sorted(shards.iterdir()) if shards.is_dir() else []:
        if entry.name not in TABLES and not (staging / entry.name).exists():
            os.rename(entry, staging / entry.name)
            moved.append(entry.name)
    return moved


def value_counts(folder: Path, column: str) -> dict[str, int]:
    """How often each value of one column occurs over a table's consumer files (that column
    only is read; a null counts under the empty string)."""
    counts: dict[str, int] = {}
    for path in sorted(folder.glob("*.parquet")):
        values = pq.ParquetFile(path).read(columns=[column]).column(column)
        for entry in pc.value_counts(values).to_pylist():
            key = entry["values"] or ""
            counts[key] = counts.get(key, 0) + entry["counts"]
    return counts


def uncompressed_bytes(folder: Path) -> int:
    """The table's data size before compression, from its files' footers (what ``datasets``
    calls a split's ``num_bytes``)."""
    total = 0
    for path in sorted(folder.glob("*.parquet")):
        meta = pq.ParquetFile(path).metadata
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


__all__ = [
    "ROW_GROUP_BYTES",
    "SORT_KEY",
    "Group",
    "Packing",
    "lift_extras",
    "pack_release",
    "plan_groups",
    "previous_groups",
    "uncompressed_bytes",
    "value_counts",
    "write_group",
]
