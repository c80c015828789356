"""A release described in MLCommons Croissant 1.0 (``croissant.json``). Pure.

Every published file is a ``cr:FileObject`` with its sha256 (from the manifest); each
published table is a ``cr:FileSet`` over its folder and a ``cr:RecordSet`` whose fields are
the table's Arrow schema, column by column. The internal ``shards/`` folder is not
described: a consumer reads the tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from flows.models import Manifest

CROISSANT = "croissant.json"
PARQUET = "application/x-parquet"
# The Croissant 1.0 JSON-LD context, as the specification gives it.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def data_type(arrow: pa.DataType) -> str:
    """The Croissant (schema.org) data type of a scalar Arrow type."""
    if pa.types.is_boolean(arrow):
        return "sc:Boolean"
    if pa.types.is_integer(arrow):
        return "sc:Integer"
    if pa.types.is_floating(arrow):
        return "sc:Float"
    if pa.types.is_timestamp(arrow):
        return "sc:DateTime"
    if pa.types.is_date(arrow):
        return "sc:Date"
    return "sc:Text"


def _source(table: str, column: str, member: str | None = None) -> dict[str, Any]:
    source: dict[str, Any] = {"fileSet": {"@id": f"{table}-files"}, "extract": {"column": column}}
    if member is not None:
        source["transform"] = {"jsonPath": member}
    return source


def _field(table: str, column: pa.Field) -> dict[str, Any]:
    """One column as a field: a list is ``repeated``; a struct (or a list of structs) has a
    sub-field per member, read from the column by a JSON path."""
    arrow = column.type
    repeated = pa.types.is_list(arrow) or pa.types.is_large_list(arrow)
    item = arrow.value_type if repeated else arrow
    field: dict[str, Any] = {
        "@type": "cr:Field",
        "@id": f"{table}/{column.name}",
        "name": column.name,
        "description": f"Parquet column `{column.name}`: {arrow}"
        + (" (nullable)" if column.nullable else ""),
    }
    if repeated:
        field["repeated"] = True
    if pa.types.is_struct(item):
        field["subField"] = [
            {
                "@type": "cr:Field",
                "@id": f"{table}/{column.name}/{member.name}",
                "name": member.name,
                "dataType": data_type(member.type),
                "source": _source(table, column.name, member.name),
            }
            for member in item
        ]
    else:
        field["dataType"] = data_type(item)
        field["source"] = _source(table, column.name)
    return field


def croissant(
    manifest: Manifest,
    tables: Mapping[str, pa.Schema],
    languages: list[str],
    license_name: str | None,
) -> dict[str, Any]:
    """The release's Croissant metadata as a JSON-LD object. ``tables``: the published
    tables this release has files of; ``license_name``: the documents' one license, if
    uniform."""
    files = [f for f in manifest.files if f.path.split("/")[0] in tables and f.path.count("/") == 1]
    counts = manifest.counts
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": f"corpus-release-{manifest.release_id}",
        "description": (
            f"Corpus release {manifest.release_id}: {counts.get('published', 0)} documents "
            f"published of {counts.get('inputs', 0)} inputs, {counts.get('rejected', 0)} "
            "rejected with a reason (the rejected table). Text decoded to NFC Unicode, "
            "boilerplate removed (kept per document in `removed`), language-tagged."
        ),
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "citeAs": (
            f"@misc{{corpus-release-{manifest.release_id}, title={{Corpus release "
            f"{manifest.release_id}}}, note={{corpus-pipeline {manifest.pipeline_version}}}, "
            f"year={{{manifest.created_at.year}}}}}"
        ),
        "url": "README.md",
        "version": "1.0.0",
        "datePublished": manifest.created_at.isoformat(),
        "inLanguage": languages,
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": f.path,
                "name": f.path,
                "contentUrl": f.path,
                "contentSize": f"{f.bytes} B",
                "encodingFormat": PARQUET,
                "sha256": f.sha256,
            }
            for f in files
        ]
        + [
            {
                "@type": "cr:FileSet",
                "@id": f"{table}-files",
                "name": f"{table}-files",
                "description": f"The Parquet files of the {table} table.",
                "encodingFormat": PARQUET,
                "includes": f"{table}/*.parquet",
            }
            for table in tables
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": table,
                "name": table,
                "description": f"The {table} table, one record per row.",
                "field": [_field(table, column) for column in schema],
            }
            for table, schema in tables.items()
        ],
    }
    if license_name:
        document["license"] = license_name
    return document


__all__ = ["CONTEXT", "CROISSANT", "croissant", "data_type"]
