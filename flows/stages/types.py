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
    QUALITY = "quality"
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
    # quality: the signal (flows/stages/quality.py) outside the filter's bounds
    WORD_COUNT = "word_count"
    MEAN_WORD_LENGTH = "mean_word_length"
    SYMBOL_WORD_RATIO = "symbol_word_ratio"
    ALPHA_WORDS = "alpha_words"
    PUNCT_LINES = "punct_lines"
    SHORT_LINES = "short_lines"
    BULLET_LINES = "bullet_lines"
    ELLIPSIS_LINES = "ellipsis_lines"
    DUP_LINES = "dup_lines"
    DUP_PARAGRAPHS = "dup_paragraphs"
    DUP_LINE_CHARS = "dup_line_chars"
    DUP_PARAGRAPH_CHARS = "dup_paragraph_chars"
    TOP_2GRAM_CHARS = "top_2gram_chars"
    TOP_3GRAM_CHARS = "top_3gram_chars"
    TOP_4GRAM_CHARS = "top_4gram_chars"
    NEWLINE_WORD_RATIO = "newline_word_ratio"
    C4_SENTENCES = "c4_sentences"
    CURLY_BRACKET = "curly_bracket"
    LOREM_IPSUM = "lorem_ipsum"
    # pipeline: a bug met one document; the rest of its shard goes on
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one input was not published. ``detail`` is for humans, ``reason`` for machines."""

    stage: Stage
    reason: Reason
    detail: str
