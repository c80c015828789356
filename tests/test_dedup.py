"""Duplicates across the corpus and across releases (issue 11): exact and near copies, the
keep rule, deletion of the kept copy, translations, CJK, reruns that hash no text, off."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds
import pytest

import flows.engine.shard as shard_module
from flows.engine.corpus import UnionFind, candidate_pairs, similarity
from flows.engine.run import RunResult
from flows.models import Manifest
from flows.stages import dedup
from flows.stages.dedup import normalise, shingles, signature, units
from tests.conftest import SEEDS, run_release

ENGLISH = SEEDS / "001_f6e449bcd0ea5a8d.txt"
GERMAN = SEEDS / "000_f191ddaece1908f0.txt"

# Chinese prose written for this test: two different texts and an updated copy of the first.
CHINESE_A = (
    "今年春天，这座城市的图书馆重新开放了。经过两年的修缮，旧楼保留了原来的木质书架，"
    "同时增加了明亮的阅览室和儿童区。馆长说，过去很多居民只是把图书馆当作借书的地方，"
    "现在他们希望这里成为社区的客厅。每个周末，志愿者会给孩子们讲故事，老人们也可以"
    "在这里学习使用电脑。开放第一周，来访人数超过了一万人次，许多家庭在门口排队等候。"
    "一位退休教师说，她年轻时常常在这里读书，看到新的图书馆，她感到非常高兴。"
)
CHINESE_B = (
    "山区的农民今年尝试了新的种植方法。他们在梯田里种植耐旱的小米和豆类，并且用雨水"
    "收集池来灌溉。农业技术员每个月都会上山一次，教大家如何改良土壤、防治病虫害。"
    "虽然开始时很多人担心产量会下降，但是秋天的收成比去年多了三成。村里的年轻人也开始"
    "通过网络把农产品卖到城市，收入明显增加。村长表示，明年还会扩大试验的范围。"
)
CHINESE_A_UPDATED = CHINESE_A + "\n\n更新：图书馆宣布从下个月起延长开放时间，晚上九点闭馆。"


def _run(source: Path, out: Path | None = None, **changes: Any) -> RunResult:
    return run_release(source, out or source.parent / "out", **changes)


def _rows(out: Path, table: str) -> dict[str, dict[str, Any]]:
    rows = ds.dataset(out / "current" / table).to_table().to_pylist()
    return {str(r["source_path"]): r for r in rows}


def _manifest(out: Path) -> Manifest:
    return Manifest.model_validate_json((out / "current" / "manifest.json").read_bytes())


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    shutil.copytree(SEEDS, folder)
    return folder


def _write_copies(folder: Path) -> str:
    """Exact copies of the English seed, as a scraper leaves them (each cleans to a text of
    the seed's length, so the keep order falls through to the path: the seed is kept)."""
    text = ENGLISH.read_text(encoding="utf-8")
    (folder / "copy-utf16.txt").write_bytes(text.encode("utf-16"))
    (folder / "copy-crlf.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    (folder / "copy-bom.txt").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    furniture = "Share on Facebook\nAdvertisement\n" + text + "\nRead more: other stories\n"
    (folder / "copy-furniture.txt").write_text(furniture, encoding="utf-8")
    return text


# -- the pure signature ----------------------------------------------------------------


def test_normalisation_folds_case_and_whitespace_and_composes() -> None:
    assert normalise("  Café\r\n\tWORLD  ") == normalise("cafe\u0301 world") == "café world"


def test_units_are_words_and_single_characters_of_unspaced_scripts() -> None:
    assert units("hello, world 今天 ภาษา") == ["hello", "world", "今", "天", "ภ", "า", "ษ", "า"]
    assert shingles("one two", 5) == ["one two"]
    assert len(shingles("a b c d e f g", 5)) == 3


def test_signature_is_deterministic_and_case_blind() -> None:
    text = ENGLISH.read_text(encoding="utf-8")
    assert signature(text) == signature(text.upper().replace("\n", "\n\n"))
    assert len(signature(text).minhash) == 4 * dedup.SIGNATURE.permutations


def test_lsh_finds_the_similar_pair_and_union_find_joins_chains() -> None:
    text = ENGLISH.read_text(encoding="utf-8")
    near = text + "\nUpdate: the union said on Friday that talks would resume next week."
    sig = dedup.matrix([signature(t).minhash for t in (text, near, GERMAN.read_text())])
    i, j = candidate_pairs(sig, dedup.SIGNATURE.bands, dedup.SIGNATURE.rows)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1)]
    assert similarity(sig, i, j)[0] > 0.9
    groups = UnionFind(4)
    groups.union(0, 1)
    groups.union(2, 1)
    assert groups.components() == [[0, 1, 2]]


