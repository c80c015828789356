"""The pairing step's arrays make the decisions of the per-document Python they replace."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.contracts import FACTS_SCHEMA
from flows.engine.pair_blocks import (
    FactArrays,
    fact_arrays,
    shape_codes,
    shared_anchors,
    structure_pairs,
)
from flows.engine.pairs import (
    FACTS_COLUMNS,
    Doc,
    DocList,
    PairSettings,
    _may_link,
    _profile,
    candidates,
    docs_from_facts,
    docs_from_table,
    link,
)
from flows.stages.align import Paragraph, align, quick_evidence
from flows.stages.align_batch import Packed, pack_columns, where_anchors

ANCHORS = ["n:12", "n:2024", "n:7.5", "w:anna", "w:berlin", "u:x.org", "n:99", "w:the"]


def _doc(rng: random.Random, k: int, languages: Sequence[str], anchors: bool = True) -> Doc:
    count = rng.randint(1, 16)
    paragraphs = tuple(
        Paragraph(
            p,
            rng.choice([rng.randint(20, 99), rng.randint(100, 900)]),
            frozenset(rng.sample(ANCHORS, rng.randint(0, 3))) if anchors else frozenset(),
            rng.random() < 0.15,
            rng.randint(1, 7),
            rng.randint(0, 6),
        )
        for p in range(count)
    )
    return Doc(
        f"d{k:03d}", f"{k}.txt", rng.choice(languages), "f", "", None, None, None, paragraphs
    )


def _corpus(seed: int, size: int, languages: Sequence[str] = ("de", "en", "fr")) -> list[Doc]:
    rng = random.Random(seed)
    return [_doc(rng, k, languages) for k in range(size)]


# The per-document Python that the arrays replace, kept here as the reference.
_SCAN, _PLACE, _LONG = 64, 0.06, 12


def _prose_count(doc: Doc) -> int:
    return sum(1 for short in doc.kept.facts.short if not short)


def _agree(one: tuple[float, ...], other: tuple[float, ...], long: bool) -> bool:
    place = _PLACE / 3 if long else _PLACE
    places = sum(1 for axis in range(3) if abs(one[axis] - other[axis]) <= place)
    return places >= (3 if long else 2) and 0.67 <= one[3] / other[3] <= 1.5


def _structure_reference(docs: Sequence[Doc], window: int, least: int) -> set[tuple[int, int]]:
    counts = [_prose_count(doc) for doc in docs]
    keyed = [
        (profile, i)
        for i, doc in enumerate(docs)
        if counts[i] >= least and (profile := _profile(doc)) is not None
    ]
    found = set()
    for axis in range(3):
        order = sorted(keyed, key=lambda item: (item[0][axis], item[1]))
        for x, (profile, i) in enumerate(order):
            for step in (1, -1):
                near = 0
                y = x + step
                while 0 <= y < len(order) and abs(y - x) <= _SCAN:
                    other, j = order[y]
                    y += step
                    if abs(other[axis] - profile[axis]) > _PLACE:
                        break
                    if docs[i].language == docs[j].language:
                        continue
                    near += 1
                    long = min(counts[i], counts[j]) >= _LONG
                    if 0.6 <= counts[i] / counts[j] <= 1 / 0.6 and _agree(profile, other, long):
                        found.add((min(i, j), max(i, j)))
                    if near >= window:
                        break
    return found


def _step_shape(one: int, following: int) -> int:
    ratio = following / max(1, one)
    return 1 if ratio > 1.3 else -1 if ratio < 1 / 1.3 else 0


def _shapes_reference(doc: Doc) -> set[tuple[int, ...]]:
    prose = doc.kept.prose()
    return {
        (
            *(min(sentences, 5) for _, sentences in prose[i : i + 3]),
            _step_shape(prose[i][0], prose[i + 1][0]),
            _step_shape(prose[i + 1][0], prose[i + 2][0]),
        )
        for i in range(len(prose) - 2)
    }


def pack_columns_of(docs: Sequence[Doc]) -> Packed:
    """The Python packing of the documents' paragraphs (what the arrays replace)."""
    return pack_columns([doc.kept.columns() for doc in docs])


