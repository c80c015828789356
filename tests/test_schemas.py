"""schemas/*.schema.json are generated from the pydantic models and must not drift."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flows.cli import main
from flows.models import PUBLISHED_MODELS
from flows.schemas import check_schemas, render, write_schemas
from tests.conftest import REPO


def test_committed_schemas_match_the_models() -> None:
    assert check_schemas(REPO / "schemas") == [], "run `corpus schemas` and commit the result"


def test_drift_is_detected(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert check_schemas(tmp_path) == []
    path = tmp_path / "run_parameters.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["shard_size"]["default"] = 1
    path.write_text(json.dumps(schema))
    (tmp_path / "stale.schema.json").write_text("{}")
    assert check_schemas(tmp_path) == ["run_parameters.schema.json", "stale.schema.json"]
    assert main(["schemas", "--check", "--dir", str(tmp_path)]) == 1


def test_rendering_is_deterministic_across_processes(tmp_path: Path) -> None:
    """Two fresh processes with different hash seeds write byte-identical files, equal to
    the committed ones: no set or dict order leaks into the text."""
    runs = []
    for hash_seed in ("1", "2"):
        folder = tmp_path / f"hash-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, "-m", "flows.cli", "schemas", "--dir", str(folder)]
        runs.append((folder, subprocess.Popen(command, cwd=REPO, env=env)))
    committed = {p.name: p.read_bytes() for p in (REPO / "schemas").glob("*.schema.json")}
    assert len(committed) == len(PUBLISHED_MODELS)
    for folder, proc in runs:
        assert proc.wait(timeout=120) == 0
        written = {p.name: p.read_bytes() for p in folder.glob("*.schema.json")}
        assert written == committed, folder.name


def test_rendered_text_is_sorted_indented_and_titled() -> None:
    for name in PUBLISHED_MODELS:
        text = render(name)
        schema = json.loads(text)
        assert schema["type"] == "object" and schema["properties"], name
        assert text == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert json.loads(render("document_metadata"))["title"] == "DocumentMetadata"
