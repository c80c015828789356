"""The previous release, read for reuse and trusted only as far as its manifest vouches.

Every release carries ``index/part-NNNNN.parquet`` next to its data: for each input whose
bytes were read, its ``processing_key`` -- a hash of the input bytes, its path, id and
metadata record, the configuration fingerprint (which includes the pipeline version) and
the schema versions -- and where its row lives. A new run computes the same key after
reading an input; when it equals the previous key for that path, the row is taken from
the previous release instead of being decoded, detected and cleaned again.

Nothing read from the previous release is trusted blindly: its manifest must parse, and
every part (index, data, facts) is used only when its bytes hash to the sha256 the
manifest recorded. A part that does not verify costs speed, never correctness: its inputs
are processed again from the source, and the run says so.

Prefect's own task cache would key whole shards (one changed document would reprocess its
shard, an added file would shift every later shard) and keep results in its own storage;
keying single documents on their bytes, inside the release, reprocesses exactly the
documents that changed and survives moving the Prefect server.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from flows.contracts import (
    DOCUMENT_SCHEMA_VERSION,
    DOCUMENTS_DIR,
    INDEX_DIR,
    INDEX_SCHEMA,
    REJECTED_SCHEMA_VERSION,
    SHARDS_DIR,
    IndexRow,
    SourceDocument,
)
from flows.models import Manifest

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def processing_key(doc: SourceDocument, source_sha256: str, config_fingerprint: str) -> str:
    """Everything that can change an input's row, hashed. Pure."""
    payload = json.dumps(
        {
            "sha256": source_sha256,
            "path": doc.source_path,
            "id": doc.doc_id,
            "metadata": doc.metadata,
            "metadata_line": doc.metadata_line,
            "config": config_fingerprint,
            "schemas": [DOCUMENT_SCHEMA_VERSION, REJECTED_SCHEMA_VERSION],
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8", errors="backslashreplace")).hexdigest()


class PartMismatch(Exception):
    """A part of the previous release does not hash to what its manifest recorded."""


def read_verified(path: Path, expected: str) -> bytes:
    """The file's bytes, read once, when they hash to ``expected``; else PartMismatch."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PartMismatch(f"{path.name}: {error.strerror or error}") from error
    if hashlib.sha256(data).hexdigest() != expected:
        raise PartMismatch(f"{path.parent.name}/{path.name}: sha256 differs from the manifest")
    return data


def parquet_from_bytes(data: bytes, schema: pa.Schema) -> pa.Table:
    """A verified part's rows in ``schema``. ``pq.ParquetFile``, not ``pq.read_table``: the
    latter goes through ``pyarrow.dataset``, whose import pulls in pandas (1.6 s a process)."""
    table = pq.ParquetFile(pa.BufferReader(data)).read(columns=schema.names)
    return table.cast(schema)


@dataclass(slots=True)
class _IndexPart:
    """One index part that verified: its rows by source path and its path range."""

    name: str
    rows: dict[str, IndexRow]
    first: str
    last: str


@dataclass(slots=True)
class PreviousRelease:
    """The release ``current`` pointed at when this run started, as far as it verifies.

    ``path`` is the folder its shard parts are in (``shards/`` of the release; the release
    itself in the older layout), and part names are relative to it.

    Its index is read part by part as the run's shards ask for it (:meth:`index_for`):
    shards are cut in path order and each index part holds one shard's inputs, so the
    parts cover ascending ranges of paths and a run holds the one or two parts around its
    current shard, not an entry for every input of the previous release.
    """

    path: Path
    manifest: Manifest
    # rows per part file, of the index parts held (a part may be copied only when it holds
    # exactly the inputs of one new shard)
    rows_per_file: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    # what the manifest's paths of shard parts start with ("shards/"; "" in the older layout)
    prefix: str = ""
    _sha: dict[str, str] = field(init=False, repr=False, default_factory=dict)
    _parts: list[str] = field(init=False, repr=False, default_factory=list)  # index parts
    _next: int = field(init=False, repr=False, default=0)  # the next index part to read
    _window: list[_IndexPart] = field(init=False, repr=False, default_factory=list)
    _ranges: list[tuple[str, str, str]] = field(init=False, repr=False, default_factory=list)
    # Every row at once: only for a release whose index parts are not in path order.
    _whole: dict[str, IndexRow] | None = field(init=False, repr=False, default=None)
    _warned: set[str] = field(init=False, repr=False, default_factory=set)

    def __post_init__(self) -> None:
        self._sha = {
            f.path.removeprefix(self.prefix): f.sha256
            for f in self.manifest.files
            if f.path.startswith(self.prefix)
        }
        self._parts = [name for name in self.names() if name.startswith(f"{INDEX_DIR}/")]

    @property
    def release(self) -> Path:
        """The release folder itself."""
        return self.path.parent if self.prefix else self.path

    def names(self) -> list[str]:
        """Every part the manifest lists, relative to :attr:`path`, in order."""
        return sorted(self._sha)

    def sha256(self, name: str) -> str | None:
        """What the manifest says the part ``name`` hashes to; None when it lists no such part."""
        return self._sha.get(name)

    def index_for(self, first: str, last: str) -> Mapping[str, IndexRow]:
        """The processing key and row location of the previous inputs from ``first`` to
        ``last`` (and perhaps a few around them). Asked in path order, shard after shard:
        the parts before ``first`` are let go."""
        if self._whole is not None:
            return self._whole
        for passed in [p for p in self._window if p.last < first]:
            self._window.remove(passed)
            self.rows_per_file -= Counter(row.file for row in passed.rows.values())
        while self._next < len(self._parts) and (not self._window or self._window[-1].last < last):
            part = self._read(self._parts[self._next])
            self._next += 1
            if part is None:
                continue
            if self._ranges and part.first <= self._ranges[-1][1]:
                return self._read_whole()  # not in path order: read as it always was
            self._ranges.append((part.first, part.last, part.name))
            self._window.append(part)
            self.rows_per_file.update(row.file for row in part.rows.values())
        merged: dict[str, IndexRow] = {}
        for part in self._window:
            merged.update(part.rows)
        return merged

    def finish(self) -> None:
        """Read the index parts no shard asked for: what this release published is known
        for every path, and a part that does not verify is reported as before."""
        self._window.clear()
        self.rows_per_file = Counter()
        while self._whole is None and self._next < len(self._parts):
            part = self._read(self._parts[self._next])
            self._next += 1
            if part is None:
                continue
            if self._ranges and part.first <= self._ranges[-1][1]:
                self._read_whole()
                return
            self._ranges.append((part.first, part.last, part.name))

    def published(self) -> Container[str]:
        """The source paths this release published (looked up part by part)."""
        self.finish()
        return _Published(self)

    def _read(self, name: str) -> _IndexPart | None:
        try:
            data = read_verified(self.path / name, self.sha256(name) or "")
            table = parquet_from_bytes(data, INDEX_SCHEMA)
        except (PartMismatch, OSError, pa.ArrowInvalid, KeyError) as error:
            # Its inputs are simply not found in the index: processed again, never lost.
            if name not in self._warned:
                self._warned.add(name)
                self.warnings.append(f"previous index part {name} not used ({error})")
                logger.warning("%s", self.warnings[-1])
            return None
        # Column by column: to_pylist() builds a dict per row, 1.5 s for 6,000 inputs.
        # One string object per distinct table and file (a few per part, not one per row).
        shared: dict[str, str] = {}
        rows: dict[str, IndexRow] = {}
        for path, key, table_name, file_name in zip(
            table.column("source_path").to_pylist(),
            table.column("processing_key").to_pylist(),
            table.column("table").to_pylist(),
            table.column("file").to_pylist(),
            strict=True,
        ):
            kind = shared.setdefault(table_name, table_name)
            file = shared.setdefault(file_name, file_name)
            rows[path] = IndexRow(path, key, kind, file)
        if not rows:
            return None
        return _IndexPart(name, rows, min(rows), max(rows))

    def _read_whole(self) -> dict[str, IndexRow]:
        whole: dict[str, IndexRow] = {}
        self.rows_per_file = Counter()
        for name in self._parts:
            part = self._read(name)
            if part is not None:
                whole.update(part.rows)
                self.rows_per_file.update(row.file for row in part.rows.values())
        self._whole, self._window, self._next = whole, [], len(self._parts)
        return whole

    def _part_of(self, path: str) -> _IndexPart | None:
        """The part whose range holds ``path`` (the last one read is kept)."""
        found = bisect.bisect_right(self._ranges, (path, "\U0010ffff")) - 1
        if found < 0 or not (self._ranges[found][0] <= path <= self._ranges[found][1]):
            return None
        name = self._ranges[found][2]
        if not self._window or self._window[-1].name != name:
            part = self._read(name)
            self._window = [part] if part is not None else []
        return self._window[-1] if self._window else None


@dataclass(frozen=True, slots=True)
class _Published:
    previous: PreviousRelease

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        if self.previous._whole is not None:
            row = self.previous._whole.get(path)
        else:
            part = self.previous._part_of(path)
            row = part.rows.get(path) if part is not None else None
        return row is not None and row.table == DOCUMENTS_DIR


def open_previous(out: Path) -> PreviousRelease | None:
    """The current release, its index read as the shards ask for it; None when there is
    none or its manifest cannot be read (then every input is processed from the source)."""
    current = out / "current"
    if not current.is_symlink() or not current.resolve().is_dir():
        return None
    path = current.resolve()
    try:
        manifest = Manifest.model_validate_json((path / MANIFEST).read_bytes())
    except (OSError, ValidationError, ValueError) as error:
        logger.warning(
            "previous release %s has no readable manifest (%s): every input is processed again",
            path.name,
            str(error).splitlines()[0],
        )
        return None
    prefix = f"{SHARDS_DIR}/"
    if any(f.path.startswith(prefix) for f in manifest.files):
        return PreviousRelease(path / SHARDS_DIR, manifest, prefix=prefix)
    return PreviousRelease(path, manifest)


__all__ = [
    "MANIFEST",
    "PartMismatch",
    "PreviousRelease",
    "open_previous",
    "parquet_from_bytes",
    "processing_key",
    "read_verified",
]
