"""Measure the encoding stage on the labelled encoding corpora, and mojibake false repairs.

    uv run python benchmarks/bench_encoding.py [--shared ../shared/benchmarks] [--no-mojibake]

A detection counts when ``flows.stages.encoding.decode`` returns exactly the text that the
labelled codec gives (both normalised the same way: NFC, ``\\n``, no controls); the
NFKC-lenient column also accepts texts equal after NFKC (mapping-table variants such as
GB2312/GB18030 or SHIFT_JIS/CP932 differ in a few compatibility characters). Binary files
(``encoding-chardataset-extra/None/``) count when rejected as ``binary``.

The mojibake section runs the stage's repair check on every line of the language corpus
(lingua's sentences, word pairs, single words; UDHR paragraphs), all of which are correct
UTF-8 text: every repair there is a false repair.
"""

from __future__ import annotations

import argparse
import codecs
import difflib
import statistics
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.stages import encoding as enc  # noqa: E402
from flows.stages.types import Reason, Rejection  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stage import load_module  # noqa: E402

FAMILIES: dict[str, str] = {}
for _family, _codecs in {
    "unicode": "ascii utf-8 utf-8-sig utf-16 utf-16-le utf-16-be utf-32 utf-32-le utf-32-be",
    "cjk": "big5 cp932 cp949 euc_jp euc_kr gb2312 gb18030 johab shift_jis iso2022_jp "
    "iso2022_kr euc-tw",
    "cyrillic": "cp855 cp866 koi8-r mac-cyrillic iso8859-5 cp1251 kz1048 ptcp154",
    "western": "latin-1 cp1252 mac-roman",
    "central-eur/baltic": "iso8859-2 cp1250 cp775 cp852 iso8859-4 cp1257",
    "greek/turk/hebr/arab/thai/viet": "iso8859-6 iso8859-7 iso8859-9 cp1253 cp1254 cp1255 "
    "cp1256 cp1258 tis-620 cp869 cp857",
    "ebcdic": "cp037 cp424",
}.items():
    for _name in _codecs.split():
        FAMILIES[_name if _name == "euc-tw" else codecs.lookup(_name).name] = _family


@dataclass(frozen=True, slots=True)
class Case:
    corpus: str
    label: str  # folder name
    codec: str | None  # Python codec for the label; None for binary or no codec (EUC-TW)
    path: Path


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    exact: bool
    lenient: bool
    detected: str  # codec, or "rejected:<reason>"
    method: str
    confidence: float
    seconds: float
    repairs: tuple[str, ...] = ()


def label_codec(folder: str) -> str | None:
    """``windows-1250-hungarian`` -> ``cp1250``; ``EUC-TW`` (no Python codec) -> None."""
    parts = folder.split("-")
    for cut in range(len(parts), 0, -1):
        try:
            return codecs.lookup("-".join(parts[:cut])).name
        except LookupError:
            continue
    return None


def cases(shared: Path) -> list[Case]:
    found: list[Case] = []
    for corpus in ("encoding", "encoding-chardataset-extra"):
        for folder in sorted(p for p in (shared / corpus).iterdir() if p.is_dir()):
            codec = None if folder.name == "None" else label_codec(folder.name)
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                found.append(Case(corpus, folder.name, codec, path))
    return found


def family(case: Case) -> str:
    if case.label == "None":
        return "binary"
    if case.codec is None:
        return FAMILIES.get(case.label.lower(), "other")
    return FAMILIES.get(case.codec, "other")


def expected_text(case: Case, data: bytes) -> str | None:
    if case.codec is None:
        return None
    text = data.decode(case.codec)
    # The stage strips a BOM that the label's codec (e.g. plain "utf-8") keeps.
    return enc.normalize_text(text.removeprefix("\ufeff"))


def run_case(case: Case, settings: enc.EncodingSettings) -> Outcome:
    data = case.path.read_bytes()
    start = time.perf_counter()
    result = enc.decode(data, settings)
    seconds = time.perf_counter() - start
    if isinstance(result, Rejection):
        exact = case.label == "None" and result.reason == Reason.BINARY
        return Outcome(case, exact, exact, f"rejected:{result.reason}", "-", 0.0, seconds)
    if case.label == "None":
        return Outcome(case, False, False, result.encoding, result.method, 0.0, seconds)
    expected = expected_text(case, data)
    if expected is None:  # EUC-TW: no Python codec, scored by name only
        exact = result.encoding.replace("_", "-").lower() == case.label.lower()
        lenient = exact
    else:
        exact = result.text == expected
        if not exact and getattr(result, "repairs", ()):
            # Mojibake inside the labelled file itself (chardet's utf-8 folder has some):
            # right when the labelled decoding, repaired the same way, is what we published.
            raw = data.decode(case.codec).removeprefix("\ufeff")
            exact = result.text == enc.normalize_text(enc.repair_mojibake(raw)[0])
        lenient = exact or unicodedata.normalize("NFKC", result.text) == unicodedata.normalize(
            "NFKC", expected
        )
    return Outcome(
        case,
        exact,
        lenient or exact,
        result.encoding,
        result.method,
        result.confidence,
        seconds,
        getattr(result, "repairs", ()),
    )


