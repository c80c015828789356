"""This release against the previous one: documents added, removed, changed, unchanged.

Reads only the ``id`` and ``text_sha256`` columns of both releases' ``documents`` parts
(Parquet is columnar: the texts are never read), so comparing two releases of a million
documents costs two small columns, not the corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows.contracts import DOCUMENTS_DIR
from flows.models import ReleaseChanges

logger = logging.getLogger(__name__)

_COLUMNS = ["id", "text_sha256"]


def text_hashes(release: Path, parts: Iterable[str]) -> dict[str, str]:
    """id -> text_sha256 of every published document in the given parts of ``release``."""
    found: dict[str, str] = {}
    for name in parts:
        table = pq.ParquetFile(release / name).read(columns=_COLUMNS)
        found.update(
            zip(
                table.column("id").to_pylist(), table.column("text_sha256").to_pylist(), strict=True
            )
        )
    return found


def document_parts(release: Path) -> list[str]:
    """The documents parts of a release folder (staging or published), in name order."""
    return sorted(
        p.relative_to(release).as_posix() for p in (release / DOCUMENTS_DIR).glob("*.parquet")
    )


def compare(
    previous: dict[str, str], current: dict[str, str], previous_id: str | None
) -> ReleaseChanges:
    """Counts by id: in one release only, in both with another text, in both the same."""
    both = previous.keys() & current.keys()
    changed = sum(1 for doc_id in both if previous[doc_id] != current[doc_id])
    return ReleaseChanges(
        previous=previous_id,
        added=len(current.keys() - previous.keys()),
        removed=len(previous.keys() - current.keys()),
        changed=changed,
        unchanged=len(both) - changed,
    )


def release_changes(
    staging: Path, previous: Path | None, previous_id: str | None, previous_parts: list[str]
) -> ReleaseChanges | None:
    """The new release (in ``staging``) against the previous one; every document is added
    when there is none. None when the previous release's parts cannot be read (a damaged
    release must not stop this one; the run's warnings say so)."""
    current = text_hashes(staging, document_parts(staging))
    if previous is None:
        return compare({}, current, None)
    try:
        before = text_hashes(previous, previous_parts)
    except (OSError, pa.ArrowInvalid, KeyError) as error:
        logger.warning("previous release %s not compared: %s", previous_id, error)
        return None
    return compare(before, current, previous_id)


__all__ = ["compare", "document_parts", "release_changes", "text_hashes"]