def _arrays(docs: Sequence[Doc]) -> FactArrays:
    return fact_arrays([doc.kept.facts for doc in docs], [doc.language for doc in docs])


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.integers(2, 120), st.integers(1, 8), st.integers(3, 6))
def test_sorted_neighbourhoods_in_arrays_are_the_python_ones(
    seed: int, size: int, window: int, least: int
) -> None:
    docs = _corpus(seed, size)
    pairs = structure_pairs(_arrays(docs), window, least)
    found = {(int(p) // size, int(p) % size) for p in pairs}
    assert found == _structure_reference(docs, window, least)


def test_sorted_neighbourhoods_of_many_like_profiles_stop_at_the_scan() -> None:
    # Hundreds of documents of one profile: the scan's limits (window, _SCAN, one language
    # skipped) decide, as in the Python walk.
    rng = random.Random(3)
    shape = (300, 500, 120, 800, 260, 410)
    docs = [
        Doc(
            f"d{k:03d}",
            f"{k}.txt",
            "en" if k % 5 else rng.choice(["de", "fr"]),
            "f",
            "",
            None,
            None,
            None,
            tuple(
                Paragraph(p, chars + rng.randint(0, 3), frozenset(), False, 2, 1)
                for p, chars in enumerate(shape)
            ),
        )
        for k in range(300)
    ]
    pairs = structure_pairs(_arrays(docs), 8, 5)
    found = {(int(p) // len(docs), int(p) % len(docs)) for p in pairs}
    assert found == _structure_reference(docs, 8, 5)
    assert found


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.integers(1, 60))
def test_structure_shingles_in_arrays_are_the_python_ones(seed: int, size: int) -> None:
    docs = _corpus(seed, size)
    owner, code = shape_codes(_arrays(docs), 5)
    by_doc: dict[int, set[int]] = {}
    for i, c in zip(owner.tolist(), code.tolist(), strict=True):
        by_doc.setdefault(i, set()).add(c)
    for i, doc in enumerate(docs):
        expected = _shapes_reference(doc) if _prose_count(doc) >= 5 else set()
        # One code per shingle: as many distinct codes as distinct shingles.
        assert len(by_doc.get(i, set())) == len(expected)
    # Two documents share as many codes as shingles.
    for i in range(min(size, 12)):
        for j in range(i + 1, min(size, 12)):
            if _prose_count(docs[i]) >= 5 and _prose_count(docs[j]) >= 5:
                shared = by_doc.get(i, set()) & by_doc.get(j, set())
                assert len(shared) == len(_shapes_reference(docs[i]) & _shapes_reference(docs[j]))


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10_000), st.integers(2, 70))
def test_shared_anchor_masks_count_what_two_paragraphs_share(seed: int, size: int) -> None:
    docs = _corpus(seed, size)
    rng = random.Random(seed)
    pairs = sorted({tuple(sorted(rng.sample(range(size), 2))) for _ in range(40)})
    left = np.array([i for i, _ in pairs], dtype=np.int64)
    right = np.array([j for _, j in pairs], dtype=np.int64)
    found = shared_anchors(_arrays(docs), left, right)
    for k, (i, j) in enumerate(pairs):
        a, b = docs[i].kept.built(), docs[j].kept.built()
        everything = set(where_anchors(a)) & set(where_anchors(b))
        assert found.count[k] == len(everything)
        for p, one in enumerate(a):
            for q, other in enumerate(b):
                both = one.anchors & other.anchors
                mask = int(found.left[found.left_offsets[k] + p]) & int(
                    found.right[found.right_offsets[k] + q]
                )
                assert mask.bit_count() == len(both)
                numbers = mask & int(found.numbers[k])
                names = mask & int(found.names[k])
                assert numbers.bit_count() == sum(1 for x in both if x.startswith("n:"))
                assert names.bit_count() == sum(1 for x in both if x.startswith("w:"))


def test_the_screen_leaves_out_only_candidates_that_cannot_link_and_keeps_a_translation() -> None:
    # Unrelated documents of one style (structure and anchor candidates, most screened
    # out) and one translation: every candidate the screen leaves out is one whose
    # per-pair alignment stays under the bar, and the translation is linked.
    rng = random.Random(11)
    docs = DocList(_doc(rng, k, ("de", "en", "fr", "it")) for k in range(150))
    original = list(docs[0].kept.built())
    translated = tuple(
        Paragraph(p.line, int(p.chars * 1.15) + 1, p.anchors, p.short, p.sentences, p.clauses)
        for p in original
    )
    docs.append(Doc("z-translation", "z.txt", "xx", "f", "", None, None, None, translated))
    settings_ = PairSettings()
    found = candidates(docs, settings_)
    kept = set(_may_link(docs, found, settings_))
    assert len(kept) < len(found)
    for key in sorted(set(found) - kept):
        left, right = docs[key[0]].kept.built(), docs[key[1]].kept.built()
        quick = min(len(left), len(right)) >= settings_.quick_from
        least = settings_.quick_least if quick else settings_.quick_structure_least
        if (quick or found[key] == {"structure"}) and quick_evidence(left, right) < least:
            continue  # turned away by the linear-time screen, as link's measure does
        evidence = align(left, right, settings_.band, refine_from=settings_.refine_from).evidence
        assert evidence < settings_.link_evidence
    links = {(docs[item.a].id, docs[item.b].id) for item in link(docs, found, settings_)}
    assert (docs[0].id, "z-translation") in links


def test_a_facts_table_gives_the_documents_and_arrays_its_rows_give() -> None:
    # The step reads the facts as a table (columns, no Python object per paragraph); its
    # documents, arrays, candidates and links are those of the rows one by one.
    docs = _corpus(5, 90, ("de", "en", "fr", "und"))
    rows = [
        {
            "id": doc.id,
            "source_path": doc.source_path,
            "language": doc.language,
            "file": doc.file,
            "text_sha256": doc.text_sha256,
            "url": None,
            "published": None,
            "source": None,
            "paragraph_chars": list(doc.kept.facts.chars),
            "paragraph_short": list(doc.kept.facts.short),
            "paragraph_anchors": list(doc.kept.facts.anchors),
            "paragraph_sentences": list(doc.kept.facts.sentences),
            "paragraph_clauses": list(doc.kept.facts.clauses),
            "translation_removed": [],
        }
        for doc in docs
    ]
    rows[3]["paragraph_chars"] = rows[3]["paragraph_short"] = []  # nothing to pair
    rows[3]["paragraph_anchors"] = rows[3]["paragraph_sentences"] = []
    rows[3]["paragraph_clauses"] = []
    schema = pa.schema([FACTS_SCHEMA.field(name) for name in FACTS_COLUMNS])
    whole = pa.Table.from_pylist(rows, schema=schema)
    # In chunks, as read from many shards' parts.
    table = pa.concat_tables([whole.slice(0, 37), whole.slice(37, 20), whole.slice(57)])
    assert table.column("paragraph_anchors").num_chunks == 3
    from_rows, from_table = docs_from_facts(rows), docs_from_table(table)
    assert [d.id for d in from_table] == [d.id for d in from_rows]
    assert all(
        len(a.paragraphs) == len(b.paragraphs) for a, b in zip(from_rows, from_table, strict=True)
    )
    assert [d.kept.facts for d in from_table] == [d.kept.facts for d in from_rows]
    made, expected = from_table.arrays, _arrays(from_rows)
    assert made is not None
    for name in ("language", "anchor_doc", "anchor_paragraph", "anchor_code", "kind"):
        assert np.array_equal(getattr(made, name), getattr(expected, name)), name
    for name in ("starts", "counts", "chars", "short", "sentences", "clauses", "numbers"):
        assert np.array_equal(getattr(made.packed, name), getattr(expected.packed, name)), name
    assert np.array_equal(made.packed.pair_numbers, pack_columns_of(from_rows).pair_numbers)
    found = candidates(from_table)
    assert found == candidates(from_rows)
    assert link(from_table, found) == link(from_rows, found)
