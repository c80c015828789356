"""What a consumer gets: a Hugging Face dataset, Croissant metadata, consumer-sized Parquet."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from flows import contracts
from flows.contracts import (
    DOCUMENT_SCHEMA,
    FACTS_DIR,
    INDEX_DIR,
    REJECTED_SCHEMA,
    SHARDS_DIR,
    published_tables,
)
from flows.croissant import croissant
from flows.hub import features, front_matter, hub_license, size_category
from flows.models import DataFile, Manifest
from flows.output.compact import SORT_KEY, pack_release, plan_groups
from tests.conftest import run_release

_TEXT = (
    "the workers of the plant voted on monday to continue their strike after management "
    "refused to negotiate about wages hours pensions and safety while the city council met "
    "to discuss the budget for schools roads hospitals and the new railway station near the "
    "river where families gathered to hear the union leaders speak about the future"
)
_WORDS = _TEXT.split()


def _article(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(6, 12)):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(12, 24))]
        lines.append(" ".join(words).capitalize() + ".")
    return "\n".join(lines) + "\n"


def _source(root: Path, n: int, license_name: str | None = "CC-BY-4.0") -> Path:
    rng = random.Random(15)
    root.mkdir()
    records = []
    for i in range(n):
        name = f"doc-{i:03d}.txt"
        (root / name).write_text(_article(rng), encoding="utf-8")
        if license_name:
            records.append({"file_name": name, "license": license_name})
    (root / "empty.txt").write_bytes(b"")  # one rejected input
    if records:
        lines = [json.dumps(r) for r in records]
        (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("consumers")
    source = _source(tmp / "src", 24)
    # The target follows the parts' real size (it grows with every column added): about
    # two and a half parts per consumer file, so 5 parts pack into fewer, but more than one.
    run_release(source, tmp / "sizing", shard_size=5, dedup="off")
    parts = (tmp / "sizing" / "current" / SHARDS_DIR / "documents").glob("*.parquet")
    target = int(2.5 * max(p.stat().st_size for p in parts))
    run_release(source, tmp / "out", shard_size=5, dedup="off", target_file_bytes=target)
    return (tmp / "out" / "current").resolve()


def _manifest(release: Path) -> Manifest:
    return Manifest.model_validate_json((release / "manifest.json").read_bytes())


def _front_matter(release: Path) -> dict[str, Any]:
    text = (release / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    block = text[4 : text.index("\n---\n", 4)]
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No network, a fresh cache, and ``datasets``' log records reaching caplog (its logger
    does not propagate by default)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    datasets.utils.logging.enable_propagation()
    yield tmp_path / "hf-cache"
    datasets.utils.logging.disable_propagation()


# -- Hugging Face --------------------------------------------------------------------------


def test_load_dataset_reads_documents_by_default_and_rejected_as_a_config(
    release: Path, offline_hub: Path, caplog: pytest.LogCaptureFixture
) -> None:
    datasets = pytest.importorskip("datasets")
    manifest = _manifest(release)
    with caplog.at_level(logging.WARNING):
        docs = datasets.load_dataset(str(release), split="train", cache_dir=str(offline_hub))
    assert "metadata block was not found" not in caplog.text
    assert docs.num_rows == manifest.counts["published"] == 24
    assert docs.features == datasets.Features.from_arrow_schema(DOCUMENT_SCHEMA)
    expected = ds.dataset(release / "documents").to_table().column("id").to_pylist()
    assert docs["id"] == expected
    rejected = datasets.load_dataset(
        str(release), "rejected", split="train", cache_dir=str(offline_hub)
    )
    assert rejected["source_path"] == ["empty.txt"]
    assert rejected.features == datasets.Features.from_arrow_schema(REJECTED_SCHEMA)
    assert datasets.get_dataset_config_names(str(release)) == list(published_tables())


def test_a_card_without_front_matter_is_what_datasets_complains_about(
    release: Path, offline_hub: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The check above can fail: the same files under a card without YAML are logged."""
    datasets = pytest.importorskip("datasets")
    bare = tmp_path / "bare"
    (bare / "documents").mkdir(parents=True)
    for path in (release / "documents").glob("*.parquet"):
        (bare / "documents" / path.name).write_bytes(path.read_bytes())
    (bare / "README.md").write_text("# A release\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        datasets.load_dataset(str(bare), split="train", cache_dir=str(offline_hub))
    assert "metadata block was not found" in caplog.text


def test_card_front_matter_declares_configs_license_languages_and_features(
    release: Path,
) -> None:
    datasets = pytest.importorskip("datasets")
    meta = _front_matter(release)
    assert meta["license"] == "cc-by-4.0"
    assert meta["language"] == ["en"]
    assert meta["size_categories"] == ["n<1K"]
    assert "text-generation" in meta["task_categories"]
    assert meta["pretty_name"].startswith("Corpus release ")
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert list(configs) == list(published_tables())
    assert configs["documents"]["default"] is True
    paths = [f["path"] for c in meta["configs"] for f in c["data_files"]]
    assert not any(p.startswith((SHARDS_DIR, INDEX_DIR, FACTS_DIR)) for p in paths)
    for info in meta["dataset_info"]:
        schema = published_tables()[info["config_name"]]
        assert info["features"] == datasets.Features.from_arrow_schema(schema)._to_yaml_list()
    card = (release / "README.md").read_text(encoding="utf-8")
    assert f"`{SHARDS_DIR}/{INDEX_DIR}/`" in card and f"`{SHARDS_DIR}/{FACTS_DIR}/`" in card


def test_a_table_added_to_the_registry_becomes_a_config(
    monkeypatch: pytest.MonkeyPatch, release: Path
) -> None:
    """Another table (a struct column, a list of lists) needs no code here to be a config."""
    datasets = pytest.importorskip("datasets")
    schema = pa.schema(
        [
            pa.field("source_path", pa.string(), nullable=False),
            pa.field(
                "quality", pa.struct([("score", pa.float32()), ("flags", pa.list_(pa.string()))])
            ),
            pa.field("spans", pa.list_(pa.list_(pa.int32()))),
            pa.field("day", pa.date32()),
            pa.field("blob", pa.binary()),
        ]
    )
    before = list(published_tables())
    monkeypatch.setitem(contracts.TABLES, "extra", (schema, object))
    assert list(published_tables()) == [*before, "extra"]
    manifest = _manifest(release)
    tables = published_tables()
    meta = yaml.safe_load(front_matter(manifest, tables, ["en"], {}).strip("-\n"))
    assert [c["config_name"] for c in meta["configs"]] == [*before, "extra"]
    (pairs,) = [i for i in meta["dataset_info"] if i["config_name"] == "extra"]
    assert pairs["features"] == datasets.Features.from_arrow_schema(schema)._to_yaml_list()
    assert features(schema) == pairs["features"]


@pytest.mark.parametrize(
    ("licenses", "expected"),
    [
        ({"CC-BY-4.0": 3}, {"license": "cc-by-4.0"}),
        ({"CC-BY-4.0": 3, None: 1}, {"license": "other"}),
        ({"MIT": 1, "CC0-1.0": 2}, {"license": "other"}),
        ({None: 5}, {"license": "unknown"}),
        ({}, {"license": "unknown"}),
        ({"Our House Licence 2": 4}, {"license": "other", "license_name": "our-house-licence-2"}),
    ],
)
def test_license_is_the_metadata_s_when_uniform_else_other(
    licenses: dict[str | None, int], expected: dict[str, str]
) -> None:
    assert hub_license(licenses) == expected


# -- Croissant -----------------------------------------------------------------------------


def test_croissant_validates_and_reads_every_table_back(release: Path) -> None:
    mlc = pytest.importorskip("mlcroissant")
    document = json.loads((release / "croissant.json").read_text(encoding="utf-8"))
    dataset = mlc.Dataset(jsonld=str(release / "croissant.json"))
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    assert [r["@id"] for r in document["recordSet"]] == list(published_tables())
    for table, schema in published_tables().items():
        (record_set,) = [r for r in document["recordSet"] if r["@id"] == table]
        assert [f["name"] for f in record_set["field"]] == schema.names
    records = list(dataset.records("documents"))
    ids = ds.dataset(release / "documents").to_table().column("id").to_pylist()
    assert [r["documents/id"].decode() for r in records] == ids
    first = records[0]
    assert isinstance(first["documents/removed"], list)
    assert first["documents/license"] == b"CC-BY-4.0"
    (rejected,) = list(dataset.records("rejected"))
    assert rejected["rejected/source_path"] == b"empty.txt"


def test_croissant_lists_every_published_file_with_its_sha256(release: Path) -> None:
    document = json.loads((release / "croissant.json").read_text(encoding="utf-8"))
    objects = {
        d["contentUrl"]: d for d in document["distribution"] if d["@type"] == "cr:FileObject"
    }
    on_disk = {
        p.relative_to(release).as_posix()
        for table in published_tables()
        for p in (release / table).glob("*.parquet")
    }
    assert set(objects) == on_disk
    for path, entry in objects.items():
        assert entry["sha256"] == hashlib.sha256((release / path).read_bytes()).hexdigest()
    assert not any(SHARDS_DIR in json.dumps(d) for d in document["distribution"])
    assert document["license"] == "cc-by-4.0"


# -- Parquet sized for consumers -----------------------------------------------------------


def test_published_files_are_packed_sorted_and_indexed(release: Path) -> None:
    manifest = _manifest(release)
    parts = [f for f in manifest.files if f.path.startswith(f"{SHARDS_DIR}/documents/")]
    files = sorted((release / "documents").glob("*.parquet"))
    assert len(parts) == 5 and 1 < len(files) < len(parts)
    paths: list[str] = []
    for path in files:
        meta = pq.ParquetFile(path).metadata
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            assert group.sorting_columns == (
                pq.SortingColumn(DOCUMENT_SCHEMA.get_field_index(SORT_KEY)),
            )
            assert all(group.column(c).has_offset_index for c in range(group.num_columns))
            assert all(group.column(c).has_column_index for c in range(group.num_columns))
        paths += pq.read_table(path, columns=[SORT_KEY]).column(SORT_KEY).to_pylist()
    assert paths == sorted(paths)
    assert pq.read_schema(files[0]).equals(DOCUMENT_SCHEMA, check_metadata=False)


def _files(release: Path) -> dict[str, str]:
    return {
        p.relative_to(release).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for table in published_tables()
        for p in sorted((release / table).glob("*.parquet"))
    }


def test_one_changed_document_rewrites_one_consumer_file(tmp_path: Path) -> None:
    source = _source(tmp_path / "src", 40)
    out = tmp_path / "out"
    options: dict[str, Any] = {"shard_size": 4, "dedup": "off", "target_file_bytes": 30 * 1024}
    run_release(source, out, **options)
    before = _files((out / "current").resolve())
    assert sum(name.startswith("documents/") for name in before) >= 3
    with (source / "doc-021.txt").open("a", encoding="utf-8") as handle:
        handle.write("A sentence added to one document of the corpus today.\n")
    result = run_release(source, out, **options)
    assert result.processed == 1
    after = _files((out / "current").resolve())
    assert set(after) == set(before)
    changed = sorted(name for name in after if after[name] != before[name])
    assert len(changed) == 1 and changed[0].startswith("documents/")
    # The same release as a run from scratch would publish.
    scratch = tmp_path / "scratch"
    run_release(source, scratch, **options)
    fresh = ds.dataset(scratch / "current" / "documents").to_table()
    again = ds.dataset(out / "current" / "documents").to_table()
    assert again.equals(fresh)


def test_a_damaged_previous_consumer_file_is_written_again(tmp_path: Path) -> None:
    source = _source(tmp_path / "src", 12)
    out = tmp_path / "out"
    options: dict[str, Any] = {"shard_size": 4, "dedup": "off", "target_file_bytes": 30 * 1024}
    run_release(source, out, **options)
    release = (out / "current").resolve()
    truth = ds.dataset(release / "documents").to_table()
    victim = sorted((release / "documents").glob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    run_release(source, out, **options)
    assert ds.dataset(out / "current" / "documents").to_table().equals(truth)


def _groups(
    sizes: dict[int, int], previous: Sequence[tuple[int, tuple[int, ...]]], target: int
) -> list[tuple[int, tuple[int, ...]]]:
    return [(g.start, g.members) for g in plan_groups(sizes, previous, target)]


def test_packing_fills_files_up_to_the_target() -> None:
    sizes = dict.fromkeys(range(10), 30)
    assert _groups(sizes, [], 100) == [(0, (0, 1, 2)), (3, (3, 4, 5)), (6, (6, 7, 8)), (9, (9,))]


def test_packing_keeps_previous_groups_and_fills_the_last_one() -> None:
    previous = [(0, (0, 1, 2)), (3, (3, 4, 5)), (6, (6, 7))]
    sizes = dict.fromkeys(range(10), 30)
    sizes[4] = 45  # a changed part keeps its group (105 is within twice the target)
    assert _groups(sizes, previous, 100) == [
        (0, (0, 1, 2)),
        (3, (3, 4, 5)),
        (6, (6, 7, 8)),
        (9, (9,)),
    ]


def test_packing_merges_small_groups_and_splits_huge_ones() -> None:
    # Parts of an older layout (one per shard) are compacted; a group now over twice the
    # target is split and packed again.
    previous = [(0, (0,)), (1, (1,)), (2, (2,)), (3, (3, 4, 5))]
    sizes = {0: 10, 1: 10, 2: 10, 3: 90, 4: 90, 5: 90}
    assert _groups(sizes, previous, 100) == [(0, (0, 1, 2)), (3, (3,)), (4, (4,)), (5, (5,))]


def test_a_part_new_inside_a_group_joins_it() -> None:
    # Shard 4 now has a rejected row: its part goes into the file that spans it, in order.
    previous = [(0, (0, 3, 6))]
    sizes = {0: 10, 3: 10, 4: 10, 6: 10}
    assert _groups(sizes, previous, 100) == [(0, (0, 3, 4, 6))]


@pytest.mark.parametrize(
    ("rows", "category"),
    [
        (0, "n<1K"),
        (999, "n<1K"),
        (1_000, "1K<n<10K"),
        (59_542, "10K<n<100K"),
        (2_500_000, "1M<n<10M"),
    ],
)
def test_size_category_is_the_hub_s(rows: int, category: str) -> None:
    assert size_category(rows) == category


def test_croissant_reads_struct_and_list_columns_of_any_registered_table(
    release: Path, tmp_path: Path
) -> None:
    """A struct column (a quality record, say) reads back as a dict of its members; lists
    as lists; the description is generated from the schema alone."""
    mlc = pytest.importorskip("mlcroissant")
    schema = pa.schema(
        [
            pa.field("source_path", pa.string(), nullable=False),
            pa.field("quality", pa.struct([("score", pa.float64()), ("ok", pa.bool_())])),
            pa.field("tags", pa.list_(pa.string())),
        ]
    )
    rows = [
        {"source_path": "a.txt", "quality": {"score": 0.5, "ok": True}, "tags": ["x", "y"]},
        {"source_path": "b.txt", "quality": {"score": 0.25, "ok": False}, "tags": []},
    ]
    (tmp_path / "scores").mkdir()
    path = tmp_path / "scores" / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    data = path.read_bytes()
    entry = DataFile(
        path="scores/part-00000.parquet",
        rows=2,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    manifest = _manifest(release).model_copy(update={"files": [entry]})
    document = croissant(manifest, {"scores": schema}, ["en"], None)
    (tmp_path / "croissant.json").write_text(json.dumps(document), encoding="utf-8")
    records = list(mlc.Dataset(jsonld=str(tmp_path / "croissant.json")).records("scores"))
    assert [r["scores/source_path"] for r in records] == [b"a.txt", b"b.txt"]
    assert records[0]["scores/quality"] == {
        "scores/quality/score": 0.5,
        "scores/quality/ok": True,
    }
    assert records[0]["scores/tags"] == [b"x", b"y"] and records[1]["scores/tags"] == []


def test_a_registered_table_written_once_is_published_as_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A table the engine writes for the whole corpus (not per shard) is moved up whole; a
    table with no rows at all still gets a file, so readers find its schema."""
    schema = pa.schema([pa.field("source_path", pa.string(), nullable=False)])
    monkeypatch.setitem(contracts.TABLES, "pairs", (schema, object))
    staging = tmp_path / "staging"
    (staging / SHARDS_DIR / "pairs").mkdir(parents=True)
    pq.write_table(
        pa.table({"source_path": ["a.txt"]}, schema=schema),
        staging / SHARDS_DIR / "pairs" / "all.parquet",
    )
    packing = pack_release(staging, 1 << 20)
    assert "pairs/all.parquet" in packing.written
    assert pq.read_table(staging / "pairs" / "all.parquet").column(0).to_pylist() == ["a.txt"]
    assert not (staging / "pairs" / "part-00000.parquet").exists()
    assert (
        pq.read_schema(staging / "documents" / "part-00000.parquet").names == DOCUMENT_SCHEMA.names
    )


def test_the_benchmark_counts_what_a_run_rewrote(tmp_path: Path) -> None:
    from benchmarks import bench_consumers

    source = _source(tmp_path / "src", 12)
    out = str(tmp_path / "out")
    first = bench_consumers.run(str(source), out, 1, {"dedup": "off"})
    # One file per published table (the empty ones too: readers find their schema).
    assert first["processed"] == 13
    assert first["published_files_new_count"] == len(published_tables())
    (source / "doc-003.txt").write_text("A new text for this document, about the city.\n")
    second = bench_consumers.run(str(source), out, 1, {"dedup": "off"})
    assert second["processed"] == 1
    assert second["published_files_new"] == ["documents/part-00000.parquet"]
    figures = bench_consumers.layout((tmp_path / "out" / "current").resolve())
    assert figures["documents_files"] == 1 and figures["documents_row_groups"] == 1


def test_the_shared_chunk_measure_finds_an_edit_in_the_middle(tmp_path: Path) -> None:
    from benchmarks import bench_consumers

    data = random.Random(1).randbytes(1 << 20)
    (tmp_path / "old").write_bytes(data)
    (tmp_path / "new").write_bytes(data[: 1 << 19] + b"an edit" + data[1 << 19 :])
    (tmp_path / "other").write_bytes(random.Random(2).randbytes(1 << 20))
    same = bench_consumers.shared(tmp_path / "old", tmp_path / "new")
    assert 80 < same["shared_percent"] < 100
    assert bench_consumers.shared(tmp_path / "old", tmp_path / "other")["shared_percent"] == 0


def test_row_groups_end_where_the_content_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A row deleted early moves no later row-group boundary: they end at content-defined
    rows, not at a running count."""
    from flows.output import compact

    schema = pa.schema(
        [pa.field("source_path", pa.string(), nullable=False), ("body", pa.string())]
    )
    rows = [{"source_path": f"doc-{i:05d}.txt", "body": "x" * 200} for i in range(3000)]
    monkeypatch.setattr(compact, "ROW_GROUP_BYTES", 40_000)

    def boundaries(kept: list[dict[str, str]], name: str) -> list[str]:
        parts = []
        for n, start in enumerate(range(0, len(kept), 250)):
            path = tmp_path / f"{name}-{n:03d}.parquet"
            pq.write_table(pa.Table.from_pylist(kept[start : start + 250], schema=schema), path)
            parts.append(path)
        target = tmp_path / f"{name}.parquet"
        compact.write_group(parts, schema, target)
        meta = pq.ParquetFile(target)
        firsts = []
        for i in range(meta.metadata.num_row_groups):
            firsts.append(meta.read_row_group(i, columns=["source_path"]).column(0)[0].as_py())
        return firsts

    before = boundaries(rows, "before")
    after = boundaries(rows[:100] + rows[101:], "after")
    assert len(before) > 5
    assert before[1:] == after[1:]
