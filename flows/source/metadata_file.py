"""Read SOURCE/metadata.jsonl and parse it into records and MetadataIssues."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

from flows.errors import SourceError
from flows.models import MetadataIssue
from flows.source.reading import is_inside, os_detail, read_bounded
from flows.stages.types import Reason, Rejection

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.jsonl"

# One parsed line: its 1-based number and its JSON object.
Record = tuple[int, dict[str, Any]]


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
        raise SourceError(f"{METADATA_FILE} cannot be read: {os_detail(error)}") from error
    if stat.S_ISLNK(info.st_mode) and not is_inside(root, str(path)):
        return MetadataIssue(
            line=1,
            problem="symlink_outside_root",
            detail=f"{METADATA_FILE} is a link leaving the source folder; not read",
        )
    data = read_bounded(str(path), None)
    if isinstance(data, Rejection):
        if data.reason == Reason.NOT_A_REGULAR_FILE:
            return MetadataIssue(line=1, problem="not_a_regular_file", detail=data.detail)
        raise SourceError(f"{METADATA_FILE} cannot be read: {data.detail}")
    return data


def read_metadata(root: Path) -> tuple[list[Record], list[MetadataIssue]]:
    """The JSON objects of ``ROOT/metadata.jsonl`` and the lines that are not one."""
    data = _read_metadata_bytes(root)
    if data is None:
        return [], []
    if isinstance(data, MetadataIssue):
        logger.warning("%s: %s", METADATA_FILE, data.detail)
        return [], [data]
    records: list[Record] = []
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


def surrogate_field(value: Any, where: str = "") -> str | None:
    """Where a JSON value holds an unpaired surrogate escape (``"\\ud800"``), if anywhere.

    JSON lets a string spell one, but it is not Unicode: no UTF-8 writer (Parquet, the
    manifest) can store it, so the record is invalid rather than a crash at publish time.
    """
    if isinstance(value, str):
        return None if _encodable(value) else (where or "(value)")
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = surrogate_field(item, f"{where}[{index}]")
            if found:
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if not _encodable(str(key)):
                return name.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            found = surrogate_field(item, name)
            if found:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normal_file_name(value: Any) -> str | None:
    """The metadata ``file_name`` as a relative path inside the root, or None if it is not."""
    if not isinstance(value, str) or not value.strip():
        return None
    path = value.strip().replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or ".." in path.split("/"):
        return None
    return "/".join(part for part in path.split("/") if part not in {"", "."})
