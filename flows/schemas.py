"""Generate ``schemas/*.schema.json`` from the pydantic models, or check them for drift."""

from __future__ import annotations

import json
from pathlib import Path

from flows.models import PUBLISHED_MODELS


def render(name: str) -> str:
    """Deterministic text: sorted keys, indent 2, trailing newline."""
    schema = PUBLISHED_MODELS[name].model_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def file_name(name: str) -> str:
    return f"{name}.schema.json"


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PUBLISHED_MODELS:
        path = folder / file_name(name)
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def check_schemas(folder: Path) -> list[str]:
    """Names of schema files that are missing, differ from the models, or are stale."""
    expected = {file_name(name): render(name) for name in PUBLISHED_MODELS}
    drifted = [
        fname
        for fname, text in expected.items()
        if not (folder / fname).is_file() or (folder / fname).read_text(encoding="utf-8") != text
    ]
    stale = [p.name for p in folder.glob("*.schema.json") if p.name not in expected]
    return sorted(drifted + stale)
