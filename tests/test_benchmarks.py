"""The benchmark harness: a reproducible generator and helpers that measure what they say.

Small corpora (tens of documents) and no timing assertions: speed is printed by the
benchmark scripts, never asserted here.
"""

from __future__ import annotations

import codecs
import json
import os
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks import bench_pipeline as bench
from benchmarks import generate_corpus as gen
from benchmarks import naive_baseline as naive
from flows.stages.language import primary_subtag
from flows.stages.metadata import validate_metadata
from flows.stages.types import Rejection

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
needs_shared = pytest.mark.skipif(
    not (SHARED / "language").is_dir(), reason="../shared/benchmarks is absent"
)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _vocabulary(shared: bool) -> gen.Vocabulary:
    return gen.load_vocabulary(SHARED if shared else None)


@pytest.mark.parametrize("shared", [pytest.param(True, marks=needs_shared), False])
def test_same_seed_gives_a_byte_identical_corpus(tmp_path: Path, shared: bool) -> None:
    options = gen.Options(docs=20, seed=7)
    first = gen.generate(tmp_path / "a", options, _vocabulary(shared))
    second = gen.generate(tmp_path / "b", options, _vocabulary(shared))
    assert first.digest == second.digest
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    other = gen.generate(tmp_path / "c", gen.Options(docs=20, seed=8), _vocabulary(shared))
    assert other.digest != first.digest


def test_document_depends_only_on_seed_and_index(tmp_path: Path) -> None:
    vocabulary = _vocabulary(False)
    options = gen.Options(docs=50, seed=3)
    # Document 30 made alone, first, equals the one the generator writes after the 29
    # before it, even with the global random stream moved on in between.
    alone = gen.document(30, options, vocabulary)
    random.seed(12345)
    random.random()
    gen.generate(tmp_path / "all", options, vocabulary)
    assert (tmp_path / "all" / alone.path).read_bytes() == alone.data
    assert alone.data != gen.document(31, options, vocabulary).data


def test_builtin_vocabulary_when_shared_data_is_absent(tmp_path: Path) -> None:
    vocabulary = gen.load_vocabulary(tmp_path / "nowhere")
    assert vocabulary.source == "built-in"
    assert set(vocabulary.sentences) == set(gen.BUILTIN_WORDS)


@needs_shared
def test_articles_decode_with_their_encoding_and_carry_boilerplate() -> None:
    vocabulary = _vocabulary(True)
    options = gen.Options(docs=300, seed=1, bad_share=0.0)
    docs = [gen.document(i, options, vocabulary) for i in range(options.docs)]
    encodings = {doc.encoding for doc in docs}
    assert {"utf-8", "utf-8-sig", "utf-16"} <= encodings
    assert len(encodings - {"utf-8", "utf-8-sig", "utf-16"}) >= 3  # legacy code pages
    boilerplate = 0
    for doc in docs:
        text = doc.data.decode(doc.encoding)  # strict: the recorded codec is the real one
        size = len(text.encode("utf-8"))
        assert gen.MIN_BYTES * 0.9 <= size <= gen.MAX_BYTES + 6_000, doc.path
        lines = set(text.splitlines())
        boilerplate += bool(lines & {"Share this article", "Advertisement", "Loading"})
        assert doc.path.endswith(f"-{doc.language}.txt")
    assert boilerplate > len(docs) // 4


def test_utf8_profile_writes_only_plain_utf8() -> None:
    vocabulary = _vocabulary(False)
    options = gen.Options(docs=40, seed=2, encodings="utf-8", bad_share=0.0)
    for i in range(options.docs):
        doc = gen.document(i, options, vocabulary)
        assert doc.encoding == "utf-8"
        assert not doc.data.startswith(codecs.BOM_UTF8)
        doc.data.decode("utf-8")


