"""Candidates found block by block are those of the whole corpus, whatever the block size."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import shutil
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.engine import pair_blocks, pair_candidates
from flows.engine.pair_blocks import fact_arrays, shape_codes, structure_pairs
from flows.engine.pair_candidates import CandidateStore, block_bounds, postings
from flows.engine.pairs import (
    Doc,
    PairSettings,
    _profile,
    _profiles,
    apply_pairs,
    candidate_store,
    candidates,
    link,
    url_key,
)
from flows.stages.align import Paragraph
from tests.conftest import REPO, run_release

# Numbers, names and URLs: most held by a few documents of a corpus of a hundred.
ANCHORS = (
    [f"n:{k}" for k in range(150)] + [f"w:name{k}" for k in range(80)] + ["u:x.org", "u:y.org"]
)
LANGUAGES = ("de", "en", "fr", "it")


def _paragraphs(rng: random.Random) -> tuple[Paragraph, ...]:
    return tuple(
        Paragraph(
            p,
            rng.choice([rng.randint(20, 99), rng.randint(100, 900)]),
            frozenset(rng.sample(ANCHORS, rng.randint(0, 3))),
            rng.random() < 0.15,
            rng.randint(1, 7),
            rng.randint(0, 6),
        )
        for p in range(rng.randint(1, 14))
    )


def _translated(rng: random.Random, original: Sequence[Paragraph]) -> tuple[Paragraph, ...]:
    """The paragraphs a little longer or shorter, as a translation's are."""
    return tuple(
        Paragraph(
            p.line,
            max(1, int(p.chars * rng.uniform(0.9, 1.25))),
            p.anchors,
            p.short,
            p.sentences,
            p.clauses,
        )
        for p in original
    )


def _corpus(seed: int, size: int) -> list[Doc]:
    """Unrelated documents and stories published in several languages, some with a URL
    naming their language or a published day and source."""
    rng = random.Random(seed)
    docs: list[Doc] = []
    day = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    while len(docs) < size:
        story = len(docs)
        original = _paragraphs(rng)
        languages = rng.sample(LANGUAGES, rng.choice([1, 1, 2, 4]))
        for language in languages:
            paragraphs = original if language == languages[0] else _translated(rng, original)
            k = len(docs)
            url = (
                f"https://news.example/{language}/story-{story % 7}" if rng.random() < 0.4 else None
            )
            published = day + dt.timedelta(days=story % 5) if rng.random() < 0.3 else None
            source = rng.choice(["wire", None]) if published else None
            docs.append(
                Doc(f"d{k:04d}", f"{k}.txt", language, "f", "", url, published, source, paragraphs)
            )
    return docs[:size]


