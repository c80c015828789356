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
from flows.stages.encoding import BOMS, decode
from flows.stages.types import Reason, Rejection

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.jsonl"

# One parsed line: its 1-based number and its JSON object.
Record = tuple[int, dict[str, Any]]

# When more than half of the non-blank lines (and at least two) are not JSON objects, the
# file is not JSON Lines in a form we can read (another format, a wrong encoding, a
# wholesale corruption): publishing anyway would silently give those documents derived ids
# instead of theirs, so the run stops. One bad line (a truncated last line of an interrupted
# append) or a minority of bad lines is a local problem: listed in metadata_issues,
# `corpus validate` exits 1, the run goes on.
MAX_UNPARSED_SHARE = 0.5
MIN_UNPARSED_LINES = 2

# UTF-32 BOMs first: the UTF-32-LE BOM begins with the UTF-16-LE one.


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
    """The JSON objects of ``ROOT/metadata.jsonl`` and the lines that are not one.

    Raises SourceError when the file cannot be read or decoded, or when most of its lines
    are not JSON objects (see MAX_UNPARSED_SHARE).
    """
    data = _read_metadata_bytes(root)
    if data is None:
        return [], []
    if isinstance(data, MetadataIssue):
        logger.warning("%s: %s", METADATA_FILE, data.detail)
        return [], [data]
    return parse_metadata(decode_metadata(data))


def decode_metadata(data: bytes) -> str:
    """The text of metadata.jsonl, its encoding found like a document's; SourceError if none.

    A byte-order mark, then strict UTF-8 (not for bytes holding NUL or ESC: BOM-less
    UTF-16/32 and ISO-2022 are valid UTF-8 too), then the encoding stage's detection. The
    bytes are decoded here with the codec found, not taken from the stage's normalised
    text: normalising turns U+2028 inside a JSON string into a line break.
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as error:
                raise SourceError(
                    f"{METADATA_FILE}: starts with a {codec} byte-order mark but the bytes at "
                    f"offset {error.start + len(bom)} are not {codec}; save it as UTF-8"
                ) from error
    if b"\x00" not in data and b"\x1b" not in data:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    guess = decode(data)
    # "Mostly UTF-8" is fine for a document's text but not here: a replaced byte inside a
    # file_name or id would silently detach the record or change the id.
    if isinstance(guess, Rejection) or guess.method == "utf-8-replaced":
        why = guess.detail if isinstance(guess, Rejection) else "invalid UTF-8 bytes"
        raise SourceError(f"{METADATA_FILE} cannot be decoded ({why}); save it as UTF-8")
    try:
        text = data.decode(guess.encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise SourceError(
            f"{METADATA_FILE} cannot be decoded as {guess.encoding}; save it as UTF-8"
        ) from error
    logger.warning(
        "%s is not UTF-8; read as %s (confidence %.2f)",
        METADATA_FILE,
        guess.encoding,
        guess.confidence,
    )
    return text


def parse_metadata(text: str) -> tuple[list[Record], list[MetadataIssue]]:
    """Split JSON Lines on ``\\n`` only and parse each non-blank line.

    Not ``str.splitlines()``: it also splits on U+2028, U+2029 and U+0085, which JSON
    allows raw inside strings (``json.dumps(ensure_ascii=False)`` writes them), so one
    record would become two broken lines and its document would lose its metadata.
    """
    records: list[Record] = []
    issues: list[MetadataIssue] = []
    lines = 0
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.removesuffix("\r")
        if not line.strip():
            continue
        lines += 1
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
    if len(issues) >= MIN_UNPARSED_LINES and len(issues) > MAX_UNPARSED_SHARE * lines:
        first = issues[0]
        raise SourceError(
            f"{METADATA_FILE}: {len(issues)} of {lines} lines are not JSON objects "
            f"(first: line {first.line}: {first.detail[:120]}); fix the file or remove it"
        )
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
