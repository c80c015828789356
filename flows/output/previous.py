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

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from flows.contracts import (
    DOCUMENT_SCHEMA_VERSION,
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
class PreviousRelease:
    """The release ``current`` pointed at when this run started, as far as it verifies.

    ``path`` is the folder its shard parts are in (``shards/`` of the release; the release
    itself in the older layout), and part names are relative to it.
    """

    path: Path
    manifest: Manifest
    # processing key and row location of every input, from the index parts that verified
    index: dict[str, IndexRow] = field(default_factory=dict)
    # rows per part file, from the index (a part may be copied only when it holds exactly
    # the inputs of one new shard)
    rows_per_file: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    # what the manifest's paths of shard parts start with ("shards/"; "" in the older layout)
    prefix: str = ""
    _sha: dict[str, str] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._sha = {
            f.path.removeprefix(self.prefix): f.sha256
            for f in self.manifest.files
            if f.path.startswith(self.prefix)
        }

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


def open_previous(out: Path) -> PreviousRelease | None:
    """The current release with its verified index; None when there is none or its manifest
    cannot be read (then every input is processed from the source)."""
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
        previous = PreviousRelease(path / SHARDS_DIR, manifest, prefix=prefix)
    else:
        previous = PreviousRelease(path, manifest)
    _load_index(previous)
    return previous


def _load_index(previous: PreviousRelease) -> None:
    names = [name for name in previous.names() if name.startswith(f"{INDEX_DIR}/")]
    for name in names:
        try:
            data = read_verified(previous.path / name, previous.sha256(name) or "")
            table = parquet_from_bytes(data, INDEX_SCHEMA)
        except (PartMismatch, OSError, pa.ArrowInvalid, KeyError) as error:
            # Its inputs are simply not found in the index: processed again, never lost.
            previous.warnings.append(f"previous index part {name} not used ({error})")
            continue
        # Column by column: to_pylist() builds a dict per row, 1.5 s for 6,000 inputs.
        # One string object per distinct table and file (a few per part, not one per row).
        shared: dict[str, str] = {}
        for path, key, table_name, file_name in zip(
            table.column("source_path").to_pylist(),
            table.column("processing_key").to_pylist(),
            table.column("table").to_pylist(),
            table.column("file").to_pylist(),
            strict=True,
        ):
            kind = shared.setdefault(table_name, table_name)
            file = shared.setdefault(file_name, file_name)
            previous.index[path] = IndexRow(path, key, kind, file)
            previous.rows_per_file[file] += 1
    for warning in previous.warnings:
        logger.warning("%s", warning)


__all__ = [
    "MANIFEST",
    "PartMismatch",
    "PreviousRelease",
    "open_previous",
    "parquet_from_bytes",
    "processing_key",
    "read_verified",
]
