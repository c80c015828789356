"""Set up a run once: preflight, rules, fingerprints, discovery and shards, as a Plan.

Every way a run starts -- the Prefect flow, ``corpus validate``, ``corpus
boilerplate-report``, the tests and the benchmarks -- calls :func:`prepare`; none of them
assembles a run itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flows.contracts import SourceDocument
from flows.engine.shard import RunContext, ShardJob
from flows.models import RunParameters
from flows.output.release import ensure_output
from flows.settings import config_fingerprint, load_rules, stage_config
from flows.source.listing import Discovery, check_out_not_in_source, discover, resolve_source
from flows.stages.boilerplate import RuleSet
from flows.stages.compose import StageConfig


@dataclass(frozen=True, slots=True)
class Preflight:
    """What is checked before any work (and before a Prefect server is started)."""

    root: Path
    out: Path | None  # None: the run publishes nothing
    rules: RuleSet
    rules_digest: str


@dataclass(frozen=True, slots=True)
class Shards:
    """The shards of a run, cut as the inputs stream in (path order): iterating walks the
    source again and holds one shard's inputs at a time, never the whole list."""

    inputs: Iterable[SourceDocument]  # re-iterable, in path order (a Discovery)
    count: int  # how many inputs ``inputs`` held when counted
    size: int

    def __iter__(self) -> Iterator[ShardJob]:
        batch: list[SourceDocument] = []
        index = 0
        for doc in self.inputs:
            batch.append(doc)
            if len(batch) == self.size:
                yield ShardJob(index, tuple(batch))
                batch, index = [], index + 1
        if batch:
            yield ShardJob(index, tuple(batch))

    def __len__(self) -> int:
        return (self.count + self.size - 1) // self.size


@dataclass(frozen=True, slots=True)
class Plan:
    """One run, set up: what to read, how to process it, where it goes."""

    params: RunParameters
    root: Path
    out: Path | None
    config: StageConfig
    release_fingerprint: str  # every parameter that can change what is published
    document_fingerprint: str  # the part of it that can change one document's row
    discovery: Discovery
    shards: Shards

    @property
    def inputs(self) -> int:
        return self.shards.count


def preflight(params: RunParameters, *, publish: bool = True) -> Preflight:
    """Fail fast on a missing source, an unusable output, or a bad rule file."""
    root = resolve_source(params.source)
    out = None
    if publish:
        check_out_not_in_source(root, params.out)
        out = ensure_output(params.out)
    rules, digest = load_rules(params)
    return Preflight(root, out, rules, digest)


def plan_shards(discovery: Discovery, size: int) -> Shards:
    """Every input in path order, cut into shards of ``size`` as they are listed."""
    return Shards(discovery, discovery.inputs, size)


def prepare(
    params: RunParameters, *, publish: bool = True, checked: Preflight | None = None
) -> Plan:
    """Preflight (unless ``checked`` already holds it), then discovery and shards."""
    checked = checked or preflight(params, publish=publish)
    discovery = discover(str(checked.root), params.include, params.exclude, params.max_file_bytes)
    return Plan(
        params=params,
        root=checked.root,
        out=checked.out,
        config=stage_config(params, checked.rules),
        release_fingerprint=config_fingerprint(params, checked.rules_digest),
        document_fingerprint=config_fingerprint(params, checked.rules_digest, per_document=True),
        discovery=discovery,
        shards=plan_shards(discovery, params.shard_size),
    )


def run_context(plan: Plan, staging: Path, previous: Path | None) -> RunContext:
    """What every shard of the plan's run shares, writing into ``staging``."""
    return RunContext(
        root=str(plan.root),
        cfg=plan.config,
        staging=str(staging),
        max_file_bytes=plan.params.max_file_bytes,
        config_fingerprint=plan.document_fingerprint,
        previous=str(previous) if previous else None,
    )


__all__ = ["Plan", "Preflight", "Shards", "plan_shards", "preflight", "prepare", "run_context"]