def report_corpus(corpus: str, outcomes: list[Outcome]) -> None:
    rows = [o for o in outcomes if o.case.corpus == corpus]
    by_family: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in rows:
        by_family[family(outcome.case)].append(outcome)
    text = [o for o in rows if o.case.label != "None"]
    size = sum(o.case.path.stat().st_size for o in rows)
    seconds = sum(o.seconds for o in rows)
    exact = sum(o.exact for o in text)
    lenient = sum(o.lenient for o in text)
    print(f"\n## {corpus}: {len(text)} text files, {len(rows) - len(text)} binary")
    order = [*list(dict.fromkeys(FAMILIES.values())), "other", "binary"]
    cells = [
        f"{f} {sum(o.exact for o in by_family[f])}/{len(by_family[f])}"
        for f in order
        if by_family[f]
    ]
    print(" | ".join(cells))
    print(
        f"all text files {exact}/{len(text)} ({exact / len(text):.1%}); "
        f"NFKC-lenient {lenient}/{len(text)} ({lenient / len(text):.1%}); "
        f"{size / 1e6 / seconds:.2f} MB/s; median "
        f"{statistics.median(o.seconds for o in rows) * 1000:.2f} ms/file"
    )
    binary = [o for o in rows if o.case.label == "None"]
    if binary:
        print(
            f"binary detected as not-text: {sum(o.exact for o in binary)}/{len(binary)}"
            + "".join(f"; {o.case.path.name} -> {o.detected}" for o in binary if not o.exact)
        )
    wrong = Counter(
        f"{o.case.label}->{o.detected}" + ("" if not o.lenient else " (NFKC-equal)")
        for o in text
        if not o.exact
    )
    print("wrong: " + "; ".join(f"{k}" + (f" x{n}" if n > 1 else "") for k, n in wrong.items()))
    repaired = [o for o in rows if o.repairs]
    print(
        f"mojibake repaired in {len(repaired)} files"
        + "".join(f"; {o.case.label}/{o.case.path.name} {o.repairs}" for o in repaired)
    )
    methods = Counter(o.method for o in rows)
    print("methods: " + ", ".join(f"{m} {n}" for m, n in methods.most_common()))


def report_confidence(outcomes: list[Outcome]) -> None:
    detected = [o for o in outcomes if o.case.label != "None" and o.method.startswith("chardet")]
    right = sorted(o.confidence for o in detected if o.lenient)
    wrong = sorted(o.confidence for o in detected if not o.lenient)
    print(f"\n## chardet confidence ({len(detected)} chardet-decided text files)")
    if right:
        print(
            f"correct: n={len(right)} min {right[0]:.4f} p5 "
            f"{right[max(0, len(right) // 20 - 1)]:.4f} median {statistics.median(right):.4f}"
        )
    print("wrong: " + ", ".join(f"{c:.4f}" for c in wrong))
    for floor in (0.1, 0.2, 0.3, 0.4, 0.5):
        print(
            f"floor {floor:.2f}: rejects {sum(c < floor for c in right)} correct, "
            f"{sum(c < floor for c in wrong)} wrong"
        )
    low = [o for o in detected if o.confidence < 0.5]
    for o in low:
        print(
            f"  low: {o.case.label}/{o.case.path.name} -> {o.detected} {o.confidence:.4f} "
            f"{'ok' if o.lenient else 'WRONG'}"
        )


