"""Markdown for people: the release's dataset card and the Prefect run's report. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flows.contracts import BITEXT_SCHEMA, DOCUMENT_SCHEMA, PAIRS_SCHEMA, REJECTED_SCHEMA
from flows.engine.summary import Summary
from flows.models import Manifest


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
    parts += _duplicates(manifest)
    parts += _pairs(manifest)
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


def _duplicates(manifest: Manifest) -> list[str]:
    """How duplicates were decided and how many were folded (README: Duplicates)."""
    method = manifest.dedup.get("method")
    if not method:
        return []
    if method == "off":
        return ["## Duplicates", "", "Not checked (`dedup = off`).", ""]
    counts = {r: manifest.corpus.get(r, 0) for r in ("exact_duplicate", "near_duplicate")}
    settings = [(k, v) for k, v in manifest.dedup.items() if k != "method" and v not in ([], None)]
    return [
        "## Duplicates",
        "",
        f"Method: {method}. {counts['exact_duplicate']} exact and {counts['near_duplicate']} "
        "near copies were rejected (`rejected/`, stage `dedup`, with `duplicate_of`); each "
        "published document counts the copies folded into it in `duplicates`.",
        "",
        _table(["parameter", "value"], settings),
        "",
    ]


def _pairs(manifest: Manifest) -> list[str]:
    """The translation pairs and the bitext (README: Translation pairs)."""
    if manifest.parameters.get("translation_pairs") is False:
        return ["## Translation pairs", "", "Not linked (`translation_pairs = false`).", ""]
    corpus = manifest.pairs
    return [
        "## Translation pairs",
        "",
        f"{corpus.get('translation_pairs', 0)} pairs of documents that translate each other "
        f"(`pairs/`, from {corpus.get('pair_candidates', 0)} candidates; each document is "
        "linked to at most one document per other language) and "
        f"{corpus.get('bitext_segments', 0)} aligned paragraph pairs (`bitext/`); "
        f"{corpus.get('no-counterpart-in-translation', 0)} short lines without a counterpart "
        "in their translation were removed (`removed`, rule `no-counterpart-in-translation`).",
        "",
        "```python",
        "import pandas as pd",
        'bitext = pd.read_parquet("bitext")  # id_a, id_b, language_a, text_a, language_b, text_b, score',
        "```",
        "",
        "Schema of `pairs/`:",
        "",
        _table(["column", "type", "nullable"], _schema_rows(PAIRS_SCHEMA)),
        "",
        "Schema of `bitext/`:",
        "",
        _table(["column", "type", "nullable"], _schema_rows(BITEXT_SCHEMA)),
        "",
    ]


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
