"""This release against the previous one: documents added, removed, changed, unchanged.

Reads only the ``id`` and ``text_sha256`` columns of both releases' ``documents`` parts
(Parquet is columnar: the texts are never read) and joins them in Arrow, so comparing two
releases of a million documents costs two small columns, not the corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.contracts import DOCUMENTS_DIR
from flows.models import ReleaseChanges

logger = logging.getLogger(__name__)

_COLUMNS = ["id", "text_sha256"]


def text_hashes(release: Path, parts: Iterable[str]) -> pa.Table:
    """``id`` and ``text_sha256`` of every published document in the given parts."""
    tables = [pq.ParquetFile(release / name).read(columns=_COLUMNS) for name in parts]
    schema = pa.schema([pa.field("id", pa.string()), pa.field("text_sha256", pa.string())])
    # Not schema.empty_table(): it imports pandas where installed (flows.contracts).
    return (
        pa.concat_tables([t.cast(schema) for t in tables], promote_options="none")
        if tables
        else pa.Table.from_batches([], schema=schema)
    )


def document_parts(release: Path) -> list[str]:
    """The documents parts of a release folder (staging or published), in name order."""
    found = (release / DOCUMENTS_DIR).glob("*.parquet")
    return sorted(p.relative_to(release).as_posix() for p in found)


def compare(previous: pa.Table, current: pa.Table, previous_id: str | None) -> ReleaseChanges:
    """Counts by id (unique within a release): in one release only, in both with another
    text, in both the same. An Arrow join, so a million ids cost two columns, not dicts."""
    both = current.join(previous, keys="id", join_type="inner", right_suffix="_then")
    changed = pc.sum(pc.not_equal(both.column("text_sha256"), both.column("text_sha256_then")))
    changed_count = changed.as_py() or 0
    return ReleaseChanges(
        previous=previous_id,
        added=current.num_rows - both.num_rows,
        removed=previous.num_rows - both.num_rows,
        changed=changed_count,
        unchanged=both.num_rows - changed_count,
    )


def release_changes(
    staging: Path, previous: Path | None, previous_id: str | None, previous_parts: list[str]
) -> ReleaseChanges | None:
    """The new release (in ``staging``) against the previous one; every document is added
    when there is none. None when the previous release's parts cannot be read (a damaged
    release must not stop this one; the run's warnings say so)."""
    current = text_hashes(staging, document_parts(staging))
    if previous is None:
        return compare(current.slice(0, 0), current, None)
    try:
        before = text_hashes(previous, previous_parts)
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        logger.warning("previous release %s not compared: %s", previous_id, error)
        return None
    return compare(before, current, previous_id)


__all__ = ["compare", "document_parts", "release_changes", "text_hashes"]
