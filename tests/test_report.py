"""report.html: self-contained, and every plot drawn by a real browser without an error."""

from __future__ import annotations

import html.parser
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.engine.run import RunResult
from flows.stages.quality import SIGNALS
from tests.conftest import SEEDS, run_release
from tests.test_quality import DOCUMENTS, PROSE

# Where Debian, Ubuntu and Fedora put Chromium; .ci/run installs Debian's.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, RunResult]:
    """Two releases of a source with something for every plot: languages, a rejection,
    removed boilerplate, a duplicate, and changes between the two."""
    source = tmp_path_factory.mktemp("report-source")
    shutil.copytree(SEEDS, source, dirs_exist_ok=True)
    for name, text in DOCUMENTS.items():
        (source / name).write_text(text, "utf-8")
    (source / "copy.txt").write_text(DOCUMENTS["good.txt"], "utf-8")
    (source / "empty.txt").write_bytes(b"")
    (source / "menu.txt").write_text("Home\nNews\n" + PROSE[2] + "\nShare this article\n", "utf-8")
    out = tmp_path_factory.mktemp("report-out")
    first = run_release(source, out)
    (source / "short.txt").unlink()
    (source / "good.txt").write_text(DOCUMENTS["good.txt"] + "\n" + PROSE[4], "utf-8")
    (source / "de.txt").write_text(
        "Der Ausschuss hat am Dienstag über den Haushalt für das kommende Jahr beraten. "
        "Mehrere Mitglieder äußerten Bedenken wegen der steigenden Kosten im Verkehr.",
        "utf-8",
    )
    second = run_release(source, out)
    return first, second


def _report(result: RunResult) -> Path:
    assert result.release is not None
    return result.release / "report.html"


class _References(html.parser.HTMLParser):
    """Every tag and every attribute that could make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("href", "src", "xlink:href", "srcset", "action", "data", "poster"):
                self.links.append(value or "")


def test_the_report_references_nothing_outside_itself(
    releases: tuple[RunResult, RunResult],
) -> None:
    for result in releases:
        text = _report(result).read_text("utf-8")
        parser = _References()
        parser.feed(text)
        assert not parser.tags & {"script", "link", "img", "iframe", "object", "embed", "base"}
        assert parser.links and all(link.startswith("#") for link in parser.links)
        assert all(u.startswith("url(#") for u in re.findall(r"url\([^)]*\)", text))
        assert "@import" not in text and "://" not in text and "@font-face" not in text


def test_the_report_holds_every_plot_and_the_diff(releases: tuple[RunResult, RunResult]) -> None:
    first, second = releases
    text = _report(second).read_text("utf-8")
    plots = re.findall(r'<figure class="plot" data-plot="([^"]+)"', text)
    expected = {"changes", "languages", "lengths", "rejections", "removed-lines", "encodings"}
    expected |= {"would-remove", "duplicates"} | {f"quality-{name}" for name in SIGNALS}
    assert expected <= set(plots), expected - set(plots)
    assert second.manifest is not None and first.manifest is not None
    assert f"Previous release: <code>{first.manifest.release_id}</code>" in text
    assert "Documents per language, then and now" in text
    assert "median bin, then and now" in text
    # The run's markdown report says the same and points at the file.
    from flows.card import run_report

    assert second.release is not None
    markdown = run_report(second.manifest, second.summary, str(second.release))
    changes = second.manifest.changes
    assert changes is not None
    assert f"| {changes.added} | {changes.removed} | {changes.changed} |" in markdown
    assert f"{second.release}/report.html" in markdown


def _browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


# Injected into a copy of the report: records errors and console.error calls from the first
# moment, then measures every plot once the page has loaded and writes it into the DOM,
# which --dump-dom prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", (e) => __errors.push(String(e.message || e.type)), true);
console.error = (...args) => __errors.push(args.join(" "));
console.warn = (...args) => __errors.push("warning: " + args.join(" "));
window.addEventListener("load", () => {
  const plots = [...document.querySelectorAll("figure.plot")].map((figure) => {
    const svg = figure.querySelector("svg");
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const marks = svg ? svg.querySelectorAll("path, rect, use, text").length : 0;
    return {name: figure.dataset.plot, width: box.width, height: box.height, marks: marks};
  });
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({plots: plots, errors: __errors});
  document.body.appendChild(out);
});
</script>"""


def test_every_plot_renders_in_a_real_browser_without_errors(
    releases: tuple[RunResult, RunResult], tmp_path: Path
) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(BROWSERS)}); .ci/run installs it")
    report = _report(releases[1])
    text = report.read_text("utf-8")
    page = tmp_path / "probed.html"
    page.write_text(text.replace("<head>", "<head>" + PROBE, 1), "utf-8")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--window-size=1280,1024",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, done.stdout[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["errors"] == []
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", done.stderr)
    names = re.findall(r'<figure class="plot" data-plot="([^"]+)"', text)
    assert [plot["name"] for plot in probe["plots"]] == names
    for plot in probe["plots"]:
        assert plot["width"] > 100 and plot["height"] > 50, plot
        assert plot["marks"] > 10, plot


def test_translation_pairs_are_drawn_where_a_release_has_them(
    releases: tuple[RunResult, RunResult],
) -> None:
    from flows.report import pair_counts, release_report

    first, second = releases
    assert second.manifest is not None
    # The seeds are a German/English pair: the release's pairs table has them.
    assert 'data-plot="pairs"' in _report(second).read_text("utf-8")
    pairs = pair_counts({"source_language": ["de", "de", "fr"], "target_language": ["en"] * 3})
    assert pairs is not None and dict(pairs.counts) == {"de–en": 2, "fr–en": 1}
    assert pair_counts({"score": []}) is None
    assert pair_counts({"score": [0.9, 0.8]}) is not None
    page = release_report(second.manifest, second.summary, first.manifest, pairs)
    assert 'data-plot="pairs"' in page and "de–en" in page


@pytest.mark.parametrize("parts", [2, 3])
def test_a_report_drawn_in_parts_is_the_one_drawn_whole(
    releases: tuple[RunResult, RunResult], parts: int
) -> None:
    # `corpus run` has its idle shard workers draw a share of the plots each.
    from flows.report import assemble, release_report, report_sections

    first, second = releases
    assert second.manifest is not None
    drawn = [
        report_sections(second.manifest, second.summary, first.manifest, None, (k, parts))
        for k in range(parts)
    ]
    assert all(None in sections for sections in drawn)  # each drew only its share
    whole = release_report(second.manifest, second.summary, first.manifest)
    assert assemble(second.manifest.release_id, drawn) == whole


def test_an_empty_would_remove_chart_has_no_ticks_around_zero(
    releases: tuple[RunResult, RunResult],
) -> None:
    # Autoscaled around zero, an empty bar chart's axis read -0.04 ... 0.04.
    import dataclasses
    from collections import Counter

    from flows.report import release_report

    result = releases[1]
    assert result.manifest is not None
    summary = dataclasses.replace(result.summary, would_remove=Counter())
    text = release_report(result.manifest, summary)
    figure = re.search(r'data-plot="would-remove".*?</figure>', text, re.DOTALL)
    assert figure is not None
    assert "no published document fails a preset" in figure.group(0)
    assert not re.search(r">\s*[−-]?0\.0\d\s*<", figure.group(0))