def language_lines(shared: Path) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for path in sorted((shared / "language").glob("*/*.txt")):
        kind = f"lingua-{path.stem}"
        items.extend((kind, line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    for path in sorted((shared / "language-udhr").glob("*/udhr.txt")):
        items.extend(
            ("udhr", line) for line in path.read_text(encoding="utf-8").splitlines() if line
        )
    return items


def already_mojibake(before: str, after: str) -> str | None:
    """The codec through which every changed span of ``before`` is exactly the UTF-8 bytes
    of its replacement in ``after`` (so ``before`` held mojibake), or None."""
    from ftfy.chardata import CHARMAP_ENCODINGS

    spans = [
        (before[i1:i2], after[j1:j2])
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after).get_opcodes()
        if op != "equal"
    ]
    for codec in CHARMAP_ENCODINGS:
        if all(old == new.encode("utf-8").decode(codec, errors="replace") for old, new in spans):
            return codec
    return None


def report_mojibake(shared: Path, every: int) -> None:
    repair = getattr(enc, "repair_mojibake", None)
    if repair is None:
        print("\n## mojibake: the stage has no repair_mojibake (nothing is repaired)")
        return
    items = language_lines(shared)
    repaired: list[tuple[str, str, str, tuple[str, ...], str | None]] = []
    start = time.perf_counter()
    for kind, line in items:
        fixed, fixes = repair(line)
        if fixes:
            repaired.append((kind, line, fixed, fixes, already_mojibake(line, fixed)))
    seconds = time.perf_counter() - start
    by_kind = Counter(kind for kind, _ in items)
    false = [r for r in repaired if r[4] is None]
    print(
        f"\n## mojibake repair on {len(items)} lines of the language corpus "
        f"({', '.join(f'{k} {n}' for k, n in sorted(by_kind.items()))}), "
        f"{seconds / len(items) * 1e6:.1f} µs/line"
    )
    print(
        f"lines changed: {len(repaired)}; of which mojibake already in the data (every changed "
        f"span is its replacement's UTF-8 read as a single-byte codec): "
        f"{len(repaired) - len(false)} {dict(Counter(r[4] for r in repaired if r[4]))}; "
        f"false repairs: {len(false)}"
    )
    for kind, line, fixed, fixes, _ in false[:20]:
        print(f"  FALSE {kind}: {line[:90]!r} -> {fixed[:90]!r} {fixes}")
    for kind, line, fixed, fixes, codec in repaired[:5]:
        print(f"  e.g. {kind} ({codec}): {line[:70]!r} -> {fixed[:70]!r} {fixes}")
    # The other direction: every n-th non-ASCII line made into mojibake the usual way (its
    # UTF-8 read as cp1252 or latin-1 and saved again as UTF-8), through the whole stage.
    made = 0
    back = 0
    for _, line in items[::every]:
        if line.isascii():
            continue
        for wrong in ("cp1252", "latin-1"):
            try:
                garbled = line.encode("utf-8").decode(wrong)
            except UnicodeDecodeError:
                continue
            made += 1
            result = enc.decode(garbled.encode("utf-8"))
            back += isinstance(result, enc.Decoded) and result.text == enc.normalize_text(line)
    print(
        f"mojibake made from every {every}th non-ASCII line: {made}; "
        f"decoded back to the original exactly: {back} ({back / max(made, 1):.1%})"
    )


def load_stage(path: Path) -> ModuleType:
    return load_module(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "benchmarks")
    parser.add_argument("--prefix-bytes", type=int, default=65_536)
    parser.add_argument("--stage-file", type=Path, help="another encoding.py (before/after)")
    parser.add_argument("--no-mojibake", action="store_true")
    parser.add_argument("--mojibake-every", type=int, default=10, help="sample for round trips")
    args = parser.parse_args()
    if not (args.shared / "encoding").is_dir():
        parser.error(f"no benchmark data at {args.shared}")
    if args.stage_file is not None:
        global enc  # noqa: PLW0603 - every function here measures the module named by enc
        enc = load_stage(args.stage_file)
    settings = enc.EncodingSettings(prefix_bytes=args.prefix_bytes)
    enc.decode(b"warm up \xc3\xa9", settings)
    found = cases(args.shared)
    outcomes = [run_case(case, settings) for case in found]
    # The machine is shared: chardet alone, timed in the same run, is the yardstick.
    import chardet

    blobs = [case.path.read_bytes() for case in found]
    start = time.perf_counter()
    for blob in blobs:
        chardet.detect(blob, max_bytes=settings.prefix_bytes)
    print(
        f"chardet.detect alone on the same files: "
        f"{sum(map(len, blobs)) / 1e6 / (time.perf_counter() - start):.2f} MB/s"
    )
    for corpus in ("encoding", "encoding-chardataset-extra"):
        report_corpus(corpus, outcomes)
    report_confidence(outcomes)
    if not args.no_mojibake:
        report_mojibake(args.shared, args.mojibake_every)


if __name__ == "__main__":
    main()
