"""Per-shard summaries, their merge, the manifest and the dataset card. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from flows.contracts import (
    DOCUMENT_SCHEMA,
    DOCUMENT_SCHEMA_VERSION,
    REJECTED_SCHEMA,
    REJECTED_SCHEMA_VERSION,
)
from flows.models import DataFile, Manifest, MetadataIssue

# How many distinct removed lines a summary remembers (for "top boilerplate" reports).
_TOP_LINES = 200
_MAX_WARNINGS = 100


@dataclass(slots=True)
class Summary:
    """Counts over any number of shards; ``merge`` is associative."""

    published: int = 0
    rejected: int = 0
    reused: int = 0  # rows copied from the previous release (input and config unchanged)
    languages: Counter[str] = field(default_factory=Counter)
    encodings: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    removed_lines: Counter[str] = field(default_factory=Counter)
    # (source_path, sha256 or "size:N" when the bytes were never read), for the fingerprint
    inputs: list[tuple[str, str]] = field(default_factory=list)
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # path, reason, detail
    files: list[str] = field(default_factory=list)
    # what could not be trusted or reused from the previous release, for the run's report
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: Summary) -> Summary:
        return Summary(
            published=self.published + other.published,
            rejected=self.rejected + other.rejected,
            reused=self.reused + other.reused,
            languages=self.languages + other.languages,
            encodings=self.encodings + other.encodings,
            reasons=self.reasons + other.reasons,
            stages=self.stages + other.stages,
            rules=self.rules + other.rules,
            removed_lines=Counter(
                dict((self.removed_lines + other.removed_lines).most_common(_TOP_LINES))
            ),
            inputs=self.inputs + other.inputs,
            examples=(self.examples + other.examples)[:20],
            files=self.files + other.files,
            warnings=(self.warnings + other.warnings)[:_MAX_WARNINGS],
        )


# The columns summarize() reads, per table: a copied part is read with these alone.
SUMMARY_COLUMNS = {
    "documents": ("source_path", "source_sha256", "language", "source_encoding", "removed"),
    "rejected": ("source_path", "source_sha256", "source_bytes", "reason", "stage", "detail"),
}


def summarize(documents: pa.Table, rejected: pa.Table, files: Sequence[str] = ()) -> Summary:
    """Counts over one shard's tables (freshly processed and reused rows alike)."""
    summary = Summary(published=documents.num_rows, rejected=rejected.num_rows, files=list(files))
    docs = documents.select(list(SUMMARY_COLUMNS["documents"]))
    for row in docs.to_pylist():
        summary.languages[row["language"]] += 1
        summary.encodings[row["source_encoding"]] += 1
        summary.inputs.append((row["source_path"], row["source_sha256"]))
        for removed in row["removed"]:
            summary.rules[removed["rule"]] += 1
            summary.removed_lines[removed["text"][:200]] += 1
    for rej in rejected.select(list(SUMMARY_COLUMNS["rejected"])).to_pylist():
        summary.reasons[rej["reason"]] += 1
        summary.stages[rej["stage"]] += 1
        summary.inputs.append(
            (rej["source_path"], rej["source_sha256"] or f"size:{rej['source_bytes']}")
        )
        if len(summary.examples) < 20:
            summary.examples.append((rej["source_path"], rej["reason"], rej["detail"]))
    summary.removed_lines = Counter(dict(summary.removed_lines.most_common(_TOP_LINES)))
    return summary


def merge_all(summaries: Iterable[Summary]) -> Summary:
    total = Summary()
    for summary in summaries:
        total = total.merge(summary)
    return total


