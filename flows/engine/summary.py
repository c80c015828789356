"""Counts over shards (mergeable), and the manifest built from them. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from flows.contracts import (
    DOCUMENT_SCHEMA_VERSION,
    REJECTED_SCHEMA_VERSION,
)
from flows.models import DataFile, Manifest, MetadataIssue
from flows.stages.quality import LENGTH_BINS, PRESETS, SIGNALS, bins

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
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # path, reason, detail
    files: list[str] = field(default_factory=list)
    # what could not be trusted or reused from the previous release, for the run's report
    warnings: list[str] = field(default_factory=list)
    # Fixed-bin histograms of the published documents (flows.stages.quality.bins):
    # "quality.<signal>", "length.<language>" (text_chars); merged by adding counts.
    histograms: dict[str, list[int]] = field(default_factory=dict)
    stage_reasons: Counter[str] = field(default_factory=Counter)  # "stage/reason"
    # Published documents each quality preset would reject: "<preset>" and, by the first
    # signal that fails, "<preset>/<signal>".
    would_remove: Counter[str] = field(default_factory=Counter)

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
            examples=(self.examples + other.examples)[:20],
            files=self.files + other.files,
            warnings=(self.warnings + other.warnings)[:_MAX_WARNINGS],
            histograms=merge_histograms(self.histograms, other.histograms),
            stage_reasons=self.stage_reasons + other.stage_reasons,
            would_remove=self.would_remove + other.would_remove,
        )


def merge_histograms(a: dict[str, list[int]], b: dict[str, list[int]]) -> dict[str, list[int]]:
    """Bin-wise sums (both sides use the same fixed bins)."""
    merged = {name: list(counts) for name, counts in a.items()}
    for name, counts in b.items():
        mine = merged.setdefault(name, [0] * len(counts))
        for position, count in enumerate(counts):
            mine[position] += count
    return merged


def _histogram(edges: Sequence[float], values: npt.NDArray[np.float64]) -> list[int]:
    """Counts per fixed bin; a value below the first edge counts in the first bin, a null
    (NaN) in none."""
    values = values[~np.isnan(values)]
    positions = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, None)
    return [int(n) for n in np.bincount(positions, minlength=len(edges))]


def add_quality(summary: Summary, documents: pa.Table) -> None:
    """The published documents' histograms (signals; length per language) and what each
    preset would reject, column by column: no Python object per document."""
    if documents.num_rows == 0:
        return
    chars = documents.column("text_chars").to_numpy().astype(np.float64)
    languages = documents.column("language")
    found: dict[str, list[int]] = {}
    for language in sorted(set(languages.to_pylist())):
        mask = pc.equal(languages, language).to_numpy(zero_copy_only=False)
        found[f"length.{language}"] = _histogram(LENGTH_BINS, chars[mask])
    struct = documents.column("quality").combine_chunks()
    values = {
        name: struct.field(name).to_numpy(zero_copy_only=False).astype(np.float64)
        for name in SIGNALS
    }
    for name in SIGNALS:
        found[f"quality.{name}"] = _histogram(bins(name), values[name])
    summary.histograms = merge_histograms(summary.histograms, found)
    for preset, thresholds in PRESETS.items():
        # As failure() decides one document: the first signal out of bounds, in column
        # order; a null passes (NaN compares false).
        undecided = np.ones(documents.num_rows, np.bool_)
        for name in SIGNALS:
            bound = thresholds.get(name)
            if bound is None:
                continue
            fails = np.zeros(documents.num_rows, np.bool_)
            if bound.min is not None:
                fails |= values[name] < bound.min
            if bound.max is not None:
                fails |= values[name] > bound.max
            first = int(np.count_nonzero(undecided & fails))
            if first:
                summary.would_remove[f"{preset}/{name}"] += first
            undecided &= ~fails
        removed = documents.num_rows - int(np.count_nonzero(undecided))
        if removed:
            summary.would_remove[preset] += removed


# The columns summarize() reads, per table: a copied part is read with these alone.
SUMMARY_COLUMNS = {
    "documents": (
        "source_path",
        "source_sha256",
        "language",
        "source_encoding",
        "removed",
        "text_chars",
        "quality",
    ),
    "rejected": ("source_path", "source_sha256", "source_bytes", "reason", "stage", "detail"),
}


def summarize(documents: pa.Table, rejected: pa.Table, files: Sequence[str] = ()) -> Summary:
    """Counts over one shard's tables (freshly processed and reused rows alike)."""
    summary = Summary(published=documents.num_rows, rejected=rejected.num_rows, files=list(files))
    # The quality struct is counted column by column (add_quality), not row by row.
    docs = documents.select([c for c in SUMMARY_COLUMNS["documents"] if c != "quality"])
    for row in docs.to_pylist():
        summary.languages[row["language"]] += 1
        summary.encodings[row["source_encoding"]] += 1
        for removed in row["removed"]:
            if not removed["text"].strip():
                # A blank line recorded only so that the removal can be undone exactly
                # (no-counterpart-in-translation): not a line of content removed.
                continue
            summary.rules[removed["rule"]] += 1
            summary.removed_lines[removed["text"][:200]] += 1
    for rej in rejected.select(list(SUMMARY_COLUMNS["rejected"])).to_pylist():
        summary.reasons[rej["reason"]] += 1
        summary.stages[rej["stage"]] += 1
        summary.stage_reasons[f"{rej['stage']}/{rej['reason']}"] += 1
        if len(summary.examples) < 20:
            summary.examples.append((rej["source_path"], rej["reason"], rej["detail"]))
    summary.removed_lines = Counter(dict(summary.removed_lines.most_common(_TOP_LINES)))
    add_quality(summary, documents)
    return summary


def merge_all(summaries: Iterable[Summary]) -> Summary:
    total = Summary()
    for summary in summaries:
        total = total.merge(summary)
    return total


def input_line(path: str, content: str) -> bytes:
    """One input's line of the input fingerprint: its path and its bytes hash, or
    ``size:N`` when its bytes were never read."""
    return f"{path}\0{content}\n".encode("utf-8", errors="backslashreplace")


def input_fingerprint(inputs: Iterable[tuple[str, str]]) -> str:
    """sha256 over (path, content) pairs in path order. The engine streams the same hash
    as it reads (flows.engine.unchanged) rather than keeping a list per input."""
    digest = hashlib.sha256()
    for path, content in sorted(inputs):
        digest.update(input_line(path, content))
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
    input_fingerprint: str,
) -> Manifest:
    return Manifest(
        release_id=release_id,
        created_at=created_at,
        pipeline_version=pipeline_version,
        document_schema_version=DOCUMENT_SCHEMA_VERSION,
        rejected_schema_version=REJECTED_SCHEMA_VERSION,
        input_fingerprint=input_fingerprint,
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
        histograms=dict(sorted(summary.histograms.items())),
    )