def test_cjk_near_copy_is_similar_and_different_texts_are_not() -> None:
    a, b, updated = (
        np.frombuffer(signature(t).minhash, dtype="<u4")
        for t in (CHINESE_A, CHINESE_B, CHINESE_A_UPDATED)
    )
    assert np.mean(a == updated) >= 0.8
    assert np.mean(a == b) < 0.1


# -- through the engine ----------------------------------------------------------------


def test_exact_copies_are_rejected_with_duplicate_of(source: Path, tmp_path: Path) -> None:
    _write_copies(source)
    out = tmp_path / "out"
    result = _run(source, out)
    documents = _rows(out, "documents")
    rejected = _rows(out, "rejected")
    assert set(documents) == {GERMAN.name, ENGLISH.name}
    kept = documents[ENGLISH.name]
    assert kept["duplicates"] == 4
    assert documents[GERMAN.name]["duplicates"] == 0  # the translation is not a copy
    copies = {p: r for p, r in rejected.items() if p.startswith("copy-")}
    assert len(copies) == 4
    for row in copies.values():
        assert (row["stage"], row["reason"]) == ("dedup", "exact_duplicate")
        assert row["duplicate_of"] == kept["id"]
        assert ENGLISH.name in row["detail"]
    manifest = _manifest(out)
    assert manifest.corpus == {"exact_duplicate": 4}
    assert manifest.dedup["ngram"] == 5
    assert manifest.dedup["permutations"] == 112
    assert manifest.dedup["threshold"] == 0.8
    assert manifest.dedup["library"].startswith("rensa ")
    card = (out / "current" / "README.md").read_text(encoding="utf-8")
    assert "## Duplicates" in card
    assert "exact_duplicate" in card
    assert len(result.decisions) == 4


def test_near_copies_are_rejected_and_exact_mode_keeps_them(source: Path, tmp_path: Path) -> None:
    text = ENGLISH.read_text(encoding="utf-8")
    paragraphs = text.split("\n")
    (source / "updated.txt").write_text(
        text + "\nUpdate: the union said on Friday that talks would resume next week.\n"
    )
    dropped = "\n".join(paragraphs[:-2] + paragraphs[-1:])
    (source / "dropped.txt").write_text(dropped)
    (source / "zh-a.txt").write_text(CHINESE_A)
    (source / "zh-b.txt").write_text(CHINESE_B)
    (source / "zh-a-updated.txt").write_text(CHINESE_A_UPDATED)

    out = tmp_path / "out"
    _run(source, out)
    rejected = _rows(out, "rejected")
    documents = _rows(out, "documents")
    # Documented order: no metadata anywhere, no dates, so the longest copy is kept.
    assert set(documents) == {GERMAN.name, "updated.txt", "zh-a-updated.txt", "zh-b.txt"}
    for path, kept in (
        (ENGLISH.name, "updated.txt"),
        ("dropped.txt", "updated.txt"),
        ("zh-a.txt", "zh-a-updated.txt"),
    ):
        assert rejected[path]["reason"] == "near_duplicate", path
        assert rejected[path]["duplicate_of"] == documents[kept]["id"]
        assert "estimated Jaccard " in rejected[path]["detail"]
    assert documents["updated.txt"]["duplicates"] == 2
    assert documents["zh-a-updated.txt"]["duplicates"] == 1

    exact = tmp_path / "exact"
    _run(source, exact, dedup="exact")
    assert len(_rows(exact, "documents")) == 7
    assert _manifest(exact).corpus == {}


def test_dedup_off_publishes_every_copy(source: Path, tmp_path: Path) -> None:
    _write_copies(source)
    out = tmp_path / "out"
    result = _run(source, out, dedup="off")
    documents = _rows(out, "documents")
    assert len(documents) == 6
    assert {row["duplicates"] for row in documents.values()} == {0}
    assert result.decisions == []
    assert _manifest(out).dedup == {"method": "off"}


def test_the_copy_in_the_previous_release_stays_kept(source: Path, tmp_path: Path) -> None:
    text = ENGLISH.read_text(encoding="utf-8")
    out = tmp_path / "out"
    # Release 1: the seed alone. Release 2: a copy that would win the documented order
    # (metadata, earlier date, path sorting first) arrives; the published one stays.
    _run(source, out)
    (source / "0-earlier-copy.txt").write_text(text)
    (source / "metadata.jsonl").write_text(
        json.dumps({"file_name": "0-earlier-copy.txt", "published": "2001-01-01"}) + "\n"
    )
    _run(source, out)
    documents = _rows(out, "documents")
    assert ENGLISH.name in documents
    assert documents[ENGLISH.name]["duplicates"] == 1
    assert (
        _rows(out, "rejected")["0-earlier-copy.txt"]["duplicate_of"]
        == (documents[ENGLISH.name]["id"])
    )

    # Without a previous release, the documented order picks the copy with metadata.
    fresh = tmp_path / "fresh"
    _run(source, fresh)
    assert "0-earlier-copy.txt" in _rows(fresh, "documents")
    assert ENGLISH.name in _rows(fresh, "rejected")


