"""Duplicates (issue 11): accuracy on planted copies of real text, cost of the corpus step,
and rensa vs datasketch.

Accuracy. Originals are real text from ``--shared`` (never copied into the repo): the
annotated article bodies (``articles/gold``), the two seeds, documents of 12 sentences
from ``language/<code>/sentences.txt`` (including zh, ja, th, ko) and UDHR documents in
many languages (translations of each other). Planted into a source folder in a temporary
directory:

* exact copies: re-encoded (UTF-16; cp1252 where the text allows), CRLF, BOM, renamed;
* near copies: page furniture added, a paragraph dropped, 1 %, 3 % or 5 % of words
  changed (characters, for scripts without spaces), an update paragraph appended;
* hard negatives: pairs of held-out articles that share one quoted paragraph, the
  translations (seeds de/en, UDHR in every language).

The real engine runs on the folder twice: ``dedup = off`` (every cleaned text is published:
the true Jaccard of each copy is computed from them with the same shingles), then
``dedup = near`` on the same output (nothing is processed again: only the corpus step
decides). A copy is found when it and its original end in the same kept document.
Recall is by kind, and for copies whose true Jaccard >= the threshold; precision is over
every dedup rejection; a negative must never be removed.

Cost. ``--docs`` synthetic signatures (10 % planted near copies) are written as facts parts
and the corpus step runs on them in a fresh process (wall time, peak RSS).

Libraries. Signatures per second of rensa and datasketch on the article texts, same
shingles, same permutations, and their agreement on estimated Jaccard.

    uv run python benchmarks/bench_dedup.py [--shared PATH] [--docs 100000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402

from flows.contracts import FACTS_SCHEMA, FactsRow, rows_table  # noqa: E402
from flows.engine.plan import prepare  # noqa: E402
from flows.engine.pool import PoolRunner  # noqa: E402
from flows.engine.run import execute  # noqa: E402
from flows.models import RunParameters  # noqa: E402
from flows.output.release import write_parquet  # noqa: E402
from flows.stages import dedup  # noqa: E402

NO_SPACE_LANGUAGES = ("zh", "ja", "th")
SENTENCE_LANGUAGES = (
    "en",
    "de",
    "fr",
    "es",
    "it",
    "pt",
    "nl",
    "ru",
    "pl",
    "ko",
    *NO_SPACE_LANGUAGES,
)
FURNITURE_TOP = "Share on Facebook\nShare on Twitter\nAdvertisement\n"
FURNITURE_BOTTOM = "\nRead more: the latest headlines\nFollow us on Twitter\nAdvertisement\n"
UPDATE = (
    "\n\nUpdate: This article was updated after publication with a statement from a "
    "spokesperson, who said the figures would be reviewed again next month.\n"
)
EXACT_KINDS = ("utf16", "cp1252", "crlf", "bom", "renamed")
NEAR_KINDS = ("furniture", "paragraph_dropped", "words_1pct", "words_3pct", "words_5pct", "update")


@dataclass(slots=True)
class Planted:
    path: str
    kind: str  # a copy kind, "original", or a negative kind
    group: str  # the original this is a copy of (itself for originals and negatives)


@dataclass(slots=True)
class Corpus:
    files: list[Planted] = field(default_factory=list)

    def add(self, root: Path, path: str, data: bytes, kind: str, group: str) -> None:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.files.append(Planted(path, kind, group))


def _paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n") if p.strip()]


def _originals(shared: Path) -> tuple[dict[str, str], list[str]]:
    """name -> text of the originals, and held-out article texts for the negatives."""
    texts: dict[str, str] = {}
    articles = sorted((shared / "articles" / "gold").glob("*.txt"))
    held_out = [p.read_text(encoding="utf-8") for p in articles[-30:]]
    for path in articles[:-30]:
        texts[f"article-{path.stem[:12]}"] = path.read_text(encoding="utf-8")
    for path in sorted((REPO / "seeds").glob("*.txt")):
        texts[f"seed-{path.stem}"] = path.read_text(encoding="utf-8")
    for code in SENTENCE_LANGUAGES:
        file = shared / "language" / code / "sentences.txt"
        lines = [s.strip() for s in file.read_text(encoding="utf-8").splitlines() if s.strip()]
        for k in range(8):
            chunk = lines[k * 12 : (k + 1) * 12]
            paragraphs = [
                "".join(chunk[i : i + 3])
                if code in NO_SPACE_LANGUAGES
                else " ".join(chunk[i : i + 3])
                for i in range(0, 12, 3)
            ]
            texts[f"sentences-{code}-{k}"] = "\n\n".join(paragraphs) + "\n"
    for folder in sorted((shared / "language-udhr").iterdir()):
        if folder.is_dir():
            paragraphs = (folder / "udhr.txt").read_text(encoding="utf-8").splitlines()[:12]
            texts[f"udhr-{folder.name}"] = "\n\n".join(paragraphs) + "\n"
    return texts, held_out


def _change_words(text: str, share: float, rng: random.Random) -> str:
    """Replace ``share`` of the units (words; characters in scripts without spaces)."""
    units = dedup.units(text)
    spaced = sum(len(u) > 1 for u in units) > len(units) / 2
    if spaced:
        words = text.split(" ")
        for i in rng.sample(range(len(words)), max(1, round(share * len(words)))):
            words[i] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
        return " ".join(words)
    chars = list(text)
    letters = [i for i, c in enumerate(chars) if c.isalpha()]
    for i in rng.sample(letters, max(1, round(share * len(letters)))):
        chars[i] = chr(0x4E00 + rng.randrange(20_000))
    return "".join(chars)


def _drop_paragraph(text: str, rng: random.Random) -> str:
    paragraphs = text.split("\n")
    candidates = [i for i, p in enumerate(paragraphs) if p.strip()]
    if len(candidates) < 3:
        return text
    del paragraphs[rng.choice(candidates[1:-1])]
    return "\n".join(paragraphs)


def plant(root: Path, shared: Path, seed: int = 7) -> Corpus:
    """The labelled source folder."""
    rng = random.Random(seed)
    texts, held_out = _originals(shared)
    corpus = Corpus()
    kinds = [*EXACT_KINDS, *NEAR_KINDS]
    for n, (name, text) in enumerate(sorted(texts.items())):
        corpus.add(root, f"originals/{name}.txt", text.encode("utf-8"), "original", name)
        # Two copies of different kinds per original, in rotation: every kind is planted
        # on articles, sentences and UDHR texts alike.
        for kind in (kinds[(2 * n) % len(kinds)], kinds[(2 * n + 1) % len(kinds)]):
            data = _copy(text, kind, rng)
            if data is not None:
                corpus.add(root, f"copies/{kind}/{name}.txt", data, kind, name)
    # Hard negatives: two different held-out articles sharing one quoted paragraph.
    for k in range(0, len(held_out) - 2, 3):
        quote = max(_paragraphs(held_out[k + 2]), key=len)
        for j in (k, k + 1):
            paragraphs = held_out[j].split("\n")
            paragraphs.insert(len(paragraphs) // 2, f"“{quote}”")
            name = f"quoted-{k}-{j}"
            body = "\n".join(paragraphs).encode("utf-8")
            corpus.add(root, f"negatives/{name}.txt", body, "shared_quote", name)
    return corpus


def _copy(text: str, kind: str, rng: random.Random) -> bytes | None:
    if kind == "utf16":
        return text.encode("utf-16")
    if kind == "cp1252":
        try:
            return text.encode("cp1252")
        except UnicodeEncodeError:
            return text.encode("utf-16-be")  # not representable: another re-encoding
    if kind == "crlf":
        return text.replace("\n", "\r\n").encode("utf-8")
    if kind == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    if kind == "renamed":
        return text.encode("utf-8")
    if kind == "furniture":
        return (FURNITURE_TOP + text + FURNITURE_BOTTOM).encode("utf-8")
    if kind == "paragraph_dropped":
        return _drop_paragraph(text, rng).encode("utf-8")
    if kind.startswith("words_"):
        return _change_words(text, int(kind[6]) / 100, rng).encode("utf-8")
    if kind == "update":
        return (text + UPDATE).encode("utf-8")
    raise ValueError(kind)


def _jaccard(a: str, b: str) -> float:
    x = set(dedup.shingles(dedup.normalise(a), dedup.SIGNATURE.ngram))
    y = set(dedup.shingles(dedup.normalise(b), dedup.SIGNATURE.ngram))
    return len(x & y) / len(x | y) if x | y else 1.0


def accuracy(shared: Path, workers: int, threshold: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as scratch:
        root, out = Path(scratch, "src"), Path(scratch, "out")
        corpus = plant(root, shared)
        planted = {f.path: f for f in corpus.files}
        started = time.perf_counter()
        execute(
            prepare(RunParameters(source=str(root), out=str(out), dedup="off")), PoolRunner(workers)
        )
        first = time.perf_counter() - started
        cleaned = {
            r["source_path"]: r["text"]
            for r in ds.dataset(out / "current" / "documents")
            .to_table(columns=["source_path", "text"])
            .to_pylist()
        }
        params = RunParameters(
            source=str(root), out=str(out), dedup="near", dedup_threshold=threshold
        )
        started = time.perf_counter()
        second_run = execute(prepare(params), PoolRunner(workers))
        second = time.perf_counter() - started
        documents = (
            ds.dataset(out / "current" / "documents")
            .to_table(columns=["id", "source_path"])
            .to_pylist()
        )
        rejected = ds.dataset(out / "current" / "rejected").to_table().to_pylist()
    id_of = {r["source_path"]: r["id"] for r in documents}
    path_of = {v: k for k, v in id_of.items()}
    kept: dict[str, str] = {p: p for p in id_of}
    not_published = {}
    for row in rejected:
        if row["stage"] == "dedup":
            kept[row["source_path"]] = path_of[row["duplicate_of"]]
        else:
            not_published[row["source_path"]] = row["reason"]
    original_path = {f.group: f.path for f in corpus.files if f.kind == "original"}

    by_kind: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    by_source: dict[str, list[bool]] = defaultdict(list)
    buckets: dict[str, list[bool]] = defaultdict(list)
    missed = []
    for f in corpus.files:
        if f.kind in ("original", "shared_quote") or f.path in not_published:
            continue
        source = original_path[f.group]
        if source in not_published:
            continue
        found = kept.get(f.path) == kept.get(source) and f.path in kept
        both = f.path in cleaned and source in cleaned
        jaccard = _jaccard(cleaned[f.path], cleaned[source]) if both else 1.0
        by_kind[f.kind].append((found, jaccard))
        if jaccard >= threshold:
            by_source[_source_kind(f.group)].append(found)
            low = min(0.95, float(np.floor(jaccard * 20) / 20))
            buckets[f"{low:.2f}-{low + 0.05:.2f}"].append(found)
            if not found:
                missed.append((f.path, round(jaccard, 3)))
    decided = [r for r in rejected if r["stage"] == "dedup"]
    wrong = [
        r
        for r in decided
        if planted[r["source_path"]].group != planted[path_of[r["duplicate_of"]]].group
    ]
    negatives_removed = [
        r["source_path"]
        for r in decided
        if planted[r["source_path"]].kind == "shared_quote"
        or planted[r["source_path"]].group != planted[path_of[r["duplicate_of"]]].group
    ]
    recall_at = [found for items in by_kind.values() for found, j in items if j >= threshold]
    translations = [
        f for f in corpus.files if f.kind == "original" and f.group.startswith(("udhr-", "seed-"))
    ]
    # A translation stays apart when the document kept for it is of its own group.
    apart = sum(planted[kept[f.path]].group == f.group for f in translations if f.path in kept)
    return {
        "inputs": len(corpus.files),
        "not_published_by_stages": len(not_published),
        "run_off_s": round(first, 1),
        "rerun_near_s": round(second, 1),
        "rerun_processed": second_run.processed,
        "by_kind": {
            kind: {
                "planted": len(items),
                "recall": round(sum(f for f, _ in items) / len(items), 3),
                "min_jaccard": round(min(j for _, j in items), 3),
                "with_jaccard_ge_threshold": sum(j >= threshold for _, j in items),
                "recall_jaccard_ge_threshold": round(
                    sum(f for f, j in items if j >= threshold)
                    / max(1, sum(j >= threshold for _, j in items)),
                    3,
                ),
            }
            for kind, items in sorted(by_kind.items())
        },
        "recall_jaccard_ge_threshold": round(sum(recall_at) / len(recall_at), 4),
        "copies_jaccard_ge_threshold": len(recall_at),
        "dedup_rejections": len(decided),
        "precision": round(1 - len(wrong) / max(1, len(decided)), 4),
        "wrong": [(r["source_path"], r["detail"]) for r in wrong][:10],
        "negatives_removed": negatives_removed,
        "recall_by_source_jaccard_ge_threshold": {
            k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_source.items())
        },
        "recall_by_jaccard_bucket": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(buckets.items())},
        "missed_with_jaccard_ge_threshold": missed,
        "translations": len(translations),
        "translations_kept_apart": apart,
    }


def _source_kind(group: str) -> str:
    if group.startswith("sentences-"):
        code = group.split("-")[1]
        return f"sentences-{'no-space' if code in NO_SPACE_LANGUAGES else 'spaced'}"
    if group.startswith("udhr-"):
        code = group.split("-")[1]
        return f"udhr-{'no-space' if code in ('zh', 'ja', 'th') else 'spaced'}"
    return group.split("-", maxsplit=1)[0]


# -- cost ------------------------------------------------------------------------------


def write_synthetic(release: Path, docs: int, seed: int = 1) -> None:
    """``docs`` random signatures in facts parts of 1,000, 10 % of them near copies."""
    rng = np.random.default_rng(seed)
    perms = dedup.SIGNATURE.permutations
    sig = rng.integers(0, 2**32, size=(docs, perms), dtype=np.uint32)
    copies = rng.choice(docs, size=docs // 10, replace=False)
    sources = rng.integers(0, docs, size=len(copies))
    for c, s in zip(copies, sources, strict=True):
        row = sig[s].copy()
        changed = rng.choice(perms, size=int(rng.integers(0, 12)), replace=False)
        row[changed] = rng.integers(0, 2**32, size=len(changed), dtype=np.uint32)
        sig[c] = row
    blobs = sig.astype("<u4").tobytes()
    width = perms * 4
    for part in range(0, docs, 1000):
        rows = [
            FactsRow(
                id=f"doc-{k}",
                source_path=f"src/{k:07d}.txt",
                text_sha256=f"{k:064x}",
                norm_sha256=f"{k:064x}",
                minhash=blobs[k * width : (k + 1) * width],
                text_chars=1000 + k % 997,
                language="en",
                has_metadata=bool(k % 2),
                published=None,
                file=f"documents/part-{part // 1000:05d}.parquet",
            )
            for k in range(part, min(docs, part + 1000))
        ]
        write_parquet(
            rows_table(rows, FACTS_SCHEMA), release / "facts" / f"part-{part // 1000:05d}.parquet"
        )


# Peak RSS from VmHWM, not getrusage: ru_maxrss survives fork + exec, so it would report
# this (parent) process's size when that is larger.
_COST = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from flows.engine.corpus import checks_for, corpus_step
decisions = corpus_step(Path(sys.argv[1]), checks_for("near", threshold=0.8))
seconds = time.perf_counter() - started
status = Path("/proc/self/status").read_text().splitlines()
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(hwm / 1024),
                  "decisions": len(decisions)}))
"""


