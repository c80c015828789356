"""Read SOURCE/metadata.jsonl and parse it into records and MetadataIssues."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from flows.errors import SourceError
from flows.models import MetadataIssue
from flows.source.reading import TRANSIENT_ERRNOS, is_inside, os_detail, read_bounded
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
        value = _json_object(number, line)
        if isinstance(value, MetadataIssue):
            issues.append(value)
            continue
        records.append((number, value))
    _stop_if_mostly_unparsed(issues, lines)
    return records, issues


def _json_object(number: int, line: str) -> dict[str, Any] | MetadataIssue:
    """Line ``number``'s JSON object, or why it holds none."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        return MetadataIssue(line=number, problem="not_json", detail=str(error))
    if not isinstance(value, dict):
        return MetadataIssue(line=number, problem="not_an_object", detail=type(value).__name__)
    return value


def _stop_if_mostly_unparsed(unparsed: list[MetadataIssue], lines: int) -> None:
    """SourceError when most of the file's ``lines`` (and at least a few) are no JSON
    object: the file is not JSON Lines, and guessing which records survive would be worse."""
    if len(unparsed) >= MIN_UNPARSED_LINES and len(unparsed) > MAX_UNPARSED_SHARE * lines:
        first = unparsed[0]
        raise SourceError(
            f"{METADATA_FILE}: {len(unparsed)} of {lines} lines are not JSON objects "
            f"(first: line {first.line}: {first.detail[:120]}); fix the file or remove it"
        )


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


def name_hash(text: str) -> int:
    """A stable 64-bit hash of a name or id (the same in every process, unlike ``hash``)."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class MetadataIndex:
    """Where each record of ``metadata.jsonl`` is, by file name -- not the records.

    Parsing every line into a dict held for the whole run cost ~1.5 kB a record; this keeps
    32 bytes a record (name hash, line number, byte offset and length) and parses a record
    again when its document is listed. A UTF-8 file is read again from the source (one
    ``pread`` a record); a file in another encoding is kept here as UTF-8 bytes.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / METADATA_FILE
        self.issues: list[MetadataIssue] = []  # lines that are no record of a file
        self._data: bytes | None = None  # the text, when it is not the file's own bytes
        hashes, where = array("Q"), array("q")  # 8 + 24 bytes a record while reading
        if not self._read_plain(hashes, where):
            hashes, where = array("Q"), array("q")
            self.issues = []
            self._read_whole(root, hashes, where)
        keys = np.frombuffer(hashes, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")  # equal names stay in line order
        self._keys = keys[order]
        self._where = np.frombuffer(where, dtype=np.int64).reshape(-1, 3)[order]
        self.used = np.zeros(len(keys), dtype=bool)  # set by :meth:`reader` with ``mark``

    def _read_plain(self, hashes: array[int], where: array[int]) -> bool:
        """Index a plain UTF-8 file line by line, never holding it whole; False (nothing
        kept) for anything else -- a link, no regular file, a BOM, another encoding, a
        read error -- which :meth:`_read_whole` then handles as it always did."""
        try:
            if stat.S_ISLNK(os.lstat(self.path).st_mode):
                return False
            # O_NONBLOCK: a FIFO must not hang the run (it is then reported, not read).
            handle = os.fdopen(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK), "rb")
        except FileNotFoundError:
            return True  # no metadata file: nothing to index
        except OSError as error:
            if error.errno in TRANSIENT_ERRNOS:
                return False  # read whole, with read_bounded's retries
            raise SourceError(f"{METADATA_FILE} cannot be read: {os_detail(error)}") from error
        with handle:
            try:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return False
                head = handle.read(4)
                if any(head.startswith(bom) for bom, _ in BOMS):
                    return False
                handle.seek(0)
                self._add(_records(handle, self.issues, plain=True), hashes, where)
            except (_NotPlain, OSError):
                return False
        return True

    def _read_whole(self, root: Path, hashes: array[int], where: array[int]) -> None:
        """Read, check and decode the file whole (a link, a BOM, another encoding)."""
        data = _read_metadata_bytes(root)
        if isinstance(data, MetadataIssue):
            logger.warning("%s: %s", METADATA_FILE, data.detail)
            self.issues.append(data)
            return
        if data is None:
            return
        text = decode_metadata(data)
        encoded = text.encode("utf-8", "surrogatepass")
        del text
        if encoded != data:  # a BOM or another encoding: kept, as UTF-8
            self._data = encoded
        del data
        self._add(_records(io.BytesIO(encoded), self.issues, plain=False), hashes, where)

    def _add(
        self,
        records: Iterable[tuple[int, int, int, dict[str, Any]]],
        hashes: array[int],
        where: array[int],
    ) -> None:
        for number, offset, length, record in records:
            name = normal_file_name(record.get("file_name"))
            if name is None:
                value = record.get("file_name")
                problem = "outside_root" if isinstance(value, str) else "no_file_name"
                detail = repr(value)[:200]
                self.issues.append(MetadataIssue(line=number, problem=problem, detail=detail))
                continue
            hashes.append(name_hash(name))
            where.extend((number, offset, length))

    def __len__(self) -> int:
        return len(self._keys)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Callable[[str, bool], list[Record]]]:
        """``lookup(name, mark)``: the records naming ``name``, in line order (``mark``: note
        them as used, for :meth:`unused`). The file is open while the context lasts."""
        if not len(self._keys):
            yield lambda name, mark: []
            return
        keys = self._keys
        with contextlib.ExitStack() as stack:
            line = self._lines(stack)

            def lookup(name: str, mark: bool) -> list[Record]:
                key = np.uint64(name_hash(name))
                low = int(keys.searchsorted(key))
                found: list[Record] = []
                if low == len(keys) or keys[low] != key:
                    return found  # most inputs: no line names them
                high = int(keys.searchsorted(key, side="right"))
                for k in range(low, high):
                    number, offset, length = (int(v) for v in self._where[k])
                    record = _again(line(offset, length), number)
                    if normal_file_name(record.get("file_name")) != name:
                        continue  # another name with the same 64-bit hash
                    if mark:
                        self.used[k] = True
                    found.append((number, record))
                return found

            yield lookup

    def unused(self) -> Iterator[Record]:
        """The records :meth:`reader` never found for a listed input, in line order."""
        rows = sorted(np.flatnonzero(~self.used).tolist(), key=lambda k: int(self._where[k][0]))
        if not rows:
            return
        with contextlib.ExitStack() as stack:
            line = self._lines(stack)
            for k in rows:
                number, offset, length = (int(v) for v in self._where[k])
                yield number, _again(line(offset, length), number)

    def _lines(self, stack: contextlib.ExitStack) -> Callable[[int, int], bytes]:
        """Read a line's bytes by offset and length (the file stays open in ``stack``)."""
        data = self._data
        if data is not None:
            return lambda offset, length: data[offset : offset + length]
        handle = stack.enter_context(self.path.open("rb"))
        return lambda offset, length: os.pread(handle.fileno(), length, offset)


