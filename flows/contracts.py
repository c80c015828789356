"""The one explicit Arrow schema of each Parquet table. Never inferred.

Bump the version when a column changes; it is recorded in the manifest and in the
Parquet file metadata so readers can tell releases apart.
"""

from __future__ import annotations

import pyarrow as pa

DOCUMENT_SCHEMA_VERSION = 2
REJECTED_SCHEMA_VERSION = 1

REMOVED_LINE = pa.struct(
    [
        pa.field("rule", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("line", pa.int32(), nullable=False),
    ]
)

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("language", pa.string(), nullable=False),
        pa.field("language_confidence", pa.float64(), nullable=False),
        pa.field("language_declared", pa.string()),
        pa.field("language_mismatch", pa.bool_(), nullable=False),
        pa.field("language_share", pa.float64()),
        pa.field("language_mixed", pa.bool_(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("source_bytes", pa.int64(), nullable=False),
        pa.field("source_encoding", pa.string(), nullable=False),
        pa.field("encoding_confidence", pa.float64(), nullable=False),
        pa.field("encoding_method", pa.string(), nullable=False),
        pa.field("encoding_low_confidence", pa.bool_(), nullable=False),
        pa.field(
            "text_repairs", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False
        ),
        pa.field("source_sha256", pa.string(), nullable=False),
        pa.field("text_sha256", pa.string(), nullable=False),
        pa.field("text_chars", pa.int64(), nullable=False),
        pa.field(
            "removed", pa.list_(pa.field("item", REMOVED_LINE, nullable=False)), nullable=False
        ),
        pa.field("url", pa.string()),
        pa.field("published", pa.timestamp("us", tz="UTC")),
        pa.field(
            "authors", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False
        ),
        pa.field("license", pa.string()),
        pa.field("source", pa.string()),
        pa.field("metadata_extra", pa.string()),
        pa.field("pipeline_version", pa.string(), nullable=False),
    ],
    metadata={"schema": "corpus.documents", "version": str(DOCUMENT_SCHEMA_VERSION)},
)

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("source_sha256", pa.string()),
        pa.field("source_bytes", pa.int64()),
        pa.field("pipeline_version", pa.string(), nullable=False),
    ],
    metadata={"schema": "corpus.rejected", "version": str(REJECTED_SCHEMA_VERSION)},
)
