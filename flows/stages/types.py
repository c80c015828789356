"""Values shared by every stage: the rejection record and its stable reason codes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """Where in the pipeline an input was stopped."""

    DISCOVER = "discover"
    ENCODING = "encoding"
    LANGUAGE = "language"
    BOILERPLATE = "boilerplate"
    METADATA = "metadata"
    DEDUP = "dedup"
    PIPELINE = "pipeline"


class Reason(StrEnum):
    """Stable rejection codes. Values are part of the published schema: never rename one."""

    # discover: decided from the directory entry and metadata.jsonl, before the bytes are decoded
    SYMLINK_OUTSIDE_ROOT = "symlink_outside_root"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"
    DUPLICATE_ID = "duplicate_id"
    DUPLICATE_METADATA = "duplicate_metadata"
    # encoding
    EMPTY = "empty"
    BINARY = "binary"
    UNDECODABLE = "undecodable"
    LOW_ENCODING_CONFIDENCE = "low_encoding_confidence"
    # language
    LANGUAGE_MISMATCH = "language_mismatch"
    LANGUAGE_NOT_ALLOWED = "language_not_allowed"
    # boilerplate
    ONLY_BOILERPLATE = "only_boilerplate"
    # metadata
    METADATA_INVALID = "metadata_invalid"
    # dedup: decided by the corpus step across documents
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    # pipeline: a bug met one document; the rest of its shard goes on
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one input was not published. ``detail`` is for humans, ``reason`` for machines."""

    stage: Stage
    reason: Reason
    detail: str
