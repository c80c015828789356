"""``corpus validate``: every check of a run, nothing published, a report instead."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from flows.models import MetadataIssue, RunParameters
from flows.process import Outcome, RejectedRow, SourceDocument, StageConfig, process_many
from flows.settings import load_rules, stage_config
from flows.source.listing import discover, resolve_source
from flows.source.reading import read_input
from flows.stages.language import warm_up
from flows.stages.types import Rejection


@dataclass(slots=True)
class Report:
    inputs: int = 0
    published: int = 0
    skipped: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    metadata_issues: list[MetadataIssue] = field(default_factory=list)
    languages: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "would_publish": self.published,
            "skipped": self.skipped,
            "languages": dict(sorted(self.languages.items())),
            "rejected": [
                {
                    "source_path": r.source_path,
                    "stage": r.stage,
                    "reason": r.reason,
                    "detail": r.detail,
                }
                for r in self.rejected
            ],
            "metadata_issues": [issue.model_dump() for issue in self.metadata_issues],
        }


def check_shard(
    root: str, docs: Sequence[SourceDocument], cfg: StageConfig, max_bytes: int
) -> Outcome:
    items: list[tuple[SourceDocument, bytes | Rejection]] = [
        (doc, doc.rejection or read_input(root, doc, max_bytes)) for doc in docs
    ]
    return process_many(items, cfg)


def validate(
    params: RunParameters, executor_factory: Callable[..., Executor] | None = None
) -> Report:
    """Run discovery and every stage over all inputs, in parallel when given an executor."""
    resolve_source(params.source)
    rules, _ = load_rules(params)
    cfg = stage_config(params, rules)
    found = discover(params.source, params.include, params.exclude, params.max_file_bytes)
    inputs = sorted(found.documents + found.rejected, key=lambda d: d.source_path)
    report = Report(
        inputs=len(inputs), skipped=found.skipped, metadata_issues=list(found.metadata_issues)
    )
    size = params.shard_size
    batches = [inputs[i : i + size] for i in range(0, len(inputs), size)]
    if executor_factory is None or len(batches) <= 1:
        outcomes = [check_shard(found.root, batch, cfg, params.max_file_bytes) for batch in batches]
    else:
        with executor_factory(max_workers=params.workers or None, initializer=warm_up) as pool:
            outcomes = list(
                pool.map(
                    check_shard,
                    *zip(
                        *[(found.root, b, cfg, params.max_file_bytes) for b in batches], strict=True
                    ),
                )
            )
    for outcome in outcomes:
        report.published += len(outcome.documents)
        report.rejected.extend(outcome.rejected)
        report.languages.update(row.language for row in outcome.documents)
    return report


def render_report(report: Report) -> str:
    lines = [
        f"{report.inputs} inputs: {report.published} would be published, "
        f"{len(report.rejected)} rejected, {report.skipped} files skipped, "
        f"{len(report.metadata_issues)} metadata issues",
    ]
    if report.languages:
        lines.append(
            "languages: " + ", ".join(f"{k} {v}" for k, v in sorted(report.languages.items()))
        )
    for row in report.rejected:
        lines.append(f"REJECTED {row.source_path}: {row.stage}/{row.reason}: {row.detail}")
    for issue in report.metadata_issues:
        lines.append(f"METADATA line {issue.line}: {issue.problem}: {issue.detail}")
    return "\n".join(lines) + "\n"