def _rare_pairs(
    docs: Sequence[Doc], keys: Sequence[AbstractSet[object]], most: int
) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Every pair of documents of different languages sharing a key held by 2 to ``most``
    documents: (shared, keys of the one, keys of the other)."""
    holders: dict[object, int] = {}
    for held in keys:
        for key in held:
            holders[key] = holders.get(key, 0) + 1
    found = {}
    for i, j in itertools.combinations(range(len(docs)), 2):
        if docs[i].language == docs[j].language:
            continue
        shared = sum(1 for key in keys[i] & keys[j] if 2 <= holders[key] <= most)
        if shared:
            found[(i, j)] = (shared, len(keys[i]), len(keys[j]))
    return found


def _reference(docs: Sequence[Doc], settings_: PairSettings) -> dict[tuple[int, int], set[str]]:
    """The candidates, pair by pair over the whole corpus (what the blocks must find)."""
    most = settings_.max_anchor_docs
    found: dict[tuple[int, int], set[str]] = {}
    anchors = [set(doc.anchors) for doc in docs]
    for pair, (shared, one, other) in _rare_pairs(docs, anchors, most).items():
        if shared >= max(1, min(one, other, settings_.min_shared_anchors)):
            found.setdefault(pair, set()).add("anchors")
    urls = [{key} if doc.url and (key := url_key(doc.url, doc.language)) else set() for doc in docs]
    days = [
        {f"{doc.published.date().isoformat()} {doc.source or ''}"} if doc.published else set()
        for doc in docs
    ]
    for signal, keys in (("url", urls), ("published", days)):
        for pair in _rare_pairs(docs, keys, most):
            found.setdefault(pair, set()).add(signal)
    arrays = fact_arrays([doc.kept.facts for doc in docs], [doc.language for doc in docs])
    owner, code = shape_codes(arrays, settings_.structure_from)
    shapes: list[set[object]] = [set() for _ in docs]
    for i, c in zip(owner.tolist(), code.tolist(), strict=True):
        shapes[i].add(c)
    for pair, (shared, one, other) in _rare_pairs(docs, shapes, most).items():
        if shared >= (1 if min(one, other) <= 6 else 2):
            found.setdefault(pair, set()).add("structure")
    n = len(docs)
    window, least = settings_.structure_window, settings_.structure_from
    for key in structure_pairs(arrays, window, least).tolist():
        found.setdefault((key // n, key % n), set()).add("structure")
    return found


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 10_000), st.integers(2, 90), st.integers(2, 12))
def test_candidates_are_every_pair_sharing_enough_rare_keys(
    seed: int, size: int, most: int
) -> None:
    docs = _corpus(seed, size)
    settings_ = PairSettings(max_anchor_docs=most)
    assert candidates(docs, settings_) == _reference(docs, settings_)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 10_000), st.integers(2, 120), st.sampled_from([1, 2, 5, 40, 1 << 20]))
def test_the_block_size_changes_no_candidate_screen_or_link(
    seed: int, size: int, block: int
) -> None:
    docs = _corpus(seed, size)
    whole = PairSettings(block_pairs=1 << 30)
    blocks = PairSettings(block_pairs=block)
    with candidate_store(docs, whole) as one, candidate_store(docs, blocks) as many:
        assert dict(one.items()) == dict(many.items())
        assert sorted(one.screened) == sorted(many.screened)
        # A store links as the dict of its candidates does.
        as_dict = {pair: set(signals) for pair, signals in many.items()}
        assert link(docs, many, blocks) == link(docs, as_dict, blocks)


def test_stories_in_four_languages_link_as_groups_from_the_store() -> None:
    # The group rounds (adopting leftovers, the second round) read the candidates from the
    # store: the same links as from a dict, and groups are found.
    docs = _corpus(4, 160)
    with candidate_store(docs, PairSettings(block_pairs=3)) as store:
        as_dict = {pair: set(signals) for pair, signals in store.items()}
        linked = link(docs, store)
        assert linked == link(docs, as_dict)
    members: dict[int, set[int]] = {}
    for item in linked:
        members.setdefault(item.a, set()).add(item.b)
        members.setdefault(item.b, set()).add(item.a)
    assert max(len(x) for x in members.values()) >= 2  # a story linked in three languages


def test_blocks_cover_the_documents_and_keep_to_the_budget() -> None:
    load = np.array([0, 3, 9, 1, 0, 0, 4, 4, 2], dtype=np.int64)
    for budget in (1, 4, 5, 9, 100):
        bounds = block_bounds(load, budget)
        assert bounds[0][0] == 0 and bounds[-1][1] == len(load)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        for lo, hi in bounds:
            # Over budget only when one document makes more pairs on its own.
            assert load[lo:hi].sum() <= budget or hi - lo == 1
    assert block_bounds(np.zeros(0, dtype=np.int64), 5) == []


def test_the_store_reads_back_what_was_written_and_cleans_up() -> None:
    with CandidateStore(10) as store:
        store.append(
            np.array([3, 17], dtype=np.int64), np.array([1, 8], dtype=np.uint8), store_keys([17])
        )
        store.append(np.array([45], dtype=np.int64), np.array([6], dtype=np.uint8), store_keys([]))
        with pytest.raises(ValueError, match="ascend"):
            store.append(
                np.array([44], dtype=np.int64), np.array([1], dtype=np.uint8), store_keys([])
            )
        store.finish()
        assert len(store) == 3
        assert dict(store.items()) == {
            (0, 3): {"anchors"},
            (1, 7): {"structure"},
            (4, 5): {"url", "published"},
        }
        assert (4, 6) not in store and store.get((4, 6)) is None
        assert store.screened == [(1, 7)]
        folder = Path(store._folder.name)
        assert folder.is_dir()
    assert not folder.exists()


def store_keys(keys: list[int]) -> np.ndarray:
    return np.array(keys, dtype=np.int64)


def _tables(shards: Path) -> dict[str, pa.Table]:
    found = {}
    for name in ("pairs", "bitext", "documents"):
        table = pq.read_table(shards / name)
        key = "source_path" if name == "documents" else "id_a"
        found[name] = table.sort_by(
            [(key, "ascending")] + ([("id_b", "ascending")] if name != "documents" else [])
        )
    return found


def test_the_pairs_step_publishes_the_same_rows_whatever_the_block_size(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for path in sorted((REPO / "tests" / "cases" / "pairs").glob("*.txt")):
        shutil.copy(path, source / path.name)
    out = tmp_path / "out"
    run_release(source, out)
    shards = (out / "current" / "shards").resolve()
    results = []
    for block in (1 << 30, 1):
        staging = tmp_path / f"staging-{block}"
        shutil.copytree(shards, staging)
        _, counts = apply_pairs(staging, PairSettings(block_pairs=block))
        results.append((counts, _tables(staging)))
    (counts_one, tables_one), (counts_many, tables_many) = results
    assert counts_one == counts_many
    assert counts_one["translation_pairs"] >= 1
    for name, table in tables_one.items():
        assert table.equals(tables_many[name]), name


@settings(deadline=None, max_examples=20)
@given(st.integers(0, 10_000), st.integers(1, 80))
def test_the_second_round_reads_each_profile_from_the_arrays_as_python_makes_it(
    seed: int, size: int
) -> None:
    # The second round looks every document's profile up in arrays (no document made).
    docs = _corpus(seed, size)
    profile_of = _profiles(docs)
    assert [profile_of(i) for i in range(size)] == [_profile(doc) for doc in docs]


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_each_documents_shared_codes_are_found_whatever_the_run_sorted_at_once(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    docs = _corpus(9, 150)
    arrays = fact_arrays([doc.kept.facts for doc in docs], [doc.language for doc in docs])
    monkeypatch.setattr(pair_blocks, "_CHUNK_ROWS", chunk)
    doc, code = pair_blocks._document_codes(arrays)
    held: dict[int, set[int]] = {}
    for d, c in zip(arrays.anchor_doc.tolist(), arrays.anchor_code.tolist(), strict=True):
        held.setdefault(c, set()).add(d)
    expected = sorted((d, c) for c, ds in held.items() if len(ds) >= 2 for d in ds)
    assert list(zip(doc.tolist(), code.tolist(), strict=True)) == expected


@pytest.mark.parametrize("run", [1, 2, 3, 1 << 20])
def test_posting_lists_are_the_same_whatever_the_run_sorted_at_once(
    monkeypatch: pytest.MonkeyPatch, run: int
) -> None:
    owner = np.array([0, 0, 0, 0, 1, 2, 2, 4, 4, 4, 5], dtype=np.int32)
    code = np.array([3, 1, 3, 2, 1, 2, 7, 1, 2, 2, 7], dtype=np.int32)
    monkeypatch.setattr(pair_candidates, "_RUN_ROWS", run)
    found = postings(owner, code, 6, 3)
    assert found.sizes.tolist() == [3, 1, 2, 0, 2, 1]  # distinct keys per document
    # Keys of 2 or 3 documents: 1 (0, 1, 4), 2 (0, 2, 4), 7 (2, 5); 3 is in one document.
    assert found.owner.tolist() == [0, 1, 4, 0, 2, 4, 2, 5]
    assert found.after.tolist() == [2, 1, 0, 2, 1, 0, 1, 0]
