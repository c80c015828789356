"""The release report: one self-contained HTML file of plots and the diff against the last release.

Everything is drawn from the merged per-shard counts (:class:`~flows.engine.summary.Summary`)
and the two manifests, never from the texts, so the report costs the same at a hundred or a
million documents. Plots are matplotlib figures rendered to SVG and inlined: the file holds
no script, font, image or link to anything outside itself, so it opens on an air-gapped
machine and from a browser's file view. matplotlib is imported here only, when a report is
drawn.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flows.engine.summary import Summary
from flows.models import Manifest
from flows.stages.quality import LENGTH_BINS, MEANINGS, PRESETS, SIGNALS, bins

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REPORT = "report.html"
_PRESET_COLOURS = {"gopher": "#d62728", "c4": "#2ca02c", "fineweb": "#9467bd"}
_NOW, _THEN = "#1f77b4", "#ff7f0e"
_MAX_BARS = 25
_MAX_LENGTH_LANGUAGES = 8


@dataclass(frozen=True, slots=True)
class Pairs:
    """What a release's optional ``pairs`` table holds, for one plot: counts by a label."""

    title: str
    counts: Mapping[str, int]


def _figure(
    width: float = 7.0, height: float = 3.2, labels: Sequence[str] = ()
) -> tuple[Figure, Axes]:
    """A figure with fixed margins (in inches, wide enough for the longest bar label):
    matplotlib's constrained layout would cost half of the report's time."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    longest = max((len(label) for label in labels), default=0)
    left = min(0.45 * width, 0.6 + 0.065 * longest)
    figure.subplots_adjust(
        left=left / width, right=1 - 0.25 / width, bottom=0.5 / height, top=1 - 0.12 / height
    )
    ax = figure.add_subplot()
    ax.tick_params(labelsize=8)
    return figure, ax


_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
# No RDF block (creator URL, date): the same counts give the same file.
_NO_METADATA: dict[str, Any] = {"Date": None, "Creator": None, "Format": None, "Type": None}


def _svg(figure: Figure, number: int) -> str:
    import matplotlib

    buffer = io.StringIO()
    # Unique ids per figure (they share one HTML document) and no date: same counts, same file.
    with matplotlib.rc_context({"svg.hashsalt": f"figure-{number}", "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    svg = _PROLOG.sub("", buffer.getvalue(), count=1)
    # Inline SVG in HTML needs no namespace declarations; without them the file names no URL.
    return _XMLNS.sub("", svg)


def _bars(ax: Axes, counts: Mapping[str, int], colour: str = _NOW) -> None:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_BARS]
    labels = [label for label, _ in reversed(items)]
    values = [value for _, value in reversed(items)]
    ax.barh(labels, values, color=colour)
    for position, value in enumerate(values):
        ax.annotate(
            str(value),
            (value, position),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlabel("documents")
    ax.margins(x=0.15)


def _height(n: int) -> float:
    return max(1.6, 0.6 + 0.22 * min(n, _MAX_BARS))


def _positions(edges: Sequence[float], value: float) -> float:
    """Where ``value`` falls on a bin-index axis (each bin one unit wide)."""
    for i in range(len(edges) - 1):
        if value < edges[i + 1]:
            return i + max(0.0, (value - edges[i]) / (edges[i + 1] - edges[i]))
    return len(edges) - 0.5


def _edge_labels(edges: Sequence[float]) -> list[str]:
    return [
        f"{edge:g}" if edge < 1e3 else f"{edge / 1e3:g}k" if edge < 1e6 else f"{edge / 1e6:g}M"
        for edge in edges
    ]


def _histogram(
    ax: Axes, edges: Sequence[float], counts: Sequence[int], previous: Sequence[int] | None
) -> None:
    ax.bar(
        range(len(counts)),
        counts,
        width=1.0,
        align="edge",
        color=_NOW,
        alpha=0.8,
        label="this release",
    )
    if previous is not None and len(previous) == len(counts):
        xs = [*range(len(previous)), len(previous)]
        ax.stairs(previous, xs, color=_THEN, linewidth=1.5, label="previous release")
    step = max(1, len(edges) // 10)
    ax.set_xticks(range(0, len(edges), step), _edge_labels(edges)[::step], fontsize=7)
    ax.set_xlim(0, len(edges))
    ax.set_ylabel("documents")


@dataclass(slots=True)
class _Report:
    manifest: Manifest
    summary: Summary
    previous: Manifest | None
    pairs: Pairs | None
    sections: list[str | None]
    figures: int = 0
    part: tuple[int, int] = (0, 1)  # this one draws plots k+1, k+1+n, ... of (k, n)

    def drawn_here(self) -> bool:
        """Whether this part draws the next plot (building a figure costs about as much
        as drawing it: the quality histograms skip building the others' figures)."""
        drawn, parts = self.part
        return self.figures % parts == drawn

    def skip(self) -> None:
        """The next plot, drawn by another part."""
        self.figures += 1
        self.sections.append(None)

    def plot(self, name: str, title: str, figure: Figure) -> None:
        if not self.drawn_here():
            self.skip()
            return
        self.figures += 1
        svg = _svg(figure, self.figures)
        self.sections.append(
            f'<figure class="plot" data-plot="{html.escape(name)}">'
            f"<figcaption>{html.escape(title)}</figcaption>{svg}</figure>"
        )

    def text(self, markup: str) -> None:
        self.sections.append(markup)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _median(edges: Sequence[float], counts: Sequence[int]) -> str:
    """The bin holding the median document, as a range (distributions are binned)."""
    total = sum(counts)
    if not total:
        return "–"
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if 2 * seen >= total:
            upper = f"{edges[i + 1]:g}" if i + 1 < len(edges) else "…"
            return f"{edges[i]:g}–{upper}"
    return "–"


def _overview(report: _Report) -> None:
    manifest, counts = report.manifest, report.manifest.counts
    report.text(
        f"<h1>Release {html.escape(manifest.release_id)}</h1>"
        f"<p>Created {html.escape(manifest.created_at.isoformat())} by corpus-pipeline "
        f"{html.escape(manifest.pipeline_version)}: <b>{counts.get('published', 0)}</b> of "
        f"{counts.get('inputs', 0)} inputs published, <b>{counts.get('rejected', 0)}</b> "
        f"rejected, {counts.get('skipped', 0)} skipped. Quality filters: "
        f"<code>{html.escape(str(manifest.parameters.get('quality_filters', 'off')))}</code>.</p>"
    )


def _diff(report: _Report) -> None:
    changes = report.manifest.changes
    report.text("<h2>Against the previous release</h2>")
    if changes is None:
        report.text("<p>Not compared (the previous release could not be read).</p>")
        return
    if changes.previous is None:
        report.text("<p>No previous release: every document is new.</p>")
    else:
        report.text(f"<p>Previous release: <code>{html.escape(changes.previous)}</code>.</p>")
    kinds = {k: getattr(changes, k) for k in ("added", "removed", "changed", "unchanged")}
    report.text(_table(["documents", "count"], list(kinds.items())))
    figure, ax = _figure(height=1.8, labels=list(kinds))
    ax.barh(list(reversed(kinds)), list(reversed(kinds.values())), color=_NOW)
    ax.set_xlabel("documents")
    report.plot("changes", "Documents added, removed, changed and unchanged", figure)
    before = report.previous
    if before is None:
        return
    now = report.manifest
    for title, then_counts, now_counts in (
        ("Documents per language, then and now", before.languages, now.languages),
        ("Rejections per reason, then and now", before.rejection_reasons, now.rejection_reasons),
    ):
        keys = sorted(set(then_counts) | set(now_counts), key=lambda k: -now_counts.get(k, 0))
        rows = [
            (
                k,
                then_counts.get(k, 0),
                now_counts.get(k, 0),
                now_counts.get(k, 0) - then_counts.get(k, 0),
            )
            for k in keys
        ]
        report.text(f"<h3>{html.escape(title)}</h3>" + _table(["", "then", "now", "change"], rows))
    shift = []
    for name in SIGNALS:
        edges = bins(name)
        then = before.histograms.get(f"quality.{name}")
        current = now.histograms.get(f"quality.{name}")
        if then and current:
            shift.append((name, _median(edges, then), _median(edges, current)))
    if shift:
        report.text(
            "<h3>Quality signals: median bin, then and now</h3>"
            + _table(["signal", "then", "now"], shift)
        )


def _counts(report: _Report) -> None:
    summary = report.summary
    report.text("<h2>Documents</h2>")
    figure, ax = _figure(height=_height(len(summary.languages)), labels=list(summary.languages))
    _bars(ax, summary.languages)
    report.plot("languages", "Documents per language", figure)
    _lengths(report)
    report.text("<h2>Rejections and removed lines</h2>")
    if summary.stage_reasons:
        figure, ax = _figure(
            height=_height(len(summary.stage_reasons)), labels=list(summary.stage_reasons)
        )
        _bars(ax, summary.stage_reasons, "#d62728")
        report.plot("rejections", "Rejections by stage / reason", figure)
    else:
        report.text("<p>No input was rejected.</p>")
    if summary.rules:
        figure, ax = _figure(height=_height(len(summary.rules)), labels=list(summary.rules))
        _bars(ax, summary.rules, "#8c564b")
        ax.set_xlabel("lines")
        report.plot("removed-lines", "Removed lines by rule", figure)
    else:
        report.text("<p>No line was removed.</p>")
    if summary.encodings:
        figure, ax = _figure(height=_height(len(summary.encodings)), labels=list(summary.encodings))
        _bars(ax, summary.encodings, "#17becf")
        report.plot("encodings", "Source encodings found", figure)


def _lengths(report: _Report) -> None:
    histograms = report.summary.histograms
    languages = [
        name.removeprefix("length.")
        for name, _ in sorted(
            ((n, sum(c)) for n, c in histograms.items() if n.startswith("length.")),
            key=lambda kv: (-kv[1], kv[0]),
        )
    ][:_MAX_LENGTH_LANGUAGES]
    if not languages:
        return
    figure, ax = _figure()
    for language in languages:
        counts = histograms[f"length.{language}"]
        ax.stairs(counts, range(len(counts) + 1), label=language, linewidth=1.5)
    ax.set_xticks(range(len(LENGTH_BINS)), _edge_labels(LENGTH_BINS), fontsize=7)
    ax.set_xlabel("characters of cleaned text (bins)")
    ax.set_ylabel("documents")
    ax.legend(fontsize=7, ncols=2)
    report.plot("lengths", "Text length per language", figure)


def _quality(report: _Report) -> None:
    summary, previous = report.summary, report.previous
    report.text(
        "<h2>Quality signals</h2><p>Histograms of the published documents; vertical lines are "
        "the presets' thresholds, the outline the previous release.</p>"
    )
    _would_remove(report)
    for name in SIGNALS:
        counts = summary.histograms.get(f"quality.{name}")
        if not counts:
            continue
        if not report.drawn_here():
            report.skip()
            continue
        edges = bins(name)
        figure, ax = _figure(width=6.0, height=2.4)
        then = previous.histograms.get(f"quality.{name}") if previous else None
        _histogram(ax, edges, counts, then)
        for preset, thresholds in PRESETS.items():
            bound = thresholds.get(name)
            for value in (bound.min, bound.max) if bound else ():
                if value is not None:
                    ax.axvline(
                        _positions(edges, value),
                        color=_PRESET_COLOURS[preset],
                        linestyle="--",
                        linewidth=1.2,
                        label=f"{preset} {value:g}",
                    )
        ax.legend(fontsize=7)
        report.plot(f"quality-{name}", f"{name}: {MEANINGS[name]}", figure)


def _would_remove(report: _Report) -> None:
    would = report.summary.would_remove
    published = report.summary.published
    rows = [
        (p, would.get(p, 0), f"{100 * would.get(p, 0) / published:.1f} %" if published else "–")
        for p in PRESETS
    ]
    report.text(
        "<h3>What each preset would remove</h3>"
        + _table(["preset", "documents", "of published"], rows)
    )
    figure, ax = _figure(height=1.9, labels=list(PRESETS))
    left = dict.fromkeys(PRESETS, 0)
    for name in SIGNALS:
        values = [would.get(f"{p}/{name}", 0) for p in PRESETS]
        if any(values):
            ax.barh(list(PRESETS), values, left=[left[p] for p in PRESETS], label=name)
            for p, v in zip(PRESETS, values, strict=True):
                left[p] += v
    if not any(left.values()):
        ax.barh(list(PRESETS), [0] * len(PRESETS))
        # Not autoscaled around zero (ticks from -0.04 to 0.04): an empty axis, no ticks.
        ax.set_xlim(0, 1)
        ax.set_xticks([])
        ax.text(
            0.5,
            0.5,
            "no published document fails a preset",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=9,
        )
    else:
        ax.legend(fontsize=7, ncols=3, loc="lower right")
    ax.set_xlabel("published documents it would reject, by the first failing signal")
    report.plot("would-remove", "Documents each preset would reject, by signal", figure)


def _corpus(report: _Report) -> None:
    corpus = report.manifest.corpus
    duplicates = {r: corpus.get(r, 0) for r in ("exact_duplicate", "near_duplicate")}
    if any(duplicates.values()):
        report.text("<h2>Duplicates</h2>")
        figure, ax = _figure(height=1.6, labels=list(duplicates))
        _bars(ax, duplicates, "#7f7f7f")
        report.plot("duplicates", "Copies rejected by dedup", figure)
    if report.pairs is not None and report.pairs.counts:
        report.text("<h2>Translation pairs</h2>")
        figure, ax = _figure(
            height=_height(len(report.pairs.counts)), labels=list(report.pairs.counts)
        )
        _bars(ax, report.pairs.counts, "#bcbd22")
        ax.set_xlabel("pairs")
        report.plot("pairs", report.pairs.title, figure)


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
figure.plot{margin:1.5rem 0}figure.plot svg{max-width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:left}
td:nth-child(n+2){text-align:right}code{background:#f4f4f4;padding:0 .2rem}
"""


def release_report(
    manifest: Manifest,
    summary: Summary,
    previous: Manifest | None = None,
    pairs: Pairs | None = None,
) -> str:
    """The whole report.html: overview, diff, counts, quality histograms, corpus decisions."""
    return assemble(manifest.release_id, [report_sections(manifest, summary, previous, pairs)])


def report_sections(
    manifest: Manifest,
    summary: Summary,
    previous: Manifest | None = None,
    pairs: Pairs | None = None,
    part: tuple[int, int] = (0, 1),
) -> list[str | None]:
    """The report's sections in order. ``part=(k, n)``: n processes draw one report, this
    one the plots numbered k+1, k+1+n, ... (the others are None here); :func:`assemble`
    joins them into the page one process would have drawn, byte for byte."""
    report = _Report(manifest, summary, previous, pairs, [], part=part)
    _overview(report)
    _diff(report)
    _counts(report)
    _quality(report)
    _corpus(report)
    return report.sections


def assemble(release_id: str, parts: Sequence[Sequence[str | None]]) -> str:
    """report.html from the sections of every part of :func:`report_sections`."""
    sections = [next(s for s in drawn if s is not None) for drawn in zip(*parts, strict=True)]
    body = "\n".join(sections)
    title = html.escape(f"Release {release_id}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def warm_up() -> None:
    """Import matplotlib and draw one empty figure: what the first plot of a report would
    pay (~0.5 s), paid by an idle shard worker while the corpus step runs."""
    figure, _ = _figure()
    _svg(figure, 0)


def pair_counts(columns: Mapping[str, Sequence[Any]]) -> Pairs | None:
    """Counts of a ``pairs`` table by its language columns (any two whose names hold
    'lang'), else its row count: the table's exact columns belong to another feature."""
    languages = [name for name in columns if "lang" in name][:2]
    rows = len(next(iter(columns.values()), []))
    if not rows:
        return None
    if len(languages) == 2:
        first, second = (columns[n] for n in languages)
        counted: dict[str, int] = {}
        for a, b in zip(first, second, strict=True):
            key = f"{a}–{b}"
            counted[key] = counted.get(key, 0) + 1
        return Pairs("Translation pairs by language pair", counted)
    return Pairs("Translation pairs", {"pairs": rows})


__all__ = [
    "REPORT",
    "Pairs",
    "assemble",
    "pair_counts",
    "release_report",
    "report_sections",
    "warm_up",
]
