"""``corpus validate``: a run of the engine that publishes nothing, and its report."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from flows.contracts import REJECTED_DIR, REJECTED_SCHEMA, RejectedRow
from flows.engine.plan import prepare
from flows.engine.run import Runner, execute
from flows.models import MetadataIssue, RunParameters


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


def validate(params: RunParameters, runner: Runner) -> Report:
    """Every check of a run -- discovery, the stages, the corpus step -- with nothing
    published: the shards are written to a scratch folder, read back, and removed."""
    plan = prepare(params, publish=False)
    with tempfile.TemporaryDirectory(prefix="corpus-validate-") as scratch:
        result = execute(plan, runner, scratch=Path(scratch))
        rejected = _rejected_rows(Path(scratch))
    summary = result.summary
    return Report(
        inputs=plan.inputs,
        published=summary.published,
        skipped=plan.discovery.skipped,
        rejected=rejected,
        metadata_issues=list(plan.discovery.metadata_issues),
        languages=Counter(summary.languages),
    )


def _rejected_rows(folder: Path) -> list[RejectedRow]:
    rows = []
    for path in sorted((folder / REJECTED_DIR).glob("part-*.parquet")):
        table = pq.ParquetFile(path).read(columns=REJECTED_SCHEMA.names)
        rows += [RejectedRow(**row) for row in table.to_pylist()]
    return sorted(rows, key=lambda r: r.source_path)


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
