"""Hostile round, item 2, as a user meets it: ``corpus run`` over an output whose current
release was damaged -- flipped bytes, a forged part, a deleted row, a truncated part -- must
publish every input with its true text, say what it could not trust, and never fail."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from flows.models import Manifest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _corpus_run(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    from tests.test_crash import api_env

    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--source", str(source), "--out", str(out),
         "--shard-size", "3", "--workers", "1", "--task-runner", "thread"],
        env=api_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _documents(out: Path) -> dict[str, str]:
    table = ds.dataset(out / "current" / "documents").to_table(columns=["source_path", "text"])
    return dict(zip(*(table.column(c).to_pylist() for c in ("source_path", "text")), strict=True))


def _forge(release: Path, name: str, table: pa.Table) -> None:
    """Rewrite a part and make the manifest agree, as a careful forger would."""
    pq.write_table(table, release / name)
    manifest = json.loads((release / "manifest.json").read_text())
    data = (release / name).read_bytes()
    for entry in manifest["files"]:
        if entry["path"] == name:
            entry.update(
                sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), rows=table.num_rows
            )
    (release / "manifest.json").write_text(json.dumps(manifest))


def test_a_damaged_current_release_is_repaired_from_the_source(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    for i in range(12):
        (source / f"doc-{i:02d}.txt").write_text(
            f"Report {i}: the workers at plant number {i} voted to continue their strike "
            "after the management refused to negotiate about wages and hours.\n"
        )
    first = _corpus_run(source, out)
    assert first.returncode == 0, first.stderr
    truth = _documents(out)
    release = (out / "current").resolve()
    # shard 0: a row deleted (manifest forged to match); shard 1: flipped bytes;
    # shard 2: text injected (manifest forged); shard 3: truncated.
    part0 = pq.read_table(release / "shards/documents/part-00000.parquet")
    _forge(release, "shards/documents/part-00000.parquet", part0.slice(0, 2))
    flipped = bytearray((release / "shards/documents/part-00001.parquet").read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    (release / "shards/documents/part-00001.parquet").write_bytes(bytes(flipped))
    part2 = pq.read_table(release / "shards/documents/part-00002.parquet")
    injected = pa.array(["INJECTED"] * part2.num_rows)
    _forge(release, "shards/documents/part-00002.parquet", part2.set_column(1, "text", injected))
    truncated = release / "shards/documents/part-00003.parquet"
    truncated.write_bytes(truncated.read_bytes()[:64])

    second = _corpus_run(source, out)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert _documents(out) == truth
    assert "published 12 of 12 inputs" in second.stdout
    manifest = Manifest.model_validate_json((out / "current" / "manifest.json").read_bytes())
    assert manifest.counts["published"] == 12
    said = "\n".join(manifest.warnings)
    for shard in ("part-00000", "part-00001", "part-00002", "part-00003"):
        assert shard in said, (shard, said)
    # What the new manifest vouches for is what is on disk.
    for entry in manifest.files:
        data = (out / "current" / entry.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256
