"""schemas/*.schema.json are generated from the pydantic models and must not drift."""

from __future__ import annotations

import json
from pathlib import Path

from flows.cli import main
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


def test_rendering_is_deterministic() -> None:
    text = render("document_metadata")
    assert text == render("document_metadata")
    assert text.endswith("}\n")
    assert json.loads(text)["title"] == "DocumentMetadata"
