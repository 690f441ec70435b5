"""The report and history pages for every reader, in a real Chromium at desktop and phone widths:
WCAG 2.1 A/AA by axe-core, no sideways scrolling, the advice column on screen, chart text large
enough to read, and verdicts that stay apart under simulated colour-vision deficiencies.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from colorspacious import cspace_convert, deltaE
from matplotlib.colors import to_rgb
from PIL import Image

from analyzer.write import charts, palette
from tests.support.browser import DESKTOP, PHONE, BrowserError, Chromium, Page

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CVD_TYPES = ["deuteranomaly", "protanomaly", "tritanomaly"]  # at severity 100: the full -opias
# CAM02-UCS distance under which two flat colours count as confusable side by side.
DISTINCT = 20.0
# The smallest text the charts draw (cell numbers, bar labels), in points, wide and phone layouts.
SMALLEST_PT = {"wide": 8.0, "phone": 10.0}
LEGIBLE_PX = 10.5
TEXTURE = 2.0  # lightness spread (CAM02-UCS J') above which a patch has a pattern
SAME_PATTERN = 0.6  # correlation of two lightness patterns above which they are the same pattern


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    try:
        with Chromium() as chromium:
            yield chromium
    except BrowserError as exc:  # a missing chromium or axe-core fails the suite; it is never skipped
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two demo runs: the second page then has every section, the history two rows."""
    out = tmp_path_factory.mktemp("a11y")
    for _ in range(2):
        time.sleep(1.05 - (time.time() % 1))  # run ids have one-second resolution
        done = subprocess.run(
            [sys.executable, "-m", "analyzer", "demo", "--output-dir", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr  # demo: published is success
    return out


PAGES = {"report": "latest/index.html", "history": "index.html"}


def _open(browser: Chromium, path: Path, width: int) -> Page:
    page = browser.page(width=width)
    url = path.resolve().as_uri()
    page.open(url)
    assert page.errors() == []
    assert page.requests() == [url], "the page must fetch nothing but itself"
    return page


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_meets_wcag_aa_without_sideways_scrolling(
    browser: Chromium, demo_dir: Path, name: str, width: int
) -> None:
    page = _open(browser, demo_dir / PAGES[name], width)
    overflow = page.evaluate(
        """({scroll: document.documentElement.scrollWidth, viewport: innerWidth,
        wide: Array.from(document.querySelectorAll('body *')).filter(e => e.checkVisibility()
            && e.getBoundingClientRect().right > innerWidth + 0.5 && !e.closest('pre'))
            .map(e => e.tagName).slice(0, 5)})"""
    )
    assert overflow["scroll"] == overflow["viewport"] == width, overflow
    assert overflow["wide"] == [], f"elements past the right edge at {width} px: {overflow['wide']}"
    page.screenshot(ARTIFACTS / f"{name}-{width}.png")
    assert page.axe() == []
    assert page.errors() == []


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_advice_and_every_blocker_cell_stay_on_screen(browser: Chromium, demo_dir: Path, width: int) -> None:
    page = _open(browser, demo_dir / PAGES["report"], width)
    cells = page.evaluate(
        """Array.from(document.querySelectorAll('#blockers-table tbody td')).map(td => {
            const r = td.getBoundingClientRect();
            return {advice: td.classList.contains('advice'), left: r.left, right: r.right, width: r.width,
                    visible: td.checkVisibility(), before: getComputedStyle(td, '::before').content};
        })"""
    )
    advice = [c for c in cells if c["advice"]]
    assert len(advice) >= 5
    for cell in cells:
        assert cell["visible"] and cell["width"] > 40, cell
        assert cell["left"] >= 0 and cell["right"] <= width, cell
    assert all("What to do" in c["before"] for c in advice) == (width == PHONE), "phone cards name each field"
    navigation = page.evaluate(
        "Array.from(document.querySelectorAll('nav.toc a')).map(a => a.getBoundingClientRect().right)"
    )
    assert max(navigation) <= width, "section links wrap instead of running off the screen"


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_chart_text_is_legible_at_every_width(browser: Chromium, demo_dir: Path, width: int) -> None:
    """matplotlib's SVG user unit is the point: rendered width / viewBox width is pixels per point."""
    page = _open(browser, demo_dir / PAGES["report"], width)
    shown = page.evaluate(
        """Array.from(document.querySelectorAll('figure svg')).filter(s => s.checkVisibility()).map(s => ({
            layout: s.closest('.chart-phone') ? 'phone' : 'wide', figure: s.closest('figure').id,
            scale: s.getBoundingClientRect().width / s.viewBox.baseVal.width}))"""
    )
    assert len(shown) == 4 and {s["layout"] for s in shown} == {"phone" if width == PHONE else "wide"}
    for svg in shown:
        assert SMALLEST_PT[svg["layout"]] * svg["scale"] >= LEGIBLE_PX, svg
    for figure in ("chart-volume", "chart-heatmap"):
        page.page.locator(f"#{figure}").screenshot(path=str(ARTIFACTS / f"{figure}-{width}.png"))


def test_print_layout_shows_the_wide_charts(browser: Chromium, demo_dir: Path) -> None:
    page = _open(browser, demo_dir / PAGES["report"], PHONE)
    page.page.emulate_media(media="print")
    shown = page.evaluate(
        """Array.from(document.querySelectorAll('figure svg')).filter(s => s.checkVisibility())
        .map(s => s.closest('.chart-phone') ? 'phone' : 'wide')"""
    )
    assert shown == ["wide"] * 4
    assert page.evaluate("getComputedStyle(document.querySelector('nav.toc')).display") == "none"


# -- colour-vision deficiencies -----------------------------------------------------------------------


def _simulate(rgb: np.ndarray, cvd: str | None) -> np.ndarray:
    if cvd is None:
        return rgb
    space = {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}
    return np.clip(cspace_convert(rgb, space, "sRGB1"), 0, 1)


def test_palette_pairs_that_merge_under_cvd_carry_different_patterns() -> None:
    colours = {v: np.array(to_rgb(c)) for v, c in palette.VERDICT_COLOURS.items()}
    confusable = set()
    for cvd in CVD_TYPES:
        seen = {v: _simulate(c, cvd) for v, c in colours.items()}
        for a, b in itertools.combinations(colours, 2):
            if deltaE(seen[a], seen[b], input_space="sRGB1") < DISTINCT:
                confusable.add((cvd, a, b))
                assert charts.VERDICT_HATCHES.get(a) != charts.VERDICT_HATCHES.get(b), (cvd, a, b)
                assert palette.VERDICT_PATTERNS.get(a) != palette.VERDICT_PATTERNS.get(b), (cvd, a, b)
    # The reported merges exist in the flat palette: colour alone would not do.
    assert ("deuteranomaly", "BLOCKED", "DISABLED") in confusable
    assert {v for _, a, b in confusable for v in (a, b)} >= {"READY", "NOT_MESHED", "ENFORCED"}


def _texture(patch: np.ndarray) -> np.ndarray | None:
    """The patch's lightness pattern, normalised (colour-blind by construction); None when flat."""
    lightness = cspace_convert(patch, "sRGB1", "CAM02-UCS")[..., 0]
    spread = float(lightness.std())
    return (lightness - lightness.mean()) / spread if spread > TEXTURE else None


def _patterns_differ(a: np.ndarray, b: np.ndarray) -> bool:
    ta, tb = _texture(a), _texture(b)
    if ta is None or tb is None:
        return (ta is None) != (tb is None)
    return float(np.mean(ta * tb)) < SAME_PATTERN  # correlation of the two lightness patterns


def test_share_bar_segments_stay_apart_under_cvd_on_screen(browser: Chromium, demo_dir: Path) -> None:
    """Equal-sized patches from each segment of the rendered bar, after simulating each deficiency:
    every pair differs in colour (mean over the patch) or in pattern (lightness texture)."""
    page = _open(browser, demo_dir / PAGES["report"], DESKTOP)
    bar = page.page.locator(".stack").first
    shot = ARTIFACTS / "share-bar.png"
    bar.screenshot(path=str(shot))
    box = bar.bounding_box()
    assert box is not None
    segments = page.evaluate(
        """Array.from(document.querySelector('.stack').children).map(s => {
            const r = s.getBoundingClientRect(); return {v: s.className.slice(2), x: r.left, w: r.width}; })"""
    )
    assert len(segments) == 7, "the demo has every verdict"
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=float) / 255
    size = int(min(s["w"] for s in segments)) - 2
    assert size >= 8
    top, bottom = 2, image.shape[0] - 2
    patches = {}
    for s in segments:
        left = round(s["x"] - box["x"]) + 1
        patches[s["v"]] = image[top:bottom, left : left + size]
    carried_by_pattern = []
    for cvd in [None, *CVD_TYPES]:
        seen = {v: _simulate(p, cvd) for v, p in patches.items()}
        for a, b in itertools.combinations(seen, 2):
            colour = float(deltaE(seen[a].mean(axis=(0, 1)), seen[b].mean(axis=(0, 1)), input_space="sRGB1"))
            if colour < DISTINCT:
                assert _patterns_differ(seen[a], seen[b]), f"{a} and {b} look alike under {cvd or 'normal vision'}"
                carried_by_pattern.append((cvd, a, b))
    assert ("deuteranomaly", "BLOCKED", "DISABLED") in carried_by_pattern, "the test sees the known merge"


@pytest.fixture(scope="module")
def scoped_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo run limited by --namespace / --exclude-namespace: the page says what was in scope."""
    out = tmp_path_factory.mktemp("a11y-scoped")
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "demo", "--output-dir", str(out), "--namespace", "pay*,shop"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_scoped_page_meets_wcag_aa(browser: Chromium, scoped_dir: Path, width: int) -> None:
    page = _open(browser, scoped_dir / PAGES["report"], width)
    scope = page.evaluate("document.querySelector('#scope').innerText")
    assert scope.startswith("In scope: namespaces pay*, shop: 2 known namespaces reported"), scope
    banner = page.evaluate("document.querySelector('.verdict-banner').innerText")
    assert "part of the mesh only" in banner and "UNKNOWN" in banner, banner
    assert page.evaluate("document.documentElement.scrollWidth") == width
    page.screenshot(ARTIFACTS / f"report-scoped-{width}.png")
    assert page.axe() == []


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_clients_section_names_legacy_curl_on_screen_and_passes_axe_open(
    browser: Chromium, demo_dir: Path, width: int
) -> None:
    page = _open(browser, demo_dir / PAGES["report"], width)
    rows = page.evaluate(
        """Array.from(document.querySelectorAll('#clients-table tbody tr')).map(tr => ({
            client: tr.querySelector('td').textContent.trim(),
            cells: Array.from(tr.querySelectorAll('td')).map(td => {
                const r = td.getBoundingClientRect();
                return {left: r.left, right: r.right, visible: td.checkVisibility()};
            })}))"""
    )
    assert "legacy/curl" in [r["client"] for r in rows]
    for row in rows:
        for cell in row["cells"]:
            assert cell["visible"] and cell["left"] >= 0 and cell["right"] <= width, (row["client"], cell)
    assert page.evaluate("document.querySelector('#clients-table caption') !== null")
    assert page.evaluate("Array.from(document.querySelectorAll('#clients-table th')).every(th => th.scope === 'col')")
    page.evaluate("document.querySelector('details#candidates').open = true")  # axe skips closed details
    assert page.axe() == []


def test_tables_keep_their_columns_on_a_desktop(browser: Chromium, demo_dir: Path) -> None:
    """The script marks every table for the phone's card layout; on a wide screen the tables must
    still lay out as tables: one header row as wide as the body, the caption above it."""
    page = _open(browser, demo_dir / PAGES["report"], DESKTOP)
    tables = page.evaluate(
        """Array.from(document.querySelectorAll('table.cards')).map(t => {
            const head = t.tHead ? t.tHead.getBoundingClientRect() : null;
            const body = t.tBodies[0].getBoundingClientRect();
            const caption = t.caption ? t.caption.getBoundingClientRect() : null;
            return {id: t.id, display: getComputedStyle(t).display,
                    head: head && head.width, body: body.width,
                    captionAbove: caption === null || caption.bottom <= body.top + 1};
        })"""
    )
    assert len(tables) >= 3, tables
    for table in tables:
        assert table["display"] == "table", table
        assert table["head"] is None or abs(table["head"] - table["body"]) <= 1, table
        assert table["captionAbove"], table
