"""Quality signals on labelled texts, the filters' rejections, and the diff between releases."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from flows.engine.plan import prepare
from flows.engine.summary import Summary, merge_all
from flows.errors import ConfigError
from flows.models import QualityThresholds, RunParameters
from flows.stages.quality import PRESETS, SIGNALS, QualitySignals, bins, quality_signals
from flows.stages.types import Reason
from tests.conftest import REPO, run_release

CASES = json.loads((REPO / "tests" / "cases" / "quality_signals.json").read_text("utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["label"] for c in CASES])
def test_signal_on_a_labelled_text(case: dict[str, Any]) -> None:
    signals = quality_signals(case["text"])
    for name, expected in case["expect"].items():
        value = getattr(signals, name)
        if isinstance(expected, float):
            assert value == pytest.approx(expected, abs=1e-3), name
        else:
            assert value == expected, name


def test_every_signal_is_a_reason_a_threshold_field_and_has_bins() -> None:
    assert list(QualityThresholds.model_fields) == list(SIGNALS)
    for name in SIGNALS:
        assert Reason(name).value == name
        assert bins(name)[0] == 0
    for thresholds in PRESETS.values():
        assert set(thresholds) <= set(SIGNALS)


def test_empty_text_has_signals_not_errors() -> None:
    signals = quality_signals("")
    assert signals.word_count == 0 and signals.mean_word_length is None


# One document each preset rejects and the others publish (and one all publish).
PROSE = [
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "Several members raised concerns about rising costs in the transport sector.",
    "After a long debate, they agreed to postpone the final decision until March.",
    "A spokesperson said that the public would be consulted before any changes.",
    "Local businesses welcomed the delay, citing uncertainty over energy prices.",
    "The next meeting is scheduled for the first week of February in the town hall.",
]
DOCUMENTS = {
    "good.txt": "\n".join(PROSE),
    # gopher: under 50 words; c4: two sentences; fineweb passes (long punctuated lines).
    "short.txt": "\n".join(PROSE[:2]),
    # fineweb: no line ends in punctuation; gopher and c4 pass (it is long prose).
    "unpunctuated.txt": "\n".join(line.rstrip(".") for line in PROSE),
}
EXPECTED_REASONS = {
    "gopher": {"short.txt": "word_count"},
    "c4": {"short.txt": "c4_sentences", "unpunctuated.txt": "c4_sentences"},
    "fineweb": {"unpunctuated.txt": "punct_lines"},
}


@pytest.fixture(scope="module")
def quality_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("quality-source")
    for name, text in DOCUMENTS.items():
        (source / name).write_text(text, encoding="utf-8")
    return source


def _rejected(release: Path) -> dict[str, tuple[str, str, str]]:
    rows = {}
    for part in sorted((release / "rejected").glob("*.parquet")):
        for row in pq.ParquetFile(part).read().to_pylist():
            rows[row["source_path"]] = (row["stage"], row["reason"], row["detail"])
    return rows


def test_filters_are_off_by_default_and_the_summary_says_what_each_preset_would_remove(
    quality_source: Path, tmp_path: Path
) -> None:
    result = run_release(quality_source, tmp_path / "out", dedup="off")
    assert result.release is not None and result.manifest is not None
    assert _rejected(result.release) == {}
    for preset, reasons in EXPECTED_REASONS.items():
        assert result.summary.would_remove[preset] == len(reasons), preset
        for reason in set(reasons.values()):
            assert result.summary.would_remove[f"{preset}/{reason}"] == list(
                reasons.values()
            ).count(reason)
    quality = pq.ParquetFile(result.release / "documents" / "part-00000.parquet").read(
        columns=["source_path", "quality"]
    )
    by_path = dict(zip(*(quality.column(c).to_pylist() for c in quality.column_names), strict=True))
    assert by_path["good.txt"] == dataclasses.asdict(quality_signals(DOCUMENTS["good.txt"]))
    assert (
        result.manifest.histograms["quality.word_count"]
        == result.summary.histograms["quality.word_count"]
    )
    assert sum(result.manifest.histograms["quality.word_count"]) == 3


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_rejects_at_stage_quality_with_the_signal_and_its_threshold(
    preset: str, quality_source: Path, tmp_path: Path
) -> None:
    result = run_release(quality_source, tmp_path / "out", dedup="off", quality_filters=preset)
    assert result.release is not None
    rejected = _rejected(result.release)
    assert {path: reason for path, (_, reason, _) in rejected.items()} == EXPECTED_REASONS[preset]
    for path, (stage, reason, detail) in rejected.items():
        assert stage == "quality"
        value = getattr(quality_signals(DOCUMENTS[path]), reason)
        bound = PRESETS[preset][reason]
        limit = bound.min if bound.min is not None and value < bound.min else bound.max
        assert detail.startswith(f"{reason} {value:.4g} ")
        assert detail.endswith(f" {limit:.4g}")


def test_a_thresholds_file(quality_source: Path, tmp_path: Path) -> None:
    thresholds = tmp_path / "strict.toml"
    thresholds.write_text("[word_count]\nmin = 60\n\n[alpha_words]\nmin = 0.5\n", "utf-8")
    result = run_release(
        quality_source, tmp_path / "out", dedup="off", quality_filters=str(thresholds)
    )
    assert result.release is not None
    words = {p: quality_signals(t).word_count for p, t in DOCUMENTS.items()}
    assert {p for p, w in words.items() if w < 60} == set(_rejected(result.release))
    assert all(r[1] == "word_count" for r in _rejected(result.release).values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[word_count\nmin = 1", "not valid TOML"),
        ("[words]\nmin = 1", "words"),
        ("[word_count]\nlow = 1", "low"),
    ],
)
def test_a_bad_thresholds_file_is_a_config_error(
    text: str, message: str, seed_source: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=message):
        prepare(RunParameters(source=str(seed_source), quality_filters=str(path)), publish=False)
    with pytest.raises(ConfigError, match="not off, gopher, c4 or fineweb"):
        prepare(RunParameters(source=str(seed_source), quality_filters="strict"), publish=False)


def test_filters_change_the_per_document_fingerprint(seed_source: Path) -> None:
    plans = [
        prepare(RunParameters(source=str(seed_source), quality_filters=f), publish=False)
        for f in ("off", "gopher", "c4")
    ]
    assert len({p.document_fingerprint for p in plans}) == 3


def test_histograms_merge_by_adding(quality_source: Path, tmp_path: Path) -> None:
    result = run_release(quality_source, tmp_path / "out", dedup="off", shard_size=1)
    merged = merge_all(r.summary for r in result.shard_results)
    assert len(result.shard_results) == 3
    for name, counts in merged.histograms.items():
        assert sum(counts) == sum(
            sum(r.summary.histograms.get(name, [])) for r in result.shard_results
        )
    one = Summary()
    assert one.merge(merged).histograms == merged.histograms == merged.merge(one).histograms


def test_changes_across_two_releases(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name, text in DOCUMENTS.items():
        (source / name).write_text(text, "utf-8")
    out = tmp_path / "out"
    first = run_release(source, out, dedup="off")
    assert first.manifest is not None and first.manifest.changes is not None
    assert first.manifest.changes.model_dump() == {
        "previous": None,
        "added": 3,
        "removed": 0,
        "changed": 0,
        "unchanged": 0,
    }
    (source / "short.txt").unlink()  # removed
    (source / "good.txt").write_text(DOCUMENTS["good.txt"] + "\nOne more line.", "utf-8")
    (source / "new.txt").write_text(PROSE[3], "utf-8")  # added
    second = run_release(source, out, dedup="off")
    assert second.manifest is not None and second.release is not None
    assert second.manifest.changes is not None
    assert second.manifest.changes.model_dump() == {
        "previous": first.manifest.release_id,
        "added": 1,
        "removed": 1,
        "changed": 1,
        "unchanged": 1,
    }
    written = json.loads((second.release / "manifest.json").read_text("utf-8"))
    assert written["changes"]["previous"] == first.manifest.release_id
    assert (second.release / "report.html").is_file()


def test_signals_dataclass_is_the_struct_column() -> None:
    from flows.contracts import DOCUMENT_SCHEMA

    struct = DOCUMENT_SCHEMA.field("quality").type
    assert [struct.field(i).name for i in range(struct.num_fields)] == [
        f.name for f in dataclasses.fields(QualitySignals)
    ]
    assert struct.field("mean_word_length").nullable
    assert not struct.field("word_count").nullable


def test_readme_and_dataset_card_document_every_signal_with_its_anchor() -> None:
    from flows.card import quality_section
    from flows.stages.quality import MEANINGS, anchors

    readme = (REPO / "README.md").read_text("utf-8").split("## Quality signals", 1)[1]
    card = "\n".join(quality_section())
    for name in SIGNALS:
        assert f"| `{name}` | {MEANINGS[name]} | {anchors(name)} |" in readme, name
        assert f"| `{name}` | {MEANINGS[name]} | {anchors(name)} |" in card, name


def test_a_release_with_nothing_published_still_gets_a_report(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "empty.txt").write_bytes(b"")
    result = run_release(source, tmp_path / "out")
    assert result.manifest is not None and result.release is not None
    assert result.manifest.warnings == []
    assert (result.release / "report.html").read_text("utf-8").count("<svg") >= 3


def test_a_damaged_previous_release_is_not_compared_and_the_run_says_so(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "good.txt").write_text(DOCUMENTS["good.txt"], "utf-8")
    out = tmp_path / "out"
    first = run_release(source, out)
    assert first.release is not None
    (first.release / "documents" / "part-00000.parquet").write_bytes(b"not parquet")
    second = run_release(source, out)
    assert second.manifest is not None and second.release is not None
    assert second.manifest.changes is None
    assert any("no diff" in warning for warning in second.manifest.warnings)
    assert "Not compared" in (second.release / "report.html").read_text("utf-8")
