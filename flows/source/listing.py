"""List the inputs under a source folder, attach their metadata lines, keep ids unique."""

# Nothing here ever writes to the source folder, follows a symbolic link that leaves the
# source root, or opens anything but a regular file (opening a FIFO would block the run).

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import re
import stat
import tempfile
import unicodedata
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flows.contracts import SourceDocument
from flows.errors import ConfigError, SourceError
from flows.models import MetadataIssue
from flows.source.metadata_file import (
    METADATA_FILE,
    MetadataIndex,
    Record,
    name_hash,
    normal_file_name,
    surrogate_field,
)
from flows.source.reading import is_inside, os_detail
from flows.stages.metadata import derive_id, validate_id
from flows.stages.types import Reason, Rejection, Stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a source folder holds: counts and notes, and its inputs streamed in path order.

    Nothing is kept in memory per input: the walk's entries (path, size, why rejected) wait
    in a temporary file, and iterating yields each as a :class:`SourceDocument` with its
    metadata record read again (``rejection`` set when discovery rejects it), so a run's
    memory does not grow with the number of inputs. Every iteration yields the inputs the
    one walk found, as a list held in memory did: a file changed after it is caught when
    it is read.
    """

    root: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    max_file_bytes: int
    inputs: int  # every input (to process or rejected)
    rejected_count: int  # of which rejected by discovery
    skipped: int  # files that match no include glob (or an exclude glob)
    metadata_issues: tuple[MetadataIssue, ...]
    metadata: MetadataIndex = field(repr=False, compare=False)
    listing: Listing = field(repr=False, compare=False)
    # NFKC id keys (their name_hash) that more than one document holds: only these are
    # remembered while streaming, to reject every holder after the first.
    contested: frozenset[int] = field(repr=False, default=frozenset())

    def __iter__(self) -> Iterator[SourceDocument]:
        """Every input in path order; a later holder of an id is rejected as a duplicate."""
        holders: dict[str, SourceDocument] = {}
        with self.metadata.reader() as lookup:
            for doc in _documents(self.listing, lookup, None):
                if doc.rejection is None and self.contested:
                    key = unicodedata.normalize("NFKC", doc.doc_id)
                    if name_hash(key) in self.contested:
                        first = holders.setdefault(key, doc)
                        if first is not doc:
                            yield _duplicate(doc, first)
                            continue
                yield doc

    @property
    def documents(self) -> tuple[SourceDocument, ...]:
        """The inputs to process (every one in memory: for small folders and tests)."""
        return tuple(doc for doc in self if doc.rejection is None)

    @property
    def rejected(self) -> tuple[SourceDocument, ...]:
        """The inputs discovery rejected, each with ``rejection`` set."""
        return tuple(doc for doc in self if doc.rejection is not None)


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
    root: Path, include: Sequence[str], exclude: Sequence[str], skipped: list[int]
) -> Iterator[_Entry]:
    """Candidate files, escaping folder links and unreadable folders, in the order of their
    displayed paths, folder by folder (nothing kept beyond the folder being listed);
    ``skipped[0]`` counts the files left out.

    A folder's entries are visited sorted by displayed name, a subfolder's contents at
    ``name + "/"``: the order of the full displayed paths. Whether a subfolder can be
    listed is tried at its own name, where its ``unreadable`` rejection sorts (before
    ``name-x.txt``, whose contents come after it). os.walk skips a folder it cannot list;
    every file in it would vanish without a trace, so each such folder is a rejection.
    """
    yield from _folder(root, "", include, exclude, skipped)


def _unlistable(root: Path, rel: str, error: OSError) -> _Entry:
    logger.warning("cannot list folder %s: %s", rel or ".", os_detail(error))
    return _Entry(
        rel or ".",
        0,
        Rejection(
            Stage.DISCOVER,
            Reason.UNREADABLE,
            f"folder could not be listed ({os_detail(error)}); its files were not seen",
        ),
    )


def _folder(
    root: Path, base: str, include: Sequence[str], exclude: Sequence[str], skipped: list[int]
) -> Iterator[_Entry]:
    here = os.path.join(root, base) if base else str(root)
    try:
        with os.scandir(here) as listing:
            found = list(listing)
    except OSError as error:
        yield _unlistable(root, base, error)
        return
    # (sort key, what to do, relative path): "file", "escaping" (a link to a folder
    # outside), "probe" (can the folder be listed?) and "descend".
    events: list[tuple[str, str, str]] = []
    for entry in found:
        rel = f"{base}/{entry.name}" if base else entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        key = display_path(entry.name)
        if is_dir:
            if entry.is_symlink():
                if not is_inside(root, entry.path):
                    events.append((key, "escaping", rel))
                else:
                    skipped[0] += 1  # its contents are reached through the real folder
                continue
            events.append((key, "probe", rel))
            events.append((key + "/", "descend", rel))
        elif rel == METADATA_FILE:
            continue
        elif matches(rel, include) and not matches(rel, exclude):
            events.append((key, "file", rel))
        else:
            skipped[0] += 1
    del found
    events.sort()
    unlistable: set[str] = set()
    for _, what, rel in events:
        if what == "file":
            yield _Entry(rel, 0)
        elif what == "escaping":
            yield _Entry(
                rel,
                0,
                Rejection(
                    Stage.DISCOVER,
                    Reason.SYMLINK_OUTSIDE_ROOT,
                    "symbolic link to a folder outside the source folder; not followed",
                ),
            )
        elif what == "probe":
            try:
                os.scandir(os.path.join(root, rel)).close()
            except OSError as error:
                unlistable.add(rel)
                yield _unlistable(root, rel, error)
        elif rel not in unlistable:
            yield from _folder(root, rel, include, exclude, skipped)


def discover(
    source: str, include: Sequence[str], exclude: Sequence[str], max_file_bytes: int
) -> Discovery:
    """Walk ``source`` once: count its inputs, check ``metadata.jsonl`` against them, and
    find the ids held twice. The inputs themselves are streamed by iterating the result."""
    root = resolve_source(source)
    metadata = MetadataIndex(root)
    listing = Listing()
    issues = list(metadata.issues)
    inputs = rejected = 0
    keys = array("Q")  # the name_hash of each document's NFKC id (8 bytes an input, freed)
    skipped = [0]
    with metadata.reader() as lookup, listing.writing() as add:
        for entry in _walk(root, include, exclude, skipped):
            if entry.rejection is None:
                entry = _classify(root, entry.fs_relative, max_file_bytes)  # noqa: PLW2901
            add(entry)
            doc = _document(entry, lookup(entry.fs_relative, True), issues)
            inputs += 1
            if doc.rejection is not None:
                rejected += 1
            else:
                keys.append(name_hash(unicodedata.normalize("NFKC", doc.doc_id)))
    for number, record in metadata.unused():
        name = normal_file_name(record.get("file_name"))
        issues.append(
            MetadataIssue(
                line=number,
                problem="no_such_document",
                detail=f"{name!r} is not a document under the source (missing or excluded)",
            )
        )
    values, counts = np.unique(np.frombuffer(keys, dtype=np.uint64), return_counts=True)
    del keys
    contested = frozenset(values[counts > 1].tolist())
    rejected += int((counts[counts > 1] - 1).sum())
    found = Discovery(
        str(root),
        tuple(include),
        tuple(exclude),
        max_file_bytes,
        inputs=inputs,
        rejected_count=rejected,
        skipped=skipped[0],
        metadata_issues=tuple(sorted(issues, key=lambda i: i.line)),
        metadata=metadata,
        listing=listing,
        contested=contested,
    )
    logger.info(
        "discovered %d inputs under %s (%d to process, %d rejected, %d skipped)",
        inputs,
        root,
        inputs - rejected,
        rejected,
        skipped[0],
    )
    return found


def _documents(
    listing: Iterable[_Entry],
    lookup: Callable[[str, bool], list[Record]],
    issues: list[MetadataIssue] | None,
) -> Iterator[SourceDocument]:
    """Each listed input in path order with its metadata line, before ids are checked
    for uniqueness."""
    for entry in listing:
        yield _document(entry, lookup(entry.fs_relative, False), issues)


class Listing:
    """The entries one walk found, in path order, in a temporary file rather than memory
    (~60 bytes an input on disk). Removed when the last reference to it goes; a copy
    (a pickled plan) reads it but never removes it."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="corpus-listing-", suffix=".jsonl")
        os.close(fd)
        # Removed when the listing is collected, or at the latest when the process exits.
        weakref.finalize(self, _remove, self.path)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Callable[[_Entry], None]]:
        """``add(entry)``, in path order; the file is complete when the context ends."""
        with open(self.path, "w", encoding="ascii") as handle:

            def add(entry: _Entry) -> None:
                # JSON keeps a name's surrogate escapes (bytes that are not UTF-8) and
                # new lines; ensure_ascii writes them as \\u escapes.
                found = entry.rejection
                row: list[object] = [entry.fs_relative, entry.size]
                if found is not None:
                    row += [found.stage.value, found.reason.value, found.detail]
                handle.write(json.dumps(row) + "\n")

            yield add

    def __iter__(self) -> Iterator[_Entry]:
        with open(self.path, encoding="ascii") as handle:
            for line in handle:
                row = json.loads(line)
                rejection = (
                    Rejection(Stage(row[2]), Reason(row[3]), row[4]) if len(row) > 2 else None
                )
                yield _Entry(row[0], row[1], rejection)

    def __getstate__(self) -> dict[str, object]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.path = str(state["path"])  # a copy: reads the file, never removes it


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _document(
    entry: _Entry, lines: list[Record], issues: list[MetadataIssue] | None
) -> SourceDocument:
    """One input with its metadata record (if exactly one line names it) and the rejection
    its entry, its metadata lines or its id earn."""
    path = display_path(entry.fs_relative)
    if path == entry.fs_relative:
        path = entry.fs_relative  # one string object for both fields (~80 B an input)
    rejection = entry.rejection
    if rejection is None and len(lines) > 1:
        numbers = ", ".join(str(n) for n, _ in lines)
        rejection = Rejection(
            Stage.DISCOVER,
            Reason.DUPLICATE_METADATA,
            f"metadata.jsonl lines {numbers} all describe this file",
        )
        if issues is not None:
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
    return SourceDocument(
        source_path=path,
        doc_id=raw_id if isinstance(raw_id, str) and raw_id else derive_id(path),
        size=entry.size,
        metadata=record,
        metadata_line=number,
        rejection=rejection,
        fs_relative=entry.fs_relative,
    )


def _duplicate(doc: SourceDocument, first: SourceDocument) -> SourceDocument:
    """``doc`` rejected: ``first`` (earlier in path order) holds its id.

    Ids are compared after NFKC: a full-width "doc1" (U+FF44...) and "doc1", or the "fi"
    ligature and "fi", look alike and fold together in many consumers (search indexes,
    file systems that normalise names). Not after casefolding: case-sensitive ids (base64
    keys) are common and legitimate.
    """
    twin = "" if first.doc_id == doc.doc_id else f" as {first.doc_id!r} (equal after NFKC)"
    return SourceDocument(
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
