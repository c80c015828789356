"""Shared fixtures. Unit tests call stage functions directly; only the end-to-end tests
start Prefect (one session-scoped test harness)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.models import RunParameters
from flows.settings import load_rules, stage_config
from flows.stages.compose import StageConfig

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED_BENCHMARKS = REPO.parent / "shared" / "benchmarks"


@pytest.fixture(scope="session")
def default_config() -> StageConfig:
    params = RunParameters()
    rules, _ = load_rules(params)
    return stage_config(params, rules)


@pytest.fixture
def seed_source(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(SEEDS, source)
    return source


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    # Imported here: only the end-to-end tests pay for Prefect's import and server.
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
