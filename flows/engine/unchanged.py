"""Whether a run would publish what ``current`` already holds: the source fingerprint and its check.

A release records ``source_fingerprint``: one SHA-256 streamed over every input in path
order -- its path, id, size, metadata record and line, why discovery rejected it, and the
SHA-256 of its bytes (or why they could not be read) -- plus what else discovery found
(skipped files, metadata issues), the release each ``dedup_against`` folder points at, and
the code of this package.
With the configuration fingerprint (parameters, rules, pipeline and signature versions) it
covers everything a release is made from, so when both equal the current release's, a new
release would hold the same rows: the run publishes nothing.

Every input is read and hashed, not compared by size and modification time: copies made
with ``cp -p``, ``rsync -a`` or ``tar`` keep mtimes, and a same-size edit within the file
system's timestamp granularity keeps both, so a stat-based check can call a changed source
unchanged. Reading is cheap next to processing (measured in benchmarks/README.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from flows import PIPELINE_VERSION
from flows.engine.plan import Plan
from flows.engine.shard import Input, read_inputs
from flows.engine.summary import input_line
from flows.models import Manifest
from flows.output.release import CURRENT, read_manifest, sha256_file
from flows.stages.types import Rejection

logger = logging.getLogger(__name__)


class SourceFingerprint:
    """The streamed hashes: fed each shard's inputs in shard (path) order, as they are read,
    so they cost no memory per input and the published run hashes exactly the bytes it used."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256(b"source-fingerprint/1\n")
        # The manifest's input_fingerprint, streamed the same way: (path, bytes hash or
        # "size:N" when the bytes were not read), in path order.
        self._inputs = hashlib.sha256()
        # One digest per add() (per shard): a check can stop at the first changed shard.
        self.shards: list[str] = []

    def add(self, inputs: Iterable[Input]) -> None:
        shard = hashlib.sha256()
        for item in inputs:
            doc = item.doc
            found = doc.rejection
            read = item.payload if isinstance(item.payload, Rejection) else None
            line = [
                doc.source_path,
                doc.doc_id,
                doc.size,
                doc.metadata,
                doc.metadata_line,
                _rejection(found),
                item.digest,
                None if found is not None else _rejection(read),
            ]
            self._digest.update(_json(line) + b"\n")
            shard.update(_json(line) + b"\n")
            self._inputs.update(input_line(doc.source_path, item.digest or f"size:{doc.size}"))
        self.shards.append(shard.hexdigest())

    def input_fingerprint(self) -> str:
        """sha256 over every input's path and bytes hash, in path order (no list kept)."""
        return self._inputs.hexdigest()

    def hexdigest(self, plan: Plan) -> str:
        """The fingerprint, once every shard was added: closed with what discovery found
        beyond the inputs and with the releases duplicates are checked against."""
        digest = self._digest.copy()
        found = plan.discovery
        issues = [issue.model_dump(mode="json") for issue in found.metadata_issues]
        against = [_release_of(folder) for folder in plan.params.dedup_against]
        closing = {"skipped": found.skipped, "issues": issues, "against": against}
        digest.update(_json({**closing, "code": code_digest()}))
        return digest.hexdigest()


@functools.cache
def code_digest() -> str:
    """sha256 over this package's files: a release is "unchanged" only for the code that
    made it. PIPELINE_VERSION marks changes that alter rows (and makes them again); a new
    table, column or file of the release, or a fix that forgot the bump, must also publish
    once -- cheaply, since every unchanged row is reused."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _rejection(rejection: Rejection | None) -> list[str] | None:
    if rejection is None:
        return None
    return [rejection.stage.value, rejection.reason.value, rejection.detail]


def _json(value: object) -> bytes:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text.encode("utf-8", errors="backslashreplace")


def _release_of(folder: str) -> str:
    """Which release a ``dedup_against`` folder stands for (its id, or where it points)."""
    path = Path(folder)
    path = (path / CURRENT).resolve() if (path / CURRENT).exists() else path.resolve()
    manifest = read_manifest(path)
    return manifest.release_id if manifest else str(path)


def source_fingerprint(plan: Plan, recorded: Sequence[str] = ()) -> str | None:
    """Every input read and hashed once, shard by shard (what the shard pass reads). With
    ``recorded`` (a release's per-shard digests, of the same shard boundaries) it stops at
    the first shard that differs and returns None: a changed source is not read twice over."""
    fingerprint = SourceFingerprint()
    for number, job in enumerate(plan.shards):
        fingerprint.add(read_inputs(job, str(plan.root), plan.params.max_file_bytes))
        if recorded and (number >= len(recorded) or fingerprint.shards[-1] != recorded[number]):
            return None
    if recorded and len(fingerprint.shards) != len(recorded):
        return None
    return fingerprint.hexdigest(plan)


def current_manifest(out: Path) -> Manifest | None:
    """The manifest of the release ``current`` points at, if it is a complete release."""
    link = out / CURRENT
    if not link.is_symlink():
        return None
    return read_manifest(link.resolve())


def same_configuration(out: Path, release_fingerprint: str, force: bool) -> Manifest | None:
    """The current release's manifest when a run of this configuration might publish it
    again -- same configuration and code version, every file there at its recorded size --
    before anything is read from the source (cheap: no discovery)."""
    if force:
        return None
    manifest = current_manifest(out)
    if manifest is None or not manifest.source_fingerprint:
        return None
    if (
        manifest.config_fingerprint != release_fingerprint
        or manifest.pipeline_version != PIPELINE_VERSION
    ):
        return None
    release = out / CURRENT
    for file in manifest.files:
        try:
            size = (release / file.path).stat().st_size
        except OSError:
            size = -1
        if size != file.bytes:
            logger.warning(
                "current release %s: %s is missing or resized", manifest.release_id, file.path
            )
            return None
    return manifest


def unchanged_release(plan: Plan) -> Manifest | None:
    """The current release's manifest when this plan would publish the same release again;
    None when anything differs, when there is no current release, or when the parameters
    force a new release.

    The current release's files must also all hash to what its manifest recorded: a
    damaged release (flipped bytes, a truncated or deleted part) is published again, the
    damaged parts processed from the source. A manifest forged to match forged parts is
    not caught here (``force_release`` rebuilds, verifying every reused row against the
    source)."""
    if plan.out is None:
        return None
    manifest = same_configuration(plan.out, plan.release_fingerprint, plan.params.force_release)
    if manifest is None:
        return None
    same_shards = (
        len(manifest.source_shards) == len(plan.shards)
        and manifest.parameters.get("shard_size") == plan.params.shard_size
    )
    recorded = manifest.source_shards if same_shards else ()
    if source_fingerprint(plan, recorded) != manifest.source_fingerprint:
        return None
    release = plan.out / CURRENT
    for file in manifest.files:
        try:
            intact = sha256_file(release / file.path) == file.sha256
        except OSError:
            intact = False
        if not intact:
            logger.warning(
                "current release %s: %s does not match its manifest; publishing again",
                manifest.release_id,
                file.path,
            )
            return None
    return manifest


__all__ = [
    "SourceFingerprint",
    "code_digest",
    "current_manifest",
    "same_configuration",
    "source_fingerprint",
    "unchanged_release",
]
