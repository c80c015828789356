"""Validate supplied metadata and derive the fields every row has."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from flows.models import BIDI_CONTROLS, DocumentId, DocumentMetadata
from flows.stages.maincontent import ends_sentence
from flows.stages.types import Reason, Rejection, Stage

# A first line is a title when it is short, has no sentence-final punctuation and more
# text follows; a long quote or a sentence opening the article is not one.
_TITLE_MAX_CHARS = 200
_TITLE_MAX_WORDS = 25
_SENTENCE_END = (".", "!", "?", "…", ":", ";", ",", "。", "！", "？", ")", '"', "”", "»", "'")

# json.dumps escapes C0 controls but writes DEL, C1 controls, bidi controls and the Unicode
# line separators raw; escaped as \uXXXX they cannot reach a terminal or a JSON Lines
# reader, and json.loads gives back the very same values.
_RAW_IN_JSON = re.compile(f"[\x7f-\x9f\u2028\u2029{BIDI_CONTROLS}]")
_ID = TypeAdapter(DocumentId)


@dataclass(frozen=True, slots=True)
class ValidMetadata:
    """Validated metadata plus unknown fields (kept as a sorted JSON object)."""

    model: DocumentMetadata
    extra_json: str | None


def derive_id(source_path: str) -> str:
    """A stable id from the path: the same file gets the same id in every run."""
    return "doc-" + hashlib.sha256(source_path.encode("utf-8")).hexdigest()[:20]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _format_error(error: ValidationError, prefix: str = "") -> str:
    parts = []
    for item in error.errors(include_url=False):
        loc = [prefix, *map(str, item["loc"])] if prefix else [str(p) for p in item["loc"]]
        where = ".".join(loc) or "(record)"
        parts.append(f"{where}: {item['msg']} (got {item.get('input')!r:.80})")
    return "; ".join(parts)


def validate_metadata(
    raw: Mapping[str, Any], line: int, unknown: str = "keep"
) -> ValidMetadata | Rejection:
    """Validate one metadata.jsonl object; a rejection names the field and the reason."""
    try:
        model = DocumentMetadata.model_validate(raw)
    except ValidationError as error:
        return Rejection(
            Stage.METADATA,
            Reason.METADATA_INVALID,
            f"metadata.jsonl line {line}: {_format_error(error)}",
        )
    extra = dict(sorted((model.model_extra or {}).items()))
    if extra and unknown == "reject":
        return Rejection(
            Stage.METADATA,
            Reason.METADATA_INVALID,
            f"metadata.jsonl line {line}: unknown fields {', '.join(extra)}",
        )
    extra_json = (
        _RAW_IN_JSON.sub(
            lambda match: f"\\u{ord(match.group()):04x}",
            json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str),
        )
        if extra
        else None
    )
    return ValidMetadata(model, extra_json)


def validate_id(value: str, line: int) -> Rejection | None:
    """Why a metadata ``id`` is invalid (the same rule as the model's), or None.

    Discovery checks ids before it decides which document keeps an id: an id the metadata
    stage would reject later must not push a valid twin out as ``duplicate_id``.
    """
    try:
        _ID.validate_python(value)
    except ValidationError as error:
        return Rejection(
            Stage.METADATA,
            Reason.METADATA_INVALID,
            f"metadata.jsonl line {line}: {_format_error(error, 'id')}",
        )
    return None


def derive_title(text: str) -> str | None:
    """The first line, when it reads as a headline rather than as a sentence."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return None
    first = lines[0]
    if (
        len(first) > _TITLE_MAX_CHARS
        or len(first.split()) > _TITLE_MAX_WORDS
        or first.endswith(_SENTENCE_END)
        or ends_sentence(first)  # the sentence marks of every script (danda, Urdu stop, ...)
        or not any(ch.isalpha() for ch in first)
    ):
        return None
    return first


def published_utc(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    """Dates become midnight UTC; aware date-times are converted to UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
