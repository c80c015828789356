"""C1 controls that stand for cp1252 punctuation are repaired and recorded."""

from __future__ import annotations

import pytest

from flows.contracts import SourceDocument
from flows.stages.compose import StageConfig, process_document
from flows.stages.encoding import C1_REPAIR, Decoded, EncodingSettings, decode, repair_c1_controls

TEXT = "Le minist\u00e8re d\x92Agriculture a publi\u00e9 \x93son\x94 rapport \x96 enfin."
FIXED = "Le minist\u00e8re d\u2019Agriculture a publi\u00e9 \u201cson\u201d rapport \u2013 enfin."


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_c1_punctuation_is_repaired_and_recorded(codec: str) -> None:
    result = decode(TEXT.encode(codec))
    assert isinstance(result, Decoded)
    assert result.text == FIXED
    assert C1_REPAIR in result.repairs


def test_the_repair_reaches_text_repairs(default_config: StageConfig) -> None:
    data = (TEXT + "\n\n" + TEXT).encode("utf-8")
    doc = SourceDocument(source_path="x.txt", doc_id="x", size=len(data))
    row = process_document(doc, data, default_config)
    assert "d\u2019Agriculture" in getattr(row, "text", "")
    assert C1_REPAIR in getattr(row, "text_repairs", ())


def test_nel_stays_a_line_break_and_undefined_bytes_go() -> None:
    # U+0085 is EBCDIC's line break, not cp1252's ellipsis; U+0081 has no cp1252 meaning.
    assert repair_c1_controls("a\x85b\x81c") == ("a\x85b\x81c", False)
    padding = " Plain words in a plain sentence." * 10
    result = decode(("One line here.\x85Another line\x81 here." + padding).encode("utf-8"))
    assert isinstance(result, Decoded)
    assert result.text.startswith("One line here.\nAnother line here.")
    assert result.repairs == ()


def test_clean_text_is_untouched() -> None:
    assert repair_c1_controls(FIXED) == (FIXED, False)


def test_switched_off_with_mojibake_repair() -> None:
    padding = " Plain words in a plain sentence." * 40
    data = (TEXT + padding).encode("utf-8")
    result = decode(data, EncodingSettings(repair_mojibake=False))
    assert isinstance(result, Decoded)
    assert result.repairs == ()
    assert "dAgriculture" in result.text
