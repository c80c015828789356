"""The engine's own shard workers (flows.engine.pool): what ``corpus run`` starts first."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.engine.pool import local_pool, start_local_pool, stop_local_pool
from tests.conftest import run_release


def _imported_prefect() -> bool:
    return "prefect" in sys.modules


def _warn(message: str) -> int:
    logging.getLogger("flows.engine.shard").warning(message)
    return os.getpid()


@pytest.fixture
def pool() -> Iterator[None]:
    start_local_pool(2)
    try:
        yield
    finally:
        stop_local_pool()


@pytest.mark.usefixtures("pool")
def test_the_workers_never_import_prefect() -> None:
    # The CLI's process imports Prefect; its shard workers must not pay for it.
    assert not local_pool(2).submit(_imported_prefect).result(timeout=120)


@pytest.mark.usefixtures("pool")
def test_a_workers_warning_reaches_this_process_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flows"):
        pid = local_pool(2).submit(_warn, "shard 7: a warning from a worker").result(timeout=120)
        stop_local_pool()  # the record was sent before the result; the relay may lag
        for _ in range(100):
            if any("shard 7" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.05)
    assert pid != os.getpid()
    (record,) = [r for r in caplog.records if "shard 7" in r.getMessage()]
    assert record.name == "flows.engine.shard" and record.process == pid


def test_a_stopped_pool_starts_no_new_workers_until_the_next_start() -> None:
    start_local_pool(1)
    stop_local_pool(wait=False)  # what a stop of the run does
    with pytest.raises(RuntimeError, match="stopping"):
        local_pool(1)
    start_local_pool(1)
    try:
        assert local_pool(1).submit(os.getpid).result(timeout=120) != os.getpid()
    finally:
        stop_local_pool()


def _consumer_files(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    tables = ("documents/", "rejected/", "pairs/", "bitext/")
    return {f["path"]: f["sha256"] for f in manifest["files"] if f["path"].startswith(tables)}


@pytest.mark.parametrize(("cleaning", "early"), [(False, "during"), (True, "again")])
def test_consumer_files_packed_during_the_pairs_step_are_what_publish_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cleaning: bool, early: str
) -> None:
    # The seeds are one translation pair: with cleaning, the pairs step rewrites a
    # documents part, so what the idle worker packed meanwhile is stale and packed again.
    source = Path(__file__).parents[1] / "seeds"
    run_release(source, tmp_path / "inline", translation_cleaning=cleaning)
    start_local_pool(2)
    try:
        with caplog.at_level(logging.DEBUG, logger="flows.engine.packing"):
            run_release(source, tmp_path / "pooled", translation_cleaning=cleaning)
    finally:
        stop_local_pool()
    assert any(early in r.getMessage() for r in caplog.records)
    assert _consumer_files(tmp_path / "pooled") == _consumer_files(tmp_path / "inline")
    staged = tmp_path / "pooled" / "releases"
    assert not [p for p in staged.iterdir() if p.name.startswith(".staging")]


def _profile_loads(_: object) -> int:
    from flows.stages import language

    return language._detector.cache_info().misses


@pytest.mark.skipif(
    __import__("multiprocessing").get_start_method() != "fork", reason="workers are not forked"
)
def test_validate_s_forked_workers_start_with_the_profiles_this_process_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``corpus validate`` (PoolRunner): no worker loads the language profiles again."""
    from flows.engine import pool as pool_module
    from flows.stages import language

    language._detector.cache_clear()  # nothing loaded here yet: a worker's load would show
    monkeypatch.setattr(pool_module, "work_shard", _profile_loads)
    works: list[Any] = [1, 2, 3]  # each "shard" answers how often its worker loaded them
    found: list[object] = list(pool_module.PoolRunner(2).shards(works))
    assert found == [language._detector.cache_info().misses] * 3 == [2] * 3
