"""Furniture learned from the corpus: the pure parts, and the engine's corpus step (one
document loses nothing, repeated lines are learned, removed, recorded and listed in the
release, an unchanged corpus decides the same, per source where metadata says so)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from flows.engine.corpus import read_facts
from flows.engine.furniture import (
    FURNITURE_FILE,
    REPEATED_LINE,
    FurnitureSettings,
    document_facts,
    learn,
    learn_streamed,
    line_facts,
    remove_learned,
)
from flows.learn import line_hash, normalise
from tests.conftest import run_release

# Articles that share nothing but a site's own labels, which no built-in rule knows.
TOPICS = [
    "harbour",
    "library",
    "railway",
    "orchard",
    "bakery",
    "museum",
    "stadium",
    "bridge",
    "festival",
    "market",
]
LABELS = ["Weekly picks", "Our network of local titles"]


def article(topic: str, labels: bool = True) -> str:
    first = (
        f"The new {topic} opened on Monday after three years of planning, and hundreds of "
        f"residents came to see the {topic} for themselves."
    )
    second = (
        f"Officials said the {topic} would be open every day of the week, and that a second "
        f"phase of the {topic} project would begin in the spring."
    )
    third = f"Local shops near the {topic} reported their busiest weekend of the year so far."
    middle = [LABELS[0]] if labels else []
    bottom = [LABELS[1]] if labels else []
    return "\n\n".join([first, *middle, second, third, *bottom]) + "\n"


def _digest(line: str) -> bytes:
    return line_hash(normalise(line))


def test_line_facts_hold_short_and_non_prose_lines_only() -> None:
    text = article("harbour")
    facts = line_facts(text)
    assert _digest(LABELS[0]) in facts and _digest(LABELS[1]) in facts
    # Long prose paragraphs are left to deduplication.
    paragraphs = text.split("\n\n")
    assert _digest(paragraphs[0]) not in facts and _digest(paragraphs[2]) not in facts
    assert facts == sorted(set(facts))


def test_facts_count_lines_removed_before() -> None:
    removed = [{"rule": REPEATED_LINE, "text": "Weekly picks", "line": 3}]
    assert _digest("Weekly picks") in document_facts("Some text.", removed)
    other = [{"rule": "share", "text": "Weekly picks", "line": 3}]
    assert _digest("Weekly picks") not in document_facts("Some text.", other)


def test_one_document_or_a_few_learn_nothing() -> None:
    one = [(None, line_facts(article("harbour")))]
    assert learn(one) == {}
    few = [(None, line_facts(article(t))) for t in TOPICS[:4]]
    assert learn(few) == {}  # min_docs is 5


def test_repeated_lines_are_learned_per_group() -> None:
    docs: list[tuple[str | None, list[bytes]]] = [
        ("site-a", line_facts(article(t))) for t in TOPICS[:5]
    ]
    docs += [("site-b", line_facts(article(t, labels=False))) for t in TOPICS[5:]]
    learned = learn(docs)
    assert set(learned) == {"site-a"}
    assert learned["site-a"] == {_digest(LABELS[0]), _digest(LABELS[1])}
    # A higher share than the line has is not reached.
    assert learn(docs, FurnitureSettings(min_share=1.01)) == {}


@pytest.mark.parametrize("min_share", [0.0, 0.02, 0.3, 1.01])
@pytest.mark.parametrize("min_docs", [2, 3, 5])
def test_learning_part_by_part_equals_learning_at_once(min_docs: int, min_share: float) -> None:
    """The streamed count (NumPy, one facts part at a time) learns exactly what the
    per-document count learns: lines listed twice in a document count once, a document
    without a source counts with the corpus, a part may be empty."""
    rng = random.Random(min_docs * 100 + int(min_share * 100))
    pool = [line_hash(f"line {k}") for k in range(40)]
    docs: list[tuple[str | None, list[bytes]]] = []
    for _ in range(300):
        hashes = [rng.choice(pool[: rng.randint(1, 40)]) for _ in range(rng.randint(0, 8))]
        docs.append((rng.choice(["a", "b", None, ""]), hashes))
    settings = FurnitureSettings(min_docs=min_docs, min_share=min_share)
    schema = pa.schema([("source", pa.string()), ("line_hashes", pa.list_(pa.binary()))])

    def part(rows: list[tuple[str | None, list[bytes]]]) -> pa.Table:
        return pa.Table.from_pylist(
            [{"source": source, "line_hashes": hashes} for source, hashes in rows], schema
        )

    parts = [part(docs[:0]), part(docs[:120]), part(docs[120:121]), part(docs[121:])]
    expected = learn(docs, settings)
    assert learn_streamed(parts, settings) == expected
    # a slice of a table (offsets into shared buffers) reads the same
    assert learn_streamed([part(docs).slice(0, 150), part(docs).slice(150)], settings) == expected


def test_removal_is_recorded_and_never_empties_a_document() -> None:
    learned = frozenset({_digest(LABELS[0]), _digest(LABELS[1])})
    text = article("harbour").strip()
    stripped = remove_learned(text, learned)
    assert stripped is not None
    assert LABELS[0] not in stripped.text and LABELS[1] not in stripped.text
    assert [(r.rule, r.text) for r in stripped.removed] == [
        (REPEATED_LINE, LABELS[0]),
        (REPEATED_LINE, LABELS[1]),
    ]
    assert text.split("\n")[stripped.removed[0].line - 1] == LABELS[0]
    assert remove_learned("Weekly picks\nOur network of local titles", learned) is None
    assert remove_learned("Nothing learned here.", learned) is None


# --- On the engine's corpus step -----------------------------------------------------------


def _documents(out: Path) -> list[dict[str, Any]]:
    rows = ds.dataset(out / "current" / "documents").to_table().to_pylist()
    return sorted(rows, key=lambda r: str(r["source_path"]))


def _source(tmp_path: Path, topics: list[str], metadata: dict[str, str] | None = None) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for topic in topics:
        (source / f"{topic}.txt").write_text(article(topic), encoding="utf-8")
    if metadata:
        lines = [json.dumps({"file_name": f"{t}.txt", "source": s}) for t, s in metadata.items()]
        (source / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source


def test_a_one_document_corpus_loses_nothing(tmp_path: Path) -> None:
    source = _source(tmp_path, ["harbour"])
    run_release(source, tmp_path / "out")
    (doc,) = _documents(tmp_path / "out")
    assert all(r["rule"] != REPEATED_LINE for r in doc["removed"])
    assert LABELS[0] in doc["text"]
    assert not (tmp_path / "out" / "current" / FURNITURE_FILE).exists()


def test_repeated_lines_are_learned_removed_recorded_and_listed(tmp_path: Path) -> None:
    source, out = _source(tmp_path, TOPICS), tmp_path / "out"
    result = run_release(source, out, shard_size=3)
    docs = _documents(out)
    assert len(docs) == len(TOPICS) == result.summary.published
    for doc in docs:
        assert LABELS[0] not in doc["text"] and LABELS[1] not in doc["text"]
        assert "opened on Monday" in doc["text"]
        learned = [r["text"] for r in doc["removed"] if r["rule"] == REPEATED_LINE]
        assert learned == LABELS
    listed = pq.read_table(out / "current" / FURNITURE_FILE).to_pylist()
    # Most widespread first, then by text; the corpus group has no name.
    assert [(r["group"], r["text"], r["documents"]) for r in listed] == [
        ("", label, len(TOPICS)) for label in sorted(LABELS)
    ]
    # The facts follow the published texts (the duplicates check reads them).
    facts = read_facts(out / "current" / "shards", ["source_path", "text_sha256"]).to_pylist()
    assert {f["text_sha256"] for f in facts} == {d["text_sha256"] for d in docs}

    # An unchanged corpus decides the same. A row the step changed is not reused (the step
    # decides anew from the document's own text), so those documents are processed again.
    again = run_release(source, out, shard_size=3)
    assert again.processed == len(TOPICS)
    assert _documents(out) == docs
    assert pq.read_table(out / "current" / FURNITURE_FILE).to_pylist() == listed


def test_switched_off_by_name(tmp_path: Path) -> None:
    source = _source(tmp_path, TOPICS)
    run_release(source, tmp_path / "out", disabled_rules=[REPEATED_LINE])
    for doc in _documents(tmp_path / "out"):
        assert LABELS[0] in doc["text"]


def test_lines_are_counted_per_source(tmp_path: Path) -> None:
    # Five documents per source: each source's labels are learned within it. With a
    # higher threshold than either source reaches, nothing is learned although the corpus
    # as a whole has ten documents with the labels.
    metadata = {t: ("a.example" if i < 5 else "b.example") for i, t in enumerate(TOPICS)}
    source = _source(tmp_path, TOPICS, metadata)
    run_release(source, tmp_path / "out")
    assert all(LABELS[0] not in d["text"] for d in _documents(tmp_path / "out"))
    run_release(source, tmp_path / "out2", furniture_min_docs=6)
    assert all(LABELS[0] in d["text"] for d in _documents(tmp_path / "out2"))


def test_a_line_no_longer_learned_comes_back_as_from_scratch(tmp_path: Path) -> None:
    source, out = _source(tmp_path, TOPICS), tmp_path / "out"
    run_release(source, out, shard_size=3)
    assert all(LABELS[0] not in d["text"] for d in _documents(out))
    for topic in TOPICS[4:]:  # four documents left: under furniture_min_docs, nothing learned
        (source / f"{topic}.txt").unlink()
    run_release(source, out, shard_size=3)
    incremental = _documents(out)
    assert all(LABELS[0] in d["text"] for d in incremental)
    run_release(source, tmp_path / "cold", shard_size=3)
    assert incremental == _documents(tmp_path / "cold")


def test_copies_of_one_article_do_not_make_its_lines_furniture(tmp_path: Path) -> None:
    source = _source(tmp_path, TOPICS[:1])
    original = (source / f"{TOPICS[0]}.txt").read_text(encoding="utf-8")
    for i in range(6):
        (source / f"copy-{i}.txt").write_text(original, encoding="utf-8")
    run_release(source, tmp_path / "out")
    (kept,) = _documents(tmp_path / "out")
    assert all(r["rule"] != REPEATED_LINE for r in kept["removed"])
    assert LABELS[0] in kept["text"]