def test_bad_inputs_are_the_four_kinds(tmp_path: Path) -> None:
    vocabulary = _vocabulary(False)
    options = gen.Options(docs=40, seed=0, bad_share=1.0)
    kinds = {gen.document(i, options, vocabulary).kind for i in range(options.docs)}
    assert kinds == set(gen.BAD_KINDS)
    empty = [gen.document(i, options, vocabulary) for i in range(options.docs)]
    assert any(doc.data == b"" for doc in empty)


@needs_shared
def test_metadata_records_validate_against_the_pipeline_model(tmp_path: Path) -> None:
    options = gen.Options(docs=200, seed=4, metadata_share=1.0, bad_share=0.0)
    stats = gen.generate(tmp_path / "c", options, _vocabulary(True))
    lines = (tmp_path / "c" / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == stats.metadata_records == 200
    outcomes = [validate_metadata(json.loads(line), n) for n, line in enumerate(lines, 1)]
    invalid = [o for o in outcomes if isinstance(o, Rejection)]
    # The generator makes about 1 % invalid on purpose (a naive date-time), never more.
    assert len(invalid) <= 10
    assert all("published" in o.detail for o in invalid)
    for line in lines:
        record = json.loads(line)
        assert (tmp_path / "c" / record["file_name"]).is_file()


def test_generate_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(SystemExit):
        gen.generate(tmp_path, gen.Options(docs=2), _vocabulary(False))


def test_generator_cli_writes_a_stamp(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    assert gen.main(["--docs", "5", "--out", str(out), "--shared", str(tmp_path / "none")]) == 0
    stamp = gen.read_stamp(out)
    assert stamp is not None
    assert stamp["docs"] == 5 and stamp["vocabulary"] == "built-in"
    assert sum(stamp["by_encoding"].values()) == 5
    assert len(list(out.rglob("*.txt"))) == 5


@needs_shared
def test_naive_baseline_writes_one_row_per_input(tmp_path: Path) -> None:
    source = tmp_path / "corpus"
    gen.generate(source, gen.Options(docs=20, seed=5, bad_share=0.0), _vocabulary(True))
    result = naive.run(source, tmp_path / "naive.parquet")
    table = pq.read_table(tmp_path / "naive.parquet")
    assert result.docs == table.num_rows == 20
    assert table.schema == naive.SCHEMA
    rows = table.to_pylist()
    # The generator's label is in the file name; langdetect on a whole article agrees.
    agree = sum(
        primary_subtag(row["language"] or "und") == row["source_path"].rsplit("-", 1)[1][:2]
        for row in rows
    )
    assert agree >= 18


def test_naive_baseline_survives_empty_and_binary_inputs(tmp_path: Path) -> None:
    source = tmp_path / "corpus"
    gen.generate(source, gen.Options(docs=12, seed=0, bad_share=1.0), _vocabulary(False))
    result = naive.run(source, tmp_path / "naive.parquet")
    assert result.docs == 12
    assert result.failed >= 1


def test_scan_marks_takes_the_first_of_each_phase() -> None:
    marks: dict[str, float] = {}
    log = [
        "10:00:00 INFO flows.cli: PREFECT_API_URL is not set: starting a temporary Prefect server",
        "10:00:05 | INFO | Task run 'discover' - 120 inputs in 3 shards of up to 50",
        "10:00:06 | INFO | Task run 'process-shard-1' - shard 1: 49 published, 1 rejected",
        "10:00:07 | INFO | Task run 'process-shard-0' - shard 0: 50 published, 0 rejected",
        "10:00:07 | INFO | Flow run 'x' - progress: 2/3 shards done",
        "10:00:08 | INFO | Flow run 'x' - progress: 3/3 shards done",
        "10:00:09 INFO flows.output.release: published release 20261121T100009Z-abcdef12",
    ]
    for second, line in enumerate(log):
        bench.scan_marks(line, float(second), marks)
    assert marks == {
        "server": 0.0,
        "discovered": 1.0,
        "first_shard": 2.0,
        "last_shard": 5.0,
        "published": 6.0,
    }


def test_parse_summary_reads_the_cli_result_line() -> None:
    line = "published 5990 of 6000 inputs (10 rejected, 2 skipped, 0 metadata issues) -> /x\n"
    assert bench.parse_summary("noise\n" + line) == (5990, 10)
    assert bench.parse_summary("nothing here") is None


def test_measure_reports_memory_marks_and_exit_code(tmp_path: Path) -> None:
    script = (
        "import sys, time; block = bytearray(80 * 2**20); "
        "print('shard 0: 3 published, 0 rejected', flush=True); "
        # alive long enough to be sampled (every 50 ms); VmHWM keeps the peak after that
        "time.sleep(0.5); sys.exit(3)"
    )
    result = bench.measure("probe", [sys.executable, "-c", script], 3, dict(os.environ))
    assert result.returncode == 3
    assert "first_shard" in result.marks
    assert result.largest_process_rss_mb >= 80
    assert "shard 0" in result.log
    assert result.wall_s > 0


def test_measure_sums_rss_over_the_process_tree(tmp_path: Path) -> None:
    # Two processes holding 60 MB each at the same time: the tree's peak counts both.
    child = "import time; b = bytearray(60 * 2**20); time.sleep(1.5)"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); "
        "b = bytearray(60 * 2**20); p.wait()"
    )
    result = bench.measure("tree", [sys.executable, "-c", script], 1, dict(os.environ))
    assert result.returncode == 0
    assert result.processes >= 2
    assert result.tree_peak_rss_mb >= 110
    # Each process alone held about 60 MB: the largest is one of them, not the sum.
    assert 60 <= result.largest_process_rss_mb < result.tree_peak_rss_mb