class _NotPlain(Exception):
    """metadata.jsonl is not plain UTF-8: it is read whole and decoded instead."""


def _records(
    lines: Iterable[bytes], issues: list[MetadataIssue], *, plain: bool
) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    """Each JSON object line of UTF-8 ``lines`` (each ending in ``\n`` but perhaps the
    last): (line number, byte offset, length, record), split as :func:`parse_metadata`
    splits (``\n`` only); its other lines go to ``issues``. With ``plain``, _NotPlain at a
    byte that :func:`decode_metadata` would not read as UTF-8. Raises SourceError as
    parse_metadata does when most lines are not JSON objects."""
    lines_seen = 0
    unparsed: list[MetadataIssue] = []  # of the issues, the lines that are no JSON object
    offset = 0
    for number, raw in enumerate(lines, start=1):
        start, offset = offset, offset + len(raw)
        body = raw.removesuffix(b"\n")
        if plain and (b"\x00" in body or b"\x1b" in body):
            raise _NotPlain
        try:
            line = body.decode("utf-8", "strict" if plain else "surrogatepass")
        except UnicodeDecodeError as error:
            raise _NotPlain from error
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        lines_seen += 1
        value = _json_object(number, line)
        if isinstance(value, MetadataIssue):
            unparsed.append(value)
            issues.append(value)
            continue
        yield number, start, len(body), value
    _stop_if_mostly_unparsed(unparsed, lines_seen)


def _again(raw: bytes, number: int) -> dict[str, Any]:
    """A record read again; SourceError when the file changed under the run."""
    try:
        value = json.loads(raw.decode("utf-8", "surrogatepass").removesuffix("\r"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SourceError(f"{METADATA_FILE} changed during the run (line {number})") from error
    if not isinstance(value, dict):
        raise SourceError(f"{METADATA_FILE} changed during the run (line {number})")
    return value
