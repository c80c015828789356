"""End to end: the Prefect flow on a real folder, under one session-scoped test harness."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from flows.contracts import DOCUMENT_SCHEMA, REJECTED_SCHEMA
from flows.models import Manifest, RunParameters
from flows.orchestration.flow import corpus_release
from tests.conftest import SEEDS

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _mixed_source(root: Path) -> Path:
    source = root / "source"
    shutil.copytree(SEEDS, source)
    (source / "nested" / "deeper").mkdir(parents=True)
    (source / "nested" / "deeper" / "latin1.txt").write_bytes(
        ("Die Straße in Köln ist schön, und die Bäume blühen im Frühling überall. " * 4).encode(
            "cp1252"
        )
    )
    (source / "empty.txt").write_bytes(b"")
    (source / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (source / "only-boilerplate.txt").write_text("Advertisement\nShare this article\nLoading\n")
    (source / "bad-meta.txt").write_text(
        "A perfectly fine English paragraph about the strike, long enough to detect.\n"
    )
    (source / "ignored.md").write_text("not a document")
    outside = root / "outside.txt"
    outside.write_text("never read")
    os.symlink(outside, source / "escape.txt")
    meta = [
        {
            "file_name": "000_f191ddaece1908f0.txt",
            "id": "wsws-de",
            "url": "https://www.wsws.org/de/x",
            "published": "2024-06-01",
            "authors": ["A. Author"],
            "language": "de",
            "license": "CC-BY-4.0",
            "crawl": "2024-06",
        },
        {"file_name": "bad-meta.txt", "published": "not a date"},
        {"file_name": "ghost.txt"},
    ]
    (source / "metadata.jsonl").write_text("\n".join(json.dumps(m) for m in meta) + "\n{oops\n")
    return source


def test_release_on_a_mixed_folder(tmp_path: Path) -> None:
    source = _mixed_source(tmp_path)
    before = sorted((p.relative_to(source), p.lstat().st_mtime_ns) for p in source.rglob("*"))
    out = tmp_path / "out"
    params = RunParameters(source=str(source), out=str(out), shard_size=3, workers=2)
    result = corpus_release(params)

    assert (
        sorted((p.relative_to(source), p.lstat().st_mtime_ns) for p in source.rglob("*")) == before
    )
    current = out / "current"
    assert current.is_symlink()
    assert Path(result.path).resolve() == current.resolve()

    docs = ds.dataset(current / "documents", format="parquet", partitioning="hive").to_table()
    rejected = ds.dataset(current / "rejected", format="parquet").to_table()
    assert docs.schema.equals(DOCUMENT_SCHEMA, check_metadata=False)
    assert rejected.schema.equals(REJECTED_SCHEMA, check_metadata=False)

    rows = {r["source_path"]: r for r in docs.to_pylist()}
    assert sorted(rows) == [
        "000_f191ddaece1908f0.txt",
        "001_f6e449bcd0ea5a8d.txt",
        "nested/deeper/latin1.txt",
    ]
    german = rows["000_f191ddaece1908f0.txt"]
    assert german["id"] == "wsws-de"
    assert german["language"] == "de"
    assert (
        german["title"]
        == "KI in der Unterhaltungsindustrie und die notwendige sozialistische Antwort"
    )
    assert german["removed"][0] == {"rule": "loading-indicator", "text": "Loading", "line": 103}
    # The rest: the title and captions the English translation has no counterpart for.
    assert {r["rule"] for r in german["removed"][1:]} == {"no-counterpart-in-translation"}
    assert "Loading" not in german["text"].splitlines()
    assert german["published"].isoformat() == "2024-06-01T00:00:00+00:00"
    assert json.loads(german["metadata_extra"]) == {"crawl": "2024-06"}
    assert rows["001_f6e449bcd0ea5a8d.txt"]["language"] == "en"
    assert rows["nested/deeper/latin1.txt"]["source_encoding"] == "cp1252"
    assert rows["nested/deeper/latin1.txt"]["text"].startswith("Die Straße in Köln")

    reasons = {r["source_path"]: (r["stage"], r["reason"]) for r in rejected.to_pylist()}
    assert reasons == {
        "bad-meta.txt": ("metadata", "metadata_invalid"),
        "empty.txt": ("encoding", "empty"),
        "escape.txt": ("discover", "symlink_outside_root"),
        "image.txt": ("encoding", "binary"),
        "only-boilerplate.txt": ("boilerplate", "only_boilerplate"),
    }
    detail = next(r["detail"] for r in rejected.to_pylist() if r["source_path"] == "bad-meta.txt")
    assert "published" in detail

    manifest = Manifest.model_validate_json((current / "manifest.json").read_text())
    assert manifest.counts == {
        "inputs": 8,
        "published": 3,
        "rejected": 5,
        "skipped": 1,
        "reused": 0,
        "metadata_issues": 2,
    }
    assert manifest.languages == {"de": 2, "en": 1}
    for entry in manifest.files:
        assert pq.ParquetFile(current / entry.path).metadata.num_rows == entry.rows
    assert sum(f.rows for f in manifest.files if f.path.startswith("documents/")) == 3
    card = (current / "README.md").read_text()
    assert "only_boilerplate" in card and "pd.read_parquet" in card
    assert (result.published, result.rejected, result.inputs) == (3, 5, 8)


def test_rerun_is_deterministic_and_switches_current(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = RunParameters(source=str(SEEDS), out=str(out), task_runner="thread", keep_releases=1)
    first = corpus_release(params)
    first_rows = ds.dataset(Path(first.path) / "documents").to_table().to_pylist()
    first_manifest = json.loads((Path(first.path) / "manifest.json").read_text())
    same = corpus_release(params)  # nothing changed: nothing published
    assert (same.unchanged, same.release_id) == (True, first.release_id)
    second = corpus_release(params.model_copy(update={"force_release": True}))
    assert (first.reused, second.reused) == (0, 2)  # unchanged inputs are not processed again
    assert second.release_id != first.release_id
    assert (out / "current").resolve() == Path(second.path).resolve()
    assert not Path(first.path).exists()  # pruned: keep_releases=1
    second_rows = ds.dataset(Path(second.path) / "documents").to_table().to_pylist()
    assert second_rows == first_rows
    second_manifest = json.loads((Path(second.path) / "manifest.json").read_text())
    for key in ("input_fingerprint", "config_fingerprint", "languages", "rejection_reasons"):
        assert second_manifest[key] == first_manifest[key]
    assert second_manifest["counts"] == {**first_manifest["counts"], "reused": 2}


def test_downstream_readers(tmp_path: Path) -> None:
    import duckdb
    import pandas as pd

    out = tmp_path / "out"
    corpus_release(RunParameters(source=str(SEEDS), out=str(out), task_runner="thread"))
    current = out / "current"
    df = pd.read_parquet(current / "documents")
    assert sorted(df["language"]) == ["de", "en"]
    assert pd.read_parquet(current / "rejected").empty
    docs = f"'{current}/documents/*.parquet'"
    con = duckdb.connect()
    by_rule = con.execute(
        f"SELECT r.rule, count(*) FROM {docs}, unnest(removed) AS t(r) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    # The German title and four captions, each with the blank line after it.
    assert by_rule == [("loading-indicator", 1), ("no-counterpart-in-translation", 10)]
    assert con.execute(f"SELECT count(DISTINCT id) FROM {docs}").fetchall() == [(2,)]