def cost(docs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-dedup-cost-") as scratch:
        write_synthetic(Path(scratch), docs)
        done = subprocess.run(
            [sys.executable, "-c", _COST, scratch],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
    return {"documents": docs, **json.loads(done.stdout)}


# -- rensa vs datasketch ---------------------------------------------------------------


def libraries(shared: Path) -> dict[str, object]:
    from datasketch import MinHash
    from rensa import RMinHash

    texts = [
        p.read_text(encoding="utf-8") for p in sorted((shared / "articles" / "gold").glob("*.txt"))
    ]
    shingled = [dedup.shingles(dedup.normalise(t), dedup.SIGNATURE.ngram) for t in texts]
    perms = dedup.SIGNATURE.permutations
    results: dict[str, object] = {"texts": len(texts)}
    sigs = {}
    for name in ("rensa", "datasketch"):
        started = time.perf_counter()
        for _ in range(3):
            if name == "rensa":
                out = []
                for items in shingled:
                    m = RMinHash(num_perm=perms, seed=42)
                    m.update(items)
                    out.append(np.asarray(m.digest(), dtype=np.uint64))
            else:
                out = []
                for items in shingled:
                    d = MinHash(num_perm=perms, seed=42)
                    d.update_batch([s.encode("utf-8") for s in items])
                    out.append(np.asarray(d.hashvalues, dtype=np.uint64))
        seconds = (time.perf_counter() - started) / 3
        sigs[name] = out
        results[f"{name}_signatures_per_s"] = round(len(texts) / seconds)
    started = time.perf_counter()
    for text in texts:
        dedup.signature(text)
    results["pipeline_signature_per_s_incl_shingling"] = round(
        len(texts) / (time.perf_counter() - started)
    )
    # Agreement: estimated Jaccard of the article pairs most alike under each library.
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    diffs = [
        abs(
            np.mean(sigs["rensa"][i] == sigs["rensa"][j])
            - np.mean(sigs["datasketch"][i] == sigs["datasketch"][j])
        )
        for i, j in pairs
    ]
    results["max_abs_jaccard_difference_between_libraries"] = round(float(max(diffs)), 3)
    return results


# -- no-space scripts: words vs units ----------------------------------------------------


def no_space_scripts(shared: Path) -> dict[str, object]:
    """Estimated Jaccard of a 1 %-changed copy and of an unrelated text, shingled as words
    (whitespace only) or as this module's units (characters for these scripts)."""
    from rensa import RMinHash

    rng = random.Random(3)
    results: dict[str, object] = {}
    for code in NO_SPACE_LANGUAGES:
        lines = (
            (shared / "language" / code / "sentences.txt").read_text(encoding="utf-8").splitlines()
        )
        docs = ["".join(lines[k * 12 : (k + 1) * 12]) for k in range(10)]

        def est(a: str, b: str, by_units: bool) -> float:
            sig = []
            for text in (a, b):
                normal = dedup.normalise(text)
                if by_units:
                    items = dedup.shingles(normal, dedup.SIGNATURE.ngram)
                else:
                    words = normal.split(" ")
                    items = [" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))]
                m = RMinHash(num_perm=112, seed=42)
                m.update(items)
                sig.append(np.asarray(m.digest()))
            return float(np.mean(sig[0] == sig[1]))

        for by_units in (False, True):
            near = [est(d, _change_words(d, 0.01, rng), by_units) for d in docs]
            far = [est(docs[i], docs[i + 1], by_units) for i in range(9)]
            key = f"{code}_{'units' if by_units else 'words'}"
            results[key] = {
                "copy_1pct_mean": round(float(np.mean(near)), 3),
                "copy_1pct_found": sum(j >= 0.8 for j in near),
                "unrelated_max": round(float(max(far)), 3),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "benchmarks")
    parser.add_argument("--docs", type=int, default=100_000, help="signatures for the cost run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["accuracy", "cost", "libraries", "scripts"]
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not (args.shared / "articles" / "gold").is_dir():
        raise SystemExit(f"{args.shared}: no articles/gold (pass --shared)")
    report: dict[str, object] = {
        "signature": dedup.SIGNATURE.describe(),
        "threshold": args.threshold,
    }
    if "libraries" not in args.skip:
        report["libraries"] = libraries(args.shared)
        print(json.dumps({"libraries": report["libraries"]}, indent=2), flush=True)
    if "scripts" not in args.skip:
        report["no_space_scripts"] = no_space_scripts(args.shared)
        print(json.dumps({"no_space_scripts": report["no_space_scripts"]}, indent=2), flush=True)
    if "cost" not in args.skip:
        report["cost"] = cost(args.docs)
        print(json.dumps({"cost": report["cost"]}, indent=2), flush=True)
    if "accuracy" not in args.skip:
        report["accuracy"] = accuracy(args.shared, args.workers, args.threshold)
        print(
            json.dumps({"accuracy": report["accuracy"]}, indent=2, ensure_ascii=False), flush=True
        )


if __name__ == "__main__":
    main()
