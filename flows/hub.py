"""The Hugging Face Hub's view of a release: the dataset card's YAML front matter. Pure.

``datasets.load_dataset(<release>)`` reads the ``configs`` block: one config per published
table (``documents`` the default), each pointing at its own folder's files, so the internal
tables under ``shards/`` never mix into a split. ``dataset_info`` declares every config's
features from the same Arrow schema the files carry, and its row count, which ``datasets``
checks on load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import yaml

from flows.contracts import DOCUMENTS_DIR
from flows.models import Manifest

# License identifiers the Hub knows (its list is longer; these are the ones a text corpus
# meets). A uniform license outside this list is published as ``other`` with its name.
HUB_LICENSES = frozenset(
    {
        "apache-2.0",
        "mit",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "odc-by",
        "odbl",
        "pddl",
        "gpl-3.0",
        "lgpl-3.0",
        "bsd-2-clause",
        "bsd-3-clause",
        "unlicense",
        "cdla-permissive-2.0",
        "cdla-sharing-1.0",
    }
)

_FLOATS = {pa.float16(): "float16", pa.float32(): "float32", pa.float64(): "float64"}
_SIZES: tuple[tuple[int, str], ...] = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
)


def dtype(arrow: pa.DataType) -> str:
    """The Hub's name of a scalar Arrow type (``datasets.Value``'s spelling)."""
    if arrow in _FLOATS:
        return _FLOATS[arrow]
    if pa.types.is_timestamp(arrow):
        zone = f", tz={arrow.tz}" if arrow.tz else ""
        return f"timestamp[{arrow.unit}{zone}]"
    if pa.types.is_boolean(arrow):
        return "bool"
    if pa.types.is_date32(arrow) or pa.types.is_date64(arrow):
        return "date32" if pa.types.is_date32(arrow) else "date64"
    return str(arrow)  # string, large_string, binary, int8..uint64, date32, ...


def feature(arrow: pa.DataType) -> dict[str, Any]:
    """One column's feature as the card spells it: ``dtype``, ``list`` or ``struct``."""
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        inner = feature(arrow.value_type)
        return {"list": inner.get("dtype", inner.get("struct", inner))}
    if pa.types.is_struct(arrow):
        return {"struct": features(pa.schema(list(arrow)))}
    return {"dtype": dtype(arrow)}


def features(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": field.name, **feature(field.type)} for field in schema]


def size_category(rows: int) -> str:
    return next((name for limit, name in _SIZES if rows < limit), "10B<n<100B")


def hub_license(licenses: Mapping[str | None, int]) -> dict[str, str]:
    """``license`` (and ``license_name`` for ``other``): the documents' one license when all
    declare the same, ``unknown`` when none declares any, else ``other``."""
    declared = {name for name in licenses if name}
    if not declared:
        return {"license": "unknown"}
    if len(licenses) == 1:
        (name,) = declared
        if name.lower() in HUB_LICENSES:
            return {"license": name.lower()}
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        return {"license": "other", "license_name": slug or "other"}
    return {"license": "other"}


def front_matter(
    manifest: Manifest,
    tables: Mapping[str, pa.Schema],
    languages: list[str],
    licenses: Mapping[str | None, int],
    sizes: Mapping[str, int] | None = None,
) -> str:
    """The card's YAML block, ``---`` lines included. ``tables``: the published tables
    this release has files of, by folder; ``languages``: Hub language codes; ``sizes``:
    each table's uncompressed bytes."""
    rows = dict.fromkeys(tables, 0)
    stored = dict.fromkeys(tables, 0)
    for file in manifest.files:
        folder, _, rest = file.path.partition("/")
        if folder in rows and "/" not in rest:
            rows[folder] += file.rows
            stored[folder] += file.bytes
    sizes = sizes or {}
    published = manifest.counts.get("published", 0)
    meta: dict[str, Any] = {
        "pretty_name": f"Corpus release {manifest.release_id}",
        **hub_license(licenses),
    }
    if languages:
        meta["language"] = languages
        meta["multilinguality"] = "multilingual" if len(languages) > 1 else "monolingual"
    meta |= {
        "size_categories": [size_category(published)],
        "task_categories": ["text-generation", "fill-mask"],
        "task_ids": ["language-modeling", "masked-language-modeling"],
        "annotations_creators": ["no-annotation"],
        "language_creators": ["found"],
        "source_datasets": ["original"],
        "configs": [
            {
                "config_name": name,
                **({"default": True} if name == DOCUMENTS_DIR else {}),
                "data_files": [{"split": "train", "path": f"{name}/*.parquet"}],
            }
            for name in tables
        ],
        "dataset_info": [
            {
                "config_name": name,
                "features": features(schema),
                "splits": [
                    {
                        "name": "train",
                        "num_bytes": sizes.get(name, stored[name]),
                        "num_examples": rows[name],
                    }
                ],
                "download_size": stored[name],
                "dataset_size": sizes.get(name, stored[name]),
            }
            for name, schema in tables.items()
        ],
    }
    body = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{body}---\n"


__all__ = ["HUB_LICENSES", "dtype", "feature", "features", "front_matter", "hub_license"]