def test_a_deleted_kept_document_is_replaced_by_its_copy(source: Path, tmp_path: Path) -> None:
    _write_copies(source)
    out = tmp_path / "out"
    _run(source, out)
    assert _rows(out, "documents")[ENGLISH.name]["duplicates"] == 4
    (source / ENGLISH.name).unlink()
    _run(source, out)
    documents = _rows(out, "documents")
    # Documented order among equals: longest text, then path; all copies clean to one text.
    assert set(documents) == {GERMAN.name, "copy-bom.txt"}
    assert documents["copy-bom.txt"]["duplicates"] == 3
    rejected = _rows(out, "rejected")
    assert {rejected[p]["duplicate_of"] for p in rejected} == {documents["copy-bom.txt"]["id"]}
    # And when every copy is gone, the count on the kept document goes back to 0.
    for path in source.glob("copy-*.txt"):
        if path.name != "copy-bom.txt":
            path.unlink()
    _run(source, out)
    assert _rows(out, "documents")["copy-bom.txt"]["duplicates"] == 0


def test_translations_are_both_published(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(source, out)
    assert set(_rows(out, "documents")) == {GERMAN.name, ENGLISH.name}
    assert result.decisions == []


def test_an_unchanged_rerun_hashes_no_text(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (source / "zh-a.txt").write_text(CHINESE_A)
    (source / "zh-b.txt").write_text(CHINESE_B)
    out = tmp_path / "out"
    _run(source, out, shard_size=2)
    calls: list[str] = []
    real = dedup.signatures

    def counting(texts: list[str], *args: Any) -> list[dedup.Signature]:
        calls.extend(texts)
        return real(texts, *args)

    monkeypatch.setattr(shard_module, "signatures", counting)
    before = _rows(out, "documents")
    assert _run(source, out, shard_size=2).processed == 0
    assert calls == []
    assert _rows(out, "documents") == before

    # A changed document in a shard: its neighbours' signatures come from the previous
    # facts part, only the changed text is hashed.
    (source / "zh-b.txt").write_text(CHINESE_B + "\n补充：村里还建了新的仓库。")
    result = _run(source, out, shard_size=2)
    assert (result.processed, result.summary.reused) == (1, 3)
    assert len(calls) == 1

    # The copies the corpus step rejected are re-decided (so processed) every run; only
    # they are hashed again.
    calls.clear()
    _write_copies(source)
    _run(source, out, shard_size=2)
    calls.clear()
    result = _run(source, out, shard_size=2)
    assert result.processed == 4
    assert len(calls) == 4


def test_a_signature_parameter_change_makes_every_row_again(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _run(source, out)
    assert _run(source, out).processed == 0
    # The threshold alone changes only the release fingerprint: nothing is processed again.
    assert _run(source, out, dedup_threshold=0.9).processed == 0
    import flows.settings

    monkeypatch.setattr(flows.settings, "SIGNATURE", dedup.SignatureParams(ngram=3))
    assert _run(source, out).processed == 2


def test_dedup_against_another_release(source: Path, tmp_path: Path) -> None:
    other_source = tmp_path / "other-src"
    other_source.mkdir()
    shutil.copy(ENGLISH, other_source / "elsewhere.txt")
    other = tmp_path / "other"
    _run(other_source, other)
    out = tmp_path / "out"
    _run(source, out, dedup_against=[str(other)])
    assert set(_rows(out, "documents")) == {GERMAN.name}
    row = _rows(out, "rejected")[ENGLISH.name]
    assert row["reason"] == "exact_duplicate"
    assert row["duplicate_of"] == _rows(other, "documents")["elsewhere.txt"]["id"]
    assert "dedup_against" in row["detail"]


def test_the_corpus_step_benchmark_runs_on_synthetic_signatures(tmp_path: Path) -> None:
    from benchmarks import bench_dedup

    bench_dedup.write_synthetic(tmp_path, 3_000)
    from flows.engine.corpus import checks_for, corpus_step

    decisions = corpus_step(tmp_path, checks_for("near"))
    # 10 % planted copies; a few of them changed past the threshold, a few copies of copies.
    assert 200 < len(decisions) <= 300
    assert {d.reason.value for d in decisions} == {"near_duplicate"}
