"""List the inputs under a source folder, attach their metadata lines, keep ids unique."""

# Nothing here ever writes to the source folder, follows a symbolic link that leaves the
# source root, or opens anything but a regular file (opening a FIFO would block the run).

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.contracts import SourceDocument
from flows.errors import ConfigError, SourceError
from flows.models import MetadataIssue
from flows.source.metadata_file import (
    METADATA_FILE,
    normal_file_name,
    read_metadata,
    surrogate_field,
)
from flows.source.reading import is_inside, os_detail
from flows.stages.metadata import derive_id, validate_id
from flows.stages.types import Reason, Rejection, Stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a source folder holds: inputs to process, inputs already rejected, and notes."""

    root: str
    documents: tuple[SourceDocument, ...]
    rejected: tuple[SourceDocument, ...]  # each with ``rejection`` set
    skipped: int  # files that match no include glob (or an exclude glob)
    metadata_issues: tuple[MetadataIssue, ...] = field(default_factory=tuple)

    @property
    def inputs(self) -> int:
        return len(self.documents) + len(self.rejected)


# In a displayed path a backslash is written as two and each byte that is not UTF-8 as
# backslash-x-NN (lower-case hex). Escaping the backslash too makes the scheme reversible:
# without it a file named with the raw byte 0xE9 and one literally named caf\xe9.txt looked
# alike and, since derived ids hash the displayed path, shared an id.
_NEEDS_ESCAPE = re.compile("[\\\\\udc80-\udcff]")
_ESCAPED = re.compile(r"\\\\|\\x([0-9a-f]{2})|\\")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\x{ord(char) - 0xDC00:02x}"


def display_path(fs_relative: str) -> str:
    """The published form of a path: valid Unicode, ``\\`` → ``\\\\``, bad bytes → ``\\xNN``.

    Reversible (:func:`fs_path_bytes`), so two files never share a displayed path.
    """
    # surrogateescape turns each byte that is not UTF-8 into one of U+DC80..U+DCFF.
    text = os.fsencode(fs_relative).decode("utf-8", errors="surrogateescape")
    return _NEEDS_ESCAPE.sub(_escape, text)


def fs_path_bytes(displayed: str) -> bytes:
    """The file system bytes of a path written by :func:`display_path`; ValueError if none."""
    out = bytearray()
    position = 0
    for match in _ESCAPED.finditer(displayed):
        out += displayed[position : match.start()].encode("utf-8")
        if match.group() == "\\":
            raise ValueError(f"lone backslash at {match.start()} in {displayed!r}")
        out += b"\\" if match.group(1) is None else bytes([int(match.group(1), 16)])
        position = match.end()
    out += displayed[position:].encode("utf-8")
    return bytes(out)


def matches(relative: str, patterns: Iterable[str]) -> bool:
    """A pattern without '/' matches the file name, one with '/' the relative path."""
    name = relative.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern) for pattern in patterns
    )


def resolve_source(source: str) -> Path:
    root = Path(source)
    if not root.exists():
        raise SourceError(f"source folder {source!r} does not exist")
    if not root.is_dir():
        raise SourceError(f"source {source!r} is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SourceError(f"source folder {source!r} is not readable")
    return root.resolve()


def check_out_not_in_source(root: Path, out: str) -> None:
    out_path = Path(out).resolve()
    if out_path == root or root in out_path.parents:
        raise ConfigError(
            f"output {out!r} is inside the source folder: the next run would read its own output"
        )


@dataclass(slots=True)
class _Entry:
    fs_relative: str
    size: int
    rejection: Rejection | None = None


def _classify(root: Path, fs_relative: str, max_bytes: int) -> _Entry:
    path = os.path.join(root, fs_relative)
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if not is_inside(root, path):
                return _Entry(
                    fs_relative,
                    0,
                    Rejection(
                        Stage.DISCOVER,
                        Reason.SYMLINK_OUTSIDE_ROOT,
                        "symbolic link to a target outside the source folder; not followed",
                    ),
                )
            info = os.stat(path)
    except OSError as error:
        return _Entry(
            fs_relative, 0, Rejection(Stage.DISCOVER, Reason.UNREADABLE, os_detail(error))
        )
    if not stat.S_ISREG(info.st_mode):
        return _Entry(
            fs_relative,
            0,
            Rejection(Stage.DISCOVER, Reason.NOT_A_REGULAR_FILE, "not a regular file; not opened"),
        )
    if info.st_size > max_bytes:
        return _Entry(
            fs_relative,
            info.st_size,
            Rejection(
                Stage.DISCOVER,
                Reason.TOO_LARGE,
                f"{info.st_size} bytes > max_file_bytes {max_bytes}; not read",
            ),
        )
    return _Entry(fs_relative, info.st_size)


def _walk(
    root: Path, include: Sequence[str], exclude: Sequence[str]
) -> tuple[list[str], int, list[str], list[_Entry]]:
    """Candidate files, count of skipped files, escaping folder links, unreadable folders.

    os.walk skips a folder it cannot list unless told otherwise; every file in it would
    vanish without a trace, so each such folder becomes an ``unreadable`` rejection.
    """
    files: list[str] = []
    escaping_dirs: list[str] = []
    unreadable: list[_Entry] = []
    skipped = 0

    def on_error(error: OSError) -> None:
        where = os.path.relpath(error.filename, root) if error.filename else "."
        logger.warning("cannot list folder %s: %s", where, os_detail(error))
        unreadable.append(
            _Entry(
                where,
                0,
                Rejection(
                    Stage.DISCOVER,
                    Reason.UNREADABLE,
                    f"folder could not be listed ({os_detail(error)}); its files were not seen",
                ),
            )
        )

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        base = os.path.relpath(dirpath, root)
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                rel = name if base == "." else f"{base}/{name}"
                if not is_inside(root, full):
                    escaping_dirs.append(rel)
                else:
                    skipped += 1  # its contents are reached through the real folder
        for name in sorted(filenames):
            rel = name if base == "." else f"{base}/{name}"
            if rel == METADATA_FILE:
                continue
            if matches(rel, include) and not matches(rel, exclude):
                files.append(rel)
            else:
                skipped += 1
    return sorted(files), skipped, sorted(escaping_dirs), unreadable


def discover(
    source: str, include: Sequence[str], exclude: Sequence[str], max_file_bytes: int
) -> Discovery:
    """List every input under ``source`` and attach its metadata line, if any."""
    root = resolve_source(source)
    files, skipped, escaping_dirs, unreadable_dirs = _walk(root, include, exclude)
    entries = [_classify(root, rel, max_file_bytes) for rel in files]
    entries.extend(unreadable_dirs)
    for rel in escaping_dirs:
        entries.append(
            _Entry(
                rel,
                0,
                Rejection(
                    Stage.DISCOVER,
                    Reason.SYMLINK_OUTSIDE_ROOT,
                    "symbolic link to a folder outside the source folder; not followed",
                ),
            )
        )
    by_path = {entry.fs_relative: entry for entry in entries}
    records, issues = read_metadata(root)

    attached: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for line_no, rec in records:
        name = normal_file_name(rec.get("file_name"))
        if name is None:
            problem = "outside_root" if isinstance(rec.get("file_name"), str) else "no_file_name"
            issues.append(
                MetadataIssue(
                    line=line_no, problem=problem, detail=repr(rec.get("file_name"))[:200]
                )
            )
        elif name not in by_path:
            issues.append(
                MetadataIssue(
                    line=line_no,
                    problem="no_such_document",
                    detail=f"{name!r} is not a document under the source (missing or excluded)",
                )
            )
        else:
            attached.setdefault(name, []).append((line_no, rec))

    documents: list[SourceDocument] = []
    rejected: list[SourceDocument] = []
    for entry in sorted(entries, key=lambda e: display_path(e.fs_relative)):
        path = display_path(entry.fs_relative)
        if path == entry.fs_relative:
            path = entry.fs_relative  # one string object for both fields (~80 B an input)
        lines = attached.get(entry.fs_relative, [])
        rejection = entry.rejection
        if rejection is None and len(lines) > 1:
            numbers = ", ".join(str(n) for n, _ in lines)
            rejection = Rejection(
                Stage.DISCOVER,
                Reason.DUPLICATE_METADATA,
                f"metadata.jsonl lines {numbers} all describe this file",
            )
            issues.append(
                MetadataIssue(line=lines[1][0], problem="duplicate_file_name", detail=path)
            )
        number: int | None = None
        record: dict[str, Any] | None = None
        if len(lines) == 1:
            number, record = lines[0]
            # file_name only locates the file (a non-UTF-8 name arrives as surrogates).
            bad = surrogate_field({k: v for k, v in record.items() if k != "file_name"})
            if rejection is None and bad is not None:
                rejection = Rejection(
                    Stage.METADATA,
                    Reason.METADATA_INVALID,
                    f"metadata.jsonl line {number}: {bad}: unpaired surrogate escape, "
                    "not valid Unicode",
                )
        raw_id = record.get("id") if record else None
        if rejection is None and isinstance(raw_id, str) and number is not None:
            rejection = validate_id(raw_id, number)
        doc = SourceDocument(
            source_path=path,
            doc_id=raw_id if isinstance(raw_id, str) and raw_id else derive_id(path),
            size=entry.size,
            metadata=record,
            metadata_line=number,
            rejection=rejection,
            fs_relative=entry.fs_relative,
        )
        (rejected if rejection else documents).append(doc)

    documents, duplicates = _unique_ids(documents)
    rejected.extend(duplicates)
    rejected.sort(key=lambda d: d.source_path)
    logger.info(
        "discovered %d inputs under %s (%d to process, %d rejected, %d skipped)",
        len(documents) + len(rejected),
        root,
        len(documents),
        len(rejected),
        skipped,
    )
    return Discovery(
        str(root),
        tuple(documents),
        tuple(rejected),
        skipped,
        tuple(sorted(issues, key=lambda i: i.line)),
    )


def _unique_ids(
    documents: list[SourceDocument],
) -> tuple[list[SourceDocument], list[SourceDocument]]:
    """The first document (in path order) keeps an id; later holders are rejected.

    Ids are compared after NFKC: a full-width "doc1" (U+FF44...) and "doc1", or the "fi"
    ligature and "fi", look alike and fold together in many consumers (search indexes,
    file systems that normalise names). Not after casefolding: case-sensitive ids (base64
    keys) are common and legitimate.
    """
    holders: dict[str, SourceDocument] = {}
    kept: list[SourceDocument] = []
    duplicates: list[SourceDocument] = []
    for doc in documents:
        key = unicodedata.normalize("NFKC", doc.doc_id)
        first = holders.setdefault(key, doc)
        if first is doc:
            kept.append(doc)
            continue
        twin = "" if first.doc_id == doc.doc_id else f" as {first.doc_id!r} (equal after NFKC)"
        duplicates.append(
            SourceDocument(
                source_path=doc.source_path,
                doc_id=doc.doc_id,
                size=doc.size,
                metadata=doc.metadata,
                metadata_line=doc.metadata_line,
                rejection=Rejection(
                    Stage.DISCOVER,
                    Reason.DUPLICATE_ID,
                    f"id {doc.doc_id!r} already used by {first.source_path!r}{twin}",
                ),
                fs_relative=doc.fs_relative,
            )
        )
    return kept, duplicates