def test_first_part_file_sees_staging_and_new_releases_only(tmp_path: Path) -> None:
    assert not bench.first_part_file(tmp_path, set())
    old = tmp_path / "releases" / "20260101T000000Z-old" / "documents" / "part-00000.parquet"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"")
    earlier = bench.releases_in(tmp_path)
    assert earlier == {"20260101T000000Z-old"}
    assert not bench.first_part_file(tmp_path, earlier)  # a previous run's files
    part = tmp_path / "releases" / ".staging-abc" / "documents" / "part-00000.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"")
    assert bench.first_part_file(tmp_path, earlier)
    part.unlink()
    new = tmp_path / "releases" / "20260102T000000Z-new" / "rejected" / "part-00000.parquet"
    new.parent.mkdir(parents=True)
    new.write_bytes(b"")
    assert bench.first_part_file(tmp_path, earlier)  # finished between two samples


def test_changed_document_is_restored_exactly(tmp_path: Path) -> None:
    source = tmp_path / "corpus"
    gen.generate(source, gen.Options(docs=10, seed=0, bad_share=0.0), _vocabulary(False))
    before = _files(source)
    path = bench.pick_document(source)
    mtime = path.stat().st_mtime_ns
    restore = bench.changed_document(path)
    assert path.read_bytes() != before[path.relative_to(source).as_posix()]
    restore()
    assert _files(source) == before
    assert path.stat().st_mtime_ns == mtime


def test_ensure_corpus_reuses_a_matching_corpus(tmp_path: Path) -> None:
    shared = tmp_path / "no-shared"
    source, took = bench.ensure_corpus(tmp_path, 6, 0, "mixed", shared, sys.executable)
    assert took is not None
    assert bench.count_inputs(source) == 6
    again, took_again = bench.ensure_corpus(tmp_path, 6, 0, "mixed", shared, sys.executable)
    assert again == source and took_again is None


