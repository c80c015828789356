"""Markdown for people: the release's dataset card and the Prefect run's report. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from flows.contracts import (
    BITEXT_SCHEMA,
    DOCUMENT_SCHEMA,
    DOCUMENTS_DIR,
    FACTS_DIR,
    INDEX_DIR,
    PAIRS_SCHEMA,
    REJECTED_SCHEMA,
    SHARDS_DIR,
    published_tables,
)
from flows.engine.summary import Summary
from flows.hub import front_matter
from flows.models import Manifest
from flows.stages.language import primary_subtag
from flows.stages.quality import MEANINGS, PRESETS, SIGNALS, anchors


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


def release_tables(manifest: Manifest) -> dict[str, pa.Schema]:
    """The published tables this release has files of (top-level folders), by folder."""
    present = {f.path.split("/")[0] for f in manifest.files if f.path.count("/") == 1}
    return {name: schema for name, schema in published_tables().items() if name in present}


def hub_languages(manifest: Manifest) -> list[str]:
    """The documents' languages as Hub codes (primary subtags, no ``und``), most first."""
    codes: dict[str, int] = {}
    for tag, count in manifest.languages.items():
        code = primary_subtag(tag)
        if code and code != "und" and count:
            codes[code] = codes.get(code, 0) + count
    return [code for code, _ in _by_count(codes)]


def dataset_card(
    manifest: Manifest,
    summary: Summary,
    licenses: Mapping[str | None, int] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> str:
    """The release's README.md: Hub metadata, contents, counts, schema and how to load it.
    ``licenses``: published documents per ``license`` value (None: not declared);
    ``sizes``: each published table's uncompressed bytes."""
    counts = manifest.counts
    tables = release_tables(manifest)
    parts = [
        front_matter(manifest, tables, hub_languages(manifest), licenses or {}, sizes),
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
    parts += quality_section()
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
    parts += _layout(manifest, tables, licenses or {})
    parts += [
        "## Files",
        "",
        _table(
            ["file", "rows", "sha256"],
            [
                (f.path, f.rows, f.sha256[:16] + "…")
                for f in manifest.files
                if f.path.count("/") == 1
            ],
        ),
        "",
        f"{sum(1 for f in manifest.files if f.path.startswith(SHARDS_DIR + '/'))} internal "
        f"parts under `{SHARDS_DIR}/` are listed, with their checksums, in `manifest.json`.",
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
        'corpus = load_dataset(".", split="train")  # the documents config (the default)',
        'rejected = load_dataset(".", "rejected", split="train")',
        "",
        "import mlcroissant as mlc",
        'records = mlc.Dataset(jsonld="croissant.json").records("documents")',
        "```",
        "",
        f"Input fingerprint `{manifest.input_fingerprint}`, configuration fingerprint "
        f"`{manifest.config_fingerprint}`: two releases with the same pair hold the same rows.",
        "",
    ]
    return "\n".join(parts)


def _layout(
    manifest: Manifest, tables: Mapping[str, pa.Schema], licenses: Mapping[str | None, int]
) -> list[str]:
    """What the folders are: the published tables (the Hub configs) and the internal ones."""
    counts = dict.fromkeys(tables, 0)
    for file in manifest.files:
        folder, _, rest = file.path.partition("/")
        if folder in counts and "/" not in rest:
            counts[folder] += file.rows
    rows = [
        (f"`{name}/`", f"`{name}`" + (" (default)" if name == DOCUMENTS_DIR else ""), counts[name])
        for name in tables
    ]
    parts = [
        "## Tables",
        "",
        "Each published table is a folder of Parquet files and a config of this dataset "
        "(`load_dataset(<this folder>, <config>)`); `croissant.json` describes the same "
        "tables, fields and file checksums in MLCommons Croissant 1.0.",
        "",
        _table(["folder", "config", "rows"], rows),
        "",
        "Files are about the run's `target_file_bytes` each; rows are sorted by "
        "`source_path` within each file and files follow that order (declared as the files' "
        "sorting columns), in row groups of about 64 MB uncompressed, with page indexes, a "
        "Bloom filter on `id` and content-defined pages (unchanged rows encode to the same "
        "pages in the next release).",
        "",
        f"`{SHARDS_DIR}/` is internal: the pipeline's own per-shard parts of every table "
        "(the same rows, in small files), which the next run reuses and copies, plus "
        f"`{SHARDS_DIR}/{INDEX_DIR}/` (each input's processing key and where its row is) and "
        f"`{SHARDS_DIR}/{FACTS_DIR}/` (per-document hashes and MinHash signatures for "
        "duplicate detection). They are not part of any config; read the tables above.",
        "",
    ]
    if licenses:
        parts += [
            "## Licenses",
            "",
            _table(
                ["license (metadata)", "documents"],
                _by_count({k or "(not declared)": v for k, v in licenses.items()}),
            ),
            "",
        ]
    return parts


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
    parts += _quality_report(manifest, summary, path)
    return "\n".join(parts)


def _quality_report(manifest: Manifest, summary: Summary, path: str) -> list[str]:
    """Key figures, the diff against the previous release and what each quality preset
    would remove; the plots are in the release's report.html."""
    changes = manifest.changes
    parts = ["## Against the previous release", ""]
    if changes is None:
        parts += ["Not compared: the previous release could not be read.", ""]
    else:
        parts += [
            f"Previous release: `{changes.previous}`." if changes.previous else "First release.",
            "",
            _table(
                ["added", "removed", "changed", "unchanged"],
                [(changes.added, changes.removed, changes.changed, changes.unchanged)],
            ),
            "",
        ]
    published = summary.published
    rows = [
        (
            preset,
            summary.would_remove.get(preset, 0),
            f"{100 * summary.would_remove.get(preset, 0) / published:.1f} %" if published else "–",
            ", ".join(
                f"{key.split('/', 1)[1]} {n}"
                for key, n in summary.would_remove.most_common()
                if key.startswith(f"{preset}/")
            )
            or "–",
        )
        for preset in PRESETS
    ]
    parts += [
        "## Quality filters",
        "",
        f"Filters: `{manifest.parameters.get('quality_filters', 'off')}`; "
        f"rejected at stage quality: {summary.stages.get('quality', 0)}. "
        "What each preset would remove from the published documents:",
        "",
        _table(["preset", "documents", "share", "first failing signal"], rows),
        "",
        f"Plots and the full diff: `{path}/report.html`.",
        "",
    ]
    return parts


def quality_section() -> list[str]:
    """The dataset card's table of the ``quality`` column's fields (README: Quality signals)."""
    return [
        "## Quality signals",
        "",
        "Column `quality` holds these signals of `text` (Gopher, C4 and FineWeb rules as "
        "datatrove implements them). Texts mostly in scripts without spaces (Han, kana, Thai, "
        "Lao, Khmer, Myanmar, Tibetan) are measured per character (`segmentation` = "
        "`characters`). Thresholds are the presets' anchors; `quality_filters` applies one.",
        "",
        _table(
            ["field", "meaning", "anchor thresholds"],
            [(f"`{name}`", MEANINGS[name], anchors(name)) for name in SIGNALS],
        ),
        "",
    ]