def input_fingerprint(inputs: Iterable[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for path, content in sorted(inputs):
        digest.update(f"{path}\0{content}\n".encode("utf-8", errors="backslashreplace"))
    return digest.hexdigest()


def build_manifest(
    release_id: str,
    created_at: dt.datetime,
    pipeline_version: str,
    summary: Summary,
    skipped: int,
    files: list[DataFile],
    metadata_issues: Sequence[MetadataIssue],
    parameters: dict[str, Any],
    config_fingerprint: str,
) -> Manifest:
    return Manifest(
        release_id=release_id,
        created_at=created_at,
        pipeline_version=pipeline_version,
        document_schema_version=DOCUMENT_SCHEMA_VERSION,
        rejected_schema_version=REJECTED_SCHEMA_VERSION,
        input_fingerprint=input_fingerprint(summary.inputs),
        config_fingerprint=config_fingerprint,
        counts={
            "inputs": summary.published + summary.rejected,
            "published": summary.published,
            "rejected": summary.rejected,
            "skipped": skipped,
            "reused": summary.reused,
            "metadata_issues": len(metadata_issues),
        },
        languages=dict(sorted(summary.languages.items())),
        rejection_reasons=dict(sorted(summary.reasons.items())),
        files=files,
        metadata_issues=list(metadata_issues),
        parameters=parameters,
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    text = str(value).replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= 120 else text[:117] + "..."


def _schema_rows(schema: Any) -> list[tuple[str, str, str]]:
    return [(f"`{f.name}`", f"`{f.type}`", "yes" if f.nullable else "no") for f in schema]


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def dataset_card(manifest: Manifest, summary: Summary) -> str:
    """The release's README.md: contents, counts, schema and how to load it."""
    counts = manifest.counts
    parts = [
        f"# Corpus release `{manifest.release_id}`",
        "",
        f"Created {manifest.created_at.isoformat()} by corpus-pipeline {manifest.pipeline_version}. "
        f"{counts['published']} of {counts['inputs']} input documents were published; "
        f"{counts['rejected']} were rejected (see `rejected/`), {counts['skipped']} files did not "
        "match the include globs.",
        "",
        "Each published document was decoded to Unicode (NFC, `\\n` line endings, no control "
        "characters), language-tagged with seeded langdetect (`und` when too short or unsure), "
        "stripped of scrape boilerplate (every removed line is kept in `removed` with the rule "
        "that removed it) and merged with validated metadata.",
        "",
        "## Documents by language",
        "",
        _table(
            ["language", "documents"],
            _by_count(manifest.languages),
        ),
        "",
        "## Rejections by reason",
        "",
        _table(
            ["reason", "inputs"],
            _by_count(manifest.rejection_reasons),
        )
        if manifest.rejection_reasons
        else "None.",
        "",
    ]
    if summary.examples:
        parts += [
            "Examples:",
            "",
            _table(["source_path", "reason", "detail"], summary.examples[:10]),
            "",
        ]
    if summary.removed_lines:
        parts += [
            "## Most frequent removed lines",
            "",
            _table(["line", "times"], summary.removed_lines.most_common(15)),
            "",
        ]
    if manifest.metadata_issues:
        parts += [
            "## metadata.jsonl lines not attached to a document",
            "",
            _table(
                ["line", "problem", "detail"],
                [(i.line, i.problem, i.detail) for i in manifest.metadata_issues[:20]],
            ),
            "",
        ]
    parts += [
        "## Files",
        "",
        _table(
            ["file", "rows", "sha256"],
            [(f.path, f.rows, f.sha256[:16] + "…") for f in manifest.files],
        ),
        "",
        f"## Schema: `documents/` (version {manifest.document_schema_version})",
        "",
        _table(["column", "type", "nullable"], _schema_rows(DOCUMENT_SCHEMA)),
        "",
        f"## Schema: `rejected/` (version {manifest.rejected_schema_version})",
        "",
        _table(["column", "type", "nullable"], _schema_rows(REJECTED_SCHEMA)),
        "",
        "## Loading",
        "",
        "```python",
        "import pyarrow.dataset as ds",
        'docs = ds.dataset("documents", format="parquet").to_table()',
        "",
        "import pandas as pd",
        'df = pd.read_parquet("documents")',
        "",
        "import duckdb",
        "duckdb.sql(\"SELECT language, count(*) FROM 'documents/*.parquet' GROUP BY 1\").show()",
        "",
        "from datasets import load_dataset",
        'corpus = load_dataset("parquet", data_files="documents/*.parquet", split="train")',
        "```",
        "",
        f"Input fingerprint `{manifest.input_fingerprint}`, configuration fingerprint "
        f"`{manifest.config_fingerprint}`: two releases with the same pair hold the same rows.",
        "",
    ]
    return "\n".join(parts)


def counts_table(summary: Summary) -> list[dict[str, object]]:
    """One row per (dimension, value): stages, rejection reasons, languages, encodings."""
    rows: list[dict[str, object]] = [
        {"dimension": "outcome", "value": "published", "count": summary.published},
        {"dimension": "outcome", "value": "rejected", "count": summary.rejected},
    ]
    for dimension, counter in (
        ("rejected at stage", summary.stages),
        ("rejection reason", summary.reasons),
        ("language", summary.languages),
        ("source encoding", summary.encodings),
        ("boilerplate rule", summary.rules),
    ):
        rows += [
            {"dimension": dimension, "value": value, "count": count}
            for value, count in _by_count(dict(counter))
        ]
    return rows


def run_report(manifest: Manifest, summary: Summary, path: str) -> str:
    """Markdown for the Prefect UI: the release, its top boilerplate, example rejections."""
    counts = manifest.counts
    parts = [
        f"# Release `{manifest.release_id}`",
        "",
        f"Published **{counts['published']}** of {counts['inputs']} inputs to `{path}`; "
        f"**{counts['rejected']}** rejected, {counts['skipped']} skipped, "
        f"{counts['metadata_issues']} metadata.jsonl lines not attached.",
        "",
        "Languages: "
        + (", ".join(f"`{k}` {v}" for k, v in _by_count(manifest.languages)) or "none"),
        "",
        "## Top removed boilerplate lines",
        "",
        _table(["line", "times"], summary.removed_lines.most_common(15))
        if summary.removed_lines
        else "None.",
        "",
        "## Examples of rejected inputs",
        "",
        _table(["source_path", "reason", "detail"], summary.examples[:10])
        if summary.examples
        else "None.",
        "",
    ]
    return "\n".join(parts)