def test_bench_env_unsets_the_api_url_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere:4200/api")
    assert "PREFECT_API_URL" not in bench.bench_env(None, None)
    given = bench.bench_env("http://127.0.0.1:4200/api", Path("/tmp/h"))
    assert given["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert given["PREFECT_HOME"] == "/tmp/h"


def test_summary_lines_compute_the_ratios() -> None:
    naive_run = bench.Measurement("naive", 100, wall_s=60.0, tree_peak_rss_mb=300.0)
    cold = bench.Measurement(
        "cold",
        100,
        wall_s=20.0,
        tree_peak_rss_mb=600.0,
        marks={
            "server": 1.0,
            "discovered": 4.0,
            "first_shard": 8.0,
            "last_shard": 17.0,
            "published": 18.0,
        },
    )
    unchanged = bench.Measurement("unchanged", 100, wall_s=5.0)
    lines = bench.summarize([naive_run, cold, unchanged])
    assert any(line.startswith("cold vs naive: naive wall / cold wall = 3.00x") for line in lines)
    assert any(
        line.startswith("unchanged vs cold: cold wall / unchanged wall = 4.00x") for line in lines
    )
    assert any("first shard processed 8.0 s (40% of its wall time)" in line for line in lines)
    assert any("shards 13.0 s, publish 1.0 s, shutdown 2.0 s" in line for line in lines)
    table = bench.render([naive_run, cold, unchanged])
    assert table.count("\n") == 4


def test_the_size_table_puts_every_target_side_by_side() -> None:
    runs = [
        bench.Measurement("naive 5k", 600, wall_s=30.0, cpu_s=30.0),
        bench.Measurement("validate 5k", 600, wall_s=8.0, cpu_s=12.0),
        bench.Measurement("validate old stages 5k", 600, wall_s=7.0, cpu_s=10.0),
        bench.Measurement(
            "cold 5k",
            600,
            wall_s=10.0,
            cpu_s=15.0,
            marks={"first_shard": 2.5, "last_shard": 8.0},
            load=1.0,
        ),
        bench.Measurement("unchanged 5k", 600, wall_s=2.0, cpu_s=1.0, load=2.0),
        bench.Measurement(
            "cold server 5k", 600, wall_s=9.0, cpu_s=12.0, marks={"first_shard": 1.5}
        ),
        bench.Measurement("unchanged server 5k", 600, wall_s=1.5, cpu_s=1.0),
    ]
    # 1 ms a document of new per-document work (0.6 s) and 2 CPU-s of corpus step, against
    # the 9.4 CPU-s of the rest of the validate run: 28 %.
    shares = {"5k": bench.ShardShares(100, process_ms=3.0, quality_ms=0.5, facts_ms=0.5)}
    rows = bench.render_sizes(runs, [5.0, 20.0], shares)
    assert len(rows) == 5  # header, rule, 5k with a temporary server, 5k with a server, shares
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[:16] == [
        "5k", "temporary", "600", "30.0", "8.0", "10.0", "2.0", "3.00x", "1.25x", "5.00x",
        "2.5", "2.0", "40", "50", "20", "28 %",
    ]  # fmt: skip
    server = [c.strip() for c in rows[3].strip("|").split("|")]
    assert server[:12] == [
        "5k", "server", "600", "30.0", "8.0", "9.0", "1.5", "3.33x", "1.12x", "6.00x", "1.5", "-",
    ]  # fmt: skip
    assert "quality signals 0.50 ms" in rows[4]


def test_validate_exit_one_is_a_finding_not_a_failure() -> None:
    # corpus validate exits 1 when some input would be rejected; the bench accepts that.
    validate = bench.Measurement("validate (no Prefect)", 10, returncode=1, ok_codes=(0, 1))
    assert validate.ok
    assert not bench.Measurement("cold", 10, returncode=1).ok
    assert not bench.Measurement("cold", 10, returncode=-9).ok  # killed after --timeout


def test_the_report_benchmark_draws_a_report_of_merged_summaries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The report benchmark runs on the engine's current signatures (a renamed argument
    broke it once without a test noticing)."""
    from benchmarks import bench_quality

    bench_quality.report_cost(2000)
    out = capsys.readouterr().out
    assert "2000 documents" in out and "changes: previous='before'" in out
