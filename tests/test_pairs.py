"""Translation pairs: linking, paragraph alignment, bitext, the cleaning signal, reuse."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.contracts import BITEXT_SCHEMA, PAIRS_SCHEMA
from flows.engine.pairs import (
    NO_COUNTERPART,
    Doc,
    candidates,
    link,
    paragraph_facts,
    restore,
    take_out,
    url_key,
)
from flows.stages.align import (
    Paragraph,
    align,
    align_linked,
    anchors,
    paragraphs,
    quick_evidence,
)
from flows.stages.align_batch import (
    first_pass_evidence,
    pack,
    shared_arrays,
    shared_masks,
    where_anchors,
)
from flows.stages.align_batch import quick_evidence as batch_quick_evidence
from flows.stages.boilerplate import tidy
from tests.conftest import REPO, run_release

CASES = REPO / "tests" / "cases" / "pairs"
GERMAN_CAPTIONS = [
    "Studie von CVL Economics aus dem Jahr 2024",
    "Streik der Writers Guild 2023",
    "Tom Hanks und Robin Wright im Film „Here“ (2024)",
    "Schauspieler und Drehbuchautoren beim Streik 2023",
]
GERMAN_TITLE = "KI in der Unterhaltungsindustrie und die notwendige sozialistische Antwort"


def _source(tmp_path: Path, *names: str) -> Path:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CASES / name, source / name)
    return source


def _table(out: Path, folder: str) -> list[dict[str, Any]]:
    return pq.read_table(out / "current" / folder).to_pylist()  # type: ignore[no-any-return]


def _by_path(out: Path) -> dict[str, dict[str, Any]]:
    return {row["source_path"]: row for row in _table(out, "documents")}


def _linked(out: Path) -> set[frozenset[str]]:
    ids = {row["id"]: row["source_path"] for row in _table(out, "documents")}
    return {frozenset((ids[p["id_a"]], ids[p["id_b"]])) for p in _table(out, "pairs")}


@pytest.fixture(scope="module")
def seeds_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds-pairs") / "out"
    run_release(REPO / "seeds", out)
    return out


def test_the_seeds_are_one_pair_aligned_paragraph_by_paragraph(seeds_release: Path) -> None:
    (pair,) = _table(seeds_release, "pairs")
    docs = {row["id"]: row for row in _table(seeds_release, "documents")}
    assert {pair["language_a"], pair["language_b"]} == {"de", "en"}
    german = "a" if pair["language_a"] == "de" else "b"
    english = "b" if german == "a" else "a"
    # Every English paragraph has its German counterpart; 46 German paragraphs are aligned.
    assert sorted(i for step in pair["aligned"] for i in step[english]) == list(range(46))
    assert sum(len(step[german]) for step in pair["aligned"]) == 46
    assert pair[f"unaligned_{english}"] == []
    # The title and the four captions are the German paragraphs without a counterpart.
    text = docs[pair[f"id_{german}"]]["removed"]
    found = [r["text"] for r in text if r["rule"] == NO_COUNTERPART and r["text"]]
    assert found == [GERMAN_TITLE, *GERMAN_CAPTIONS]
    assert pair["score"] > 0.99
    assert "anchors" in pair["signals"]
    assert pq.read_schema(seeds_release / "current" / "pairs" / "part-00000.parquet").equals(
        PAIRS_SCHEMA, check_metadata=False
    )


def test_the_seeds_bitext_pairs_german_and_english_paragraphs(seeds_release: Path) -> None:
    bitext = _table(seeds_release, "bitext")
    assert len(bitext) == 46
    first = bitext[0]
    german, english = (
        (first["text_a"], first["text_b"])
        if first["language_a"] == "de"
        else (first["text_b"], first["text_a"])
    )
    assert german.startswith("Und so müssen wir uns bezüglich der Technik")
    assert english.startswith("And hence, with regard to technology")
    assert all(0.0 <= row["score"] <= 1.0 for row in bitext)
    schema = pq.read_schema(seeds_release / "current" / "bitext" / "part-00000.parquet")
    assert schema.equals(BITEXT_SCHEMA, check_metadata=False)


def test_the_captions_go_and_every_real_paragraph_stays(seeds_release: Path) -> None:
    docs = _table(seeds_release, "documents")
    german = next(d for d in docs if d["language"] == "de")
    english = next(d for d in docs if d["language"] == "en")
    lines = [line for line in german["text"].split("\n") if line.strip()]
    assert len(lines) == 46
    assert not any(caption in german["text"] for caption in GERMAN_CAPTIONS)
    assert german["title"] == GERMAN_TITLE
    assert len([line for line in english["text"].split("\n") if line.strip()]) == 46
    assert not any(r["rule"] == NO_COUNTERPART for r in english["removed"])
    assert (seeds_release / "current" / "manifest.json").read_text().count('"translation_pairs": 1')
    card = (seeds_release / "current" / "README.md").read_text(encoding="utf-8")
    assert "## Translation pairs" in card


def test_the_cleaning_signal_can_be_turned_off(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_release(REPO / "seeds", out, translation_cleaning=False)
    german = next(d for d in _table(out, "documents") if d["language"] == "de")
    assert all(caption in german["text"] for caption in GERMAN_CAPTIONS)
    assert not any(r["rule"] == NO_COUNTERPART for r in german["removed"])
    assert len(_table(out, "pairs")) == 1  # still linked and aligned
    assert result.manifest is not None
    assert result.manifest.pairs[NO_COUNTERPART] == 0


def test_pairs_can_be_turned_off(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_release(REPO / "seeds", out, translation_pairs=False)
    assert _table(out, "pairs") == []
    assert _table(out, "bitext") == []


def test_a_pair_in_two_scripts_is_linked_and_aligned(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_release(_source(tmp_path, "en_budget.txt", "ru_budget.txt"), out)
    assert _linked(out) == {frozenset({"en_budget.txt", "ru_budget.txt"})}
    (pair,) = _table(out, "pairs")
    assert [(s["a"], s["b"]) for s in pair["aligned"]] == [([i], [i]) for i in range(7)]
    russian = next(
        row["text_a"] if row["language_a"] == "ru" else row["text_b"]
        for row in _table(out, "bitext")
        if "412" in row["text_a"]
    )
    assert russian.startswith("Во вторник городской совет Спрингфилда")


def test_a_hard_negative_is_left_unlinked(tmp_path: Path) -> None:
    # The same site, the same names and the same tram line, but another article.
    out = tmp_path / "out"
    run_release(_source(tmp_path, "en_budget.txt", "de_tram.txt"), out)
    assert _linked(out) == set()
    assert all(not r["removed"] for r in _table(out, "documents") if r["language"] == "de")


def test_each_document_links_to_one_document_per_language(tmp_path: Path) -> None:
    out = tmp_path / "out"
    names = ("en_budget.txt", "de_budget.txt", "de_tram.txt", "ru_budget.txt")
    run_release(_source(tmp_path, *names), out)
    assert _linked(out) == {
        frozenset({"en_budget.txt", "de_budget.txt"}),
        frozenset({"en_budget.txt", "ru_budget.txt"}),
        frozenset({"de_budget.txt", "ru_budget.txt"}),
    }
    # The German caption has no counterpart in either translation.
    german = _by_path(out)["de_budget.txt"]
    assert [r["text"] for r in german["removed"] if r["rule"] == NO_COUNTERPART and r["text"]] == [
        "Bürgermeisterin Carter vor dem Rathaus"
    ]


def test_unchanged_pairs_are_reused_and_a_new_translation_links(tmp_path: Path) -> None:
    source = _source(tmp_path, "en_budget.txt", "ru_budget.txt")
    out = tmp_path / "out"
    run_release(source, out)
    first = _table(out, "pairs")
    shutil.copy(CASES / "de_budget.txt", source / "de_budget.txt")
    result = run_release(source, out)
    assert result.manifest is not None
    assert result.manifest.pairs["pairs_reused"] == 1
    assert result.processed == 1  # only the new translation's text was processed
    assert frozenset({"en_budget.txt", "de_budget.txt"}) in _linked(out)
    assert frozenset({"en_budget.txt", "ru_budget.txt"}) in _linked(out)
    reused = next(
        p
        for p in _table(out, "pairs")
        if p["id_a"] == first[0]["id_a"] and p["id_b"] == first[0]["id_b"]
    )
    assert reused == first[0]


def _doc(name: str, language: str, text: str) -> Doc:
    facts = paragraph_facts(text)
    return Doc(name, name, language, "f", "", None, None, None, tuple(facts.paragraphs()))


def test_candidates_block_on_anchors_not_on_all_pairs() -> None:
    texts = {
        name: (CASES / name).read_text(encoding="utf-8")
        for name in ("en_budget.txt", "ru_budget.txt")
    }
    docs = [_doc("en", "en", texts["en_budget.txt"]), _doc("ru", "ru", texts["ru_budget.txt"])]
    # Unrelated documents of other languages with nothing in common.
    docs += [
        _doc(f"x{i}", "fr", f"Texte {i} sans chiffres.\n\nUn autre paragraphe.") for i in range(20)
    ]
    found = candidates(docs)
    assert (0, 1) in found and "anchors" in found[(0, 1)]
    assert len(found) < len(docs) * (len(docs) - 1) // 2
    (only,) = link(docs, found)
    assert {docs[only.a].id, docs[only.b].id} == {"en", "ru"}


def test_anchors_are_the_same_in_every_locale() -> None:
    assert "n:204000" in anchors("etwa 204.000 Stellen") and "n:204000" in anchors(
        "some 204,000 jobs"
    )
    assert "n:7.5" in anchors("um 7,5 Prozent") and "n:7.5" in anchors("by 7.5 percent")
    assert "n:2024" in anchors("في عام ٢٠٢٤")  # Arabic-Indic digits


def test_alignment_merges_and_skips() -> None:
    english = "First point is made here, at some length.\n\nSecond point follows it. It has two sentences.\n\nThird."
    german = (
        "Der erste Punkt wird hier gemacht, etwas ausführlicher. Der zweite Punkt folgt ihm. "
        "Er hat zwei Sätze.\n\nBildunterschrift ohne Punkt\n\nDritter."
    )
    result = align(paragraphs(english), paragraphs(german))
    steps = [(bead.a, bead.b) for bead in result.beads]
    assert ((0, 1), (0,)) in steps
    assert result.unaligned("b") == [1]


def test_url_keys_pair_language_folders() -> None:
    assert url_key("https://www.wsws.org/de/articles/2024/x", "de") == url_key(
        "https://www.wsws.org/en/articles/2024/x", "en"
    )
    assert url_key("https://example.org/news/x", "en") is None


def test_when_the_translation_goes_its_captions_come_back_as_from_scratch(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO / "seeds", source)
    out = tmp_path / "out"
    run_release(source, out)
    english = next(p for p in source.iterdir() if p.name.startswith("001_"))
    english.unlink()
    again = run_release(source, out)
    assert again.processed == 0  # the German row is reused, and given its lines back
    alone = tmp_path / "alone"
    run_release(source, alone)
    assert _table(out, "documents") == _table(alone, "documents")
    assert _table(out, "pairs") == []


def test_an_unchanged_rerun_reuses_the_cleaned_seeds(seeds_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(seeds_release.parent / "out", out, symlinks=True)
    before = _table(out, "documents"), _table(out, "pairs"), _table(out, "bitext")
    result = run_release(REPO / "seeds", out)
    assert result.processed == 0
    assert result.manifest is not None and result.manifest.pairs["pairs_reused"] == 1
    assert (_table(out, "documents"), _table(out, "pairs"), _table(out, "bitext")) == before


_TIDY_LINES = st.lists(
    st.one_of(
        st.just(""), st.text(alphabet="ab .", min_size=1, max_size=5).map(lambda s: "x" + s.strip())
    ),
    min_size=1,
    max_size=12,
)


@given(_TIDY_LINES, st.sets(st.integers(0, 11)))
def test_taking_paragraphs_out_is_undone_exactly(lines: list[str], gone: set[int]) -> None:
    text = tidy("\n".join(lines))
    if not text:
        return
    result = take_out(text, gone)
    if result is None:
        return
    cleaned, taken = result
    assert cleaned == tidy(cleaned)  # no doubled or edge blank lines
    entries = [{"rule": r.rule, "text": r.text, "line": r.line} for r in taken]
    assert restore(cleaned, entries) == text


def test_translations_of_one_translation_are_linked_as_a_group() -> None:
    names = ("en_budget.txt", "de_budget.txt", "ru_budget.txt", "de_tram.txt")
    docs = [
        _doc(name.split(".")[0], name[:2], (CASES / name).read_text(encoding="utf-8"))
        for name in names
    ]
    # Only the English document was proposed with each translation, and with the stranger.
    found = {(0, 1): {"anchors"}, (0, 2): {"anchors"}, (0, 3): {"anchors"}}
    linked = {
        frozenset((docs[item.a].id, docs[item.b].id)): item.signals for item in link(docs, found)
    }
    assert linked == {
        frozenset({"en_budget", "de_budget"}): ("anchors",),
        frozenset({"en_budget", "ru_budget"}): ("anchors",),
        frozenset({"de_budget", "ru_budget"}): ("group",),
    }


UDHR = REPO.parent / "shared" / "benchmarks" / "language-udhr"


@pytest.mark.skipif(not UDHR.is_dir(), reason="the shared UDHR benchmark is absent")
def test_a_translation_no_signal_proposed_joins_its_group() -> None:
    from benchmarks.bench_pairs import load

    texts = load(UDHR)
    members = ("en", "de", "fr", "it", "ru")
    docs = [_doc(f"art-{lang}", lang, "\n\n".join(texts[lang][8:15])) for lang in members]
    # An edited translation (a paragraph dropped, two merged, a caption added) that no
    # signal proposed with any member, and a stranger: another passage, same treatment.
    polish = texts["pl"][8:15]
    edited = [
        polish[0],
        "Photo: United Nations 1948",
        polish[1],
        polish[2],
        polish[4] + " " + polish[5],
        polish[6],
    ]
    lithuanian = texts["lt"][24:31]
    stranger = [
        lithuanian[0],
        lithuanian[1],
        lithuanian[2],
        lithuanian[4] + " " + lithuanian[5],
        lithuanian[6],
    ]
    docs.append(_doc("art-pl", "pl", "\n\n".join(edited)))
    docs.append(_doc("other-lt", "lt", "\n\n".join(stranger)))
    found: dict[tuple[int, int], set[str]] = {
        (i, j): {"anchors"} for i in range(5) for j in range(i + 1, 5)
    }
    linked = {frozenset((docs[item.a].id, docs[item.b].id)) for item in link(docs, found)}
    assert {frozenset({"art-pl", f"art-{lang}"}) for lang in members} <= linked
    assert not any("other-lt" in pair for pair in linked)
    assert len(linked) == 15  # the six documents, every pair linked


@pytest.mark.skipif(not UDHR.is_dir(), reason="the shared UDHR benchmark is absent")
def test_a_linked_pair_is_aligned_despite_a_dropped_long_paragraph() -> None:
    from benchmarks.bench_pairs import load

    texts = load(UDHR)
    # English drops its fifth paragraph (the longest): the whole-text length ratio is off.
    english = [line for k, line in enumerate(texts["en"][:7]) if k != 4]
    left = paragraphs("\n\n".join(texts["lt"][:7]))
    right = paragraphs("\n\n".join(english))
    steps = [(bead.a, bead.b) for bead in align_linked(left, right).aligned]
    assert steps == [
        ((0,), (0,)),
        ((1,), (1,)),
        ((2,), (2,)),
        ((3,), (3,)),
        ((5,), (4,)),
        ((6,), (5,)),
    ]


def _article(rng: random.Random, title: str, shape: Sequence[tuple[int, int]]) -> str:
    """A title and paragraphs of about the given lengths and sentence counts, of random
    lower-case words: nothing to anchor on, only structure."""
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda"]
    lines = [title]
    for chars, count in shape:
        sentences = []
        for _ in range(count):
            sentence: list[str] = []
            while sum(len(w) + 1 for w in sentence) < chars / count:
                sentence.append(rng.choice(words))
            sentences.append(" ".join(sentence) + ".")
        lines.append(" ".join(sentences))
    return "\n\n".join(lines)


def test_unrelated_short_texts_of_like_paragraphs_are_not_paired() -> None:
    # Documents of a title and three paragraphs whose lengths and sentence counts match
    # from one language to the other (what a thousand unrelated 1 kB documents of one
    # style offer by chance): structure alone is no evidence for so few paragraphs.
    rng = random.Random(7)
    docs = []
    for k in range(12):
        shape = [(rng.randint(150, 700), rng.randint(1, 6)) for _ in range(3)]
        for language in ("de", "fr"):
            scaled = [(int(chars * (1.1 if language == "de" else 1.0)), n) for chars, n in shape]
            docs.append(_doc(f"{language}{k}", language, _article(rng, "kurzer titel", scaled)))
    assert link(docs, candidates(docs)) == []


Facts = tuple[int, bool, int, int, str]


def _facts_doc(name: str, language: str, rows: Sequence[Facts]) -> Doc:
    found = tuple(
        Paragraph(k, chars, frozenset(anchors.split()), short, sentences, clauses)
        for k, (chars, short, sentences, clauses, anchors) in enumerate(rows)
    )
    return Doc(name, name, language, "f", "", None, None, None, found)


def test_structure_alone_links_only_on_strong_evidence() -> None:
    # Two unrelated documents of the generated 5 kB benchmark corpus (their facts: length,
    # short, sentences, clause marks, anchors; none shared): their paragraphs agree enough
    # for evidence 5.6, which chance gives among tens of thousands of structure candidates.
    russian = _facts_doc(
        "ru",
        "ru",
        [
            (43, True, 1, 0, ""),
            (113, False, 2, 2, ""),
            (210, False, 3, 6, ""),
            (552, False, 7, 10, ""),
            (461, False, 6, 5, "w:beachyhead"),
            (510, False, 6, 10, "n:.5 n:20"),
        ],
    )
    portuguese = _facts_doc(
        "pt",
        "pt",
        [
            (58, True, 1, 0, "w:vicente"),
            (212, False, 3, 1, "w:restelo"),
            (343, False, 3, 5, "w:almeida w:lopes"),
            (898, False, 7, 9, "w:cabo w:verde"),
            (336, False, 3, 5, "n:2013 n:429 n:47.3 n:548 n:60.4 w:messi"),
            (390, False, 3, 3, "n:23 w:bilbau"),
            (851, False, 6, 17, "n:50 n:60 w:portugal"),
        ],
    )
    docs = [russian, portuguese]
    assert 5.0 <= align(russian.paragraphs, portuguese.paragraphs).evidence < 10.0
    assert link(docs, {(0, 1): {"structure"}}) == []
    # The same evidence with the same day and source (or a shared URL) links them.
    assert len(link(docs, {(0, 1): {"published"}})) == 1


def test_shared_names_alone_need_the_evidence_structure_needs() -> None:
    # Unrelated texts about one person share the person's names, not their numbers.
    english = paragraphs(
        "A short title\n\nNelson Mandela spoke in the morning. Then he left.\n\n"
        "The crowd waited for hours, and nobody knew why the hall stayed closed."
    )
    german = paragraphs(
        "Ein kurzer Titel\n\nNelson Mandela kam am Abend an. Dann sprach er.\n\n"
        "Die Menge wartete lange, und niemand wusste, warum der Saal geschlossen blieb."
    )
    docs = [
        Doc("en", "en", "en", "f", "", None, None, None, tuple(english)),
        Doc("de", "de", "de", "f", "", None, None, None, tuple(german)),
    ]
    evidence = align(english, german).evidence
    assert 5.0 <= evidence < 10.0
    assert link(docs, {(0, 1): {"anchors"}}) == []
    assert len(link(docs, {(0, 1): {"url"}})) == 1


@settings(deadline=None, max_examples=60)  # numpy's first calls are slow on a busy machine
@given(
    st.lists(
        st.tuples(st.integers(1, 900), st.booleans(), st.integers(1, 6), st.integers(0, 6)),
        min_size=1,
        max_size=14,
    ),
    st.lists(
        st.tuples(st.integers(1, 900), st.booleans(), st.integers(1, 6), st.integers(0, 6)),
        min_size=1,
        max_size=14,
    ),
    st.lists(st.sampled_from(["n:12", "n:2024", "w:anna", "u:x.org", "n:7.5"]), max_size=8),
)
def test_the_array_screen_gives_align_s_evidence(
    left: list[tuple[int, bool, int, int]],
    right: list[tuple[int, bool, int, int]],
    anchor_pool: list[str],
) -> None:
    def side(rows: list[tuple[int, bool, int, int]], offset: int) -> list[Paragraph]:
        return [
            Paragraph(
                k,
                chars,
                frozenset(anchor_pool[(k + offset) % len(anchor_pool) :][:2])
                if anchor_pool
                else frozenset(),
                short,
                sentences,
                clauses,
            )
            for k, (chars, short, sentences, clauses) in enumerate(rows)
        ]

    a, b = side(left, 0), side(right, 1)
    packed = pack([a, b])
    where_a, where_b = where_anchors(a), where_anchors(b)
    shared = frozenset(where_a) & frozenset(where_b)
    masks = shared_arrays(
        [shared_masks(where_a, len(a), where_b, len(b), shared) if shared else None]
    )
    pair = np.array([0]), np.array([1])
    for band in (0, 6):
        expected = align(a, b, band, refine=False).evidence
        found = first_pass_evidence(packed, *pair, masks, band)[0]
        assert found == pytest.approx(expected, abs=1e-9)
    quick = batch_quick_evidence(packed, *pair, masks)[0]
    assert quick == pytest.approx(quick_evidence(a, b), abs=1e-9)


def test_documents_sharing_anchors_only_within_one_language_publish(tmp_path: Path) -> None:
    # Every anchor shared here is shared by documents of one language: no candidate pair
    # (an empty array of shared-key pairs once crashed the run).
    source = tmp_path / "src"
    source.mkdir()
    body = (
        "The committee met on 14 March 2019 to discuss the 5034 pipeline and its 72 valves. "
        "Members agreed that the inspection of the northern section should start soon."
    )
    for name in ("a", "b", "c"):
        (source / f"{name}.txt").write_text(f"Report {name}\n\n{body}\n", encoding="utf-8")
    result = run_release(source, tmp_path / "out", dedup="off")
    assert result.summary.published == 3
    assert _table(tmp_path / "out", "pairs") == []
