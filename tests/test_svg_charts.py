"""The hand-drawn SVG charts: valid XML whatever the labels say, ticks that read well, text on the canvas."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from analyzer import api
from analyzer.model.report import RunResult
from analyzer.write import charts
from analyzer.write.svg import Canvas, integer_ticks, log_ticks, nice_ticks, text_width, time_ticks

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def demo_run() -> RunResult:
    return api.analyse_sample("demo", now=datetime(2026, 12, 1, 2, 0, tzinfo=UTC))


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("top", "most", "expected"),
    [
        (0.0, 4, [0.0, 1.0]),
        (float("nan"), 4, [0.0, 1.0]),
        (7.0, 4, [0.0, 2.0, 4.0, 6.0, 8.0]),
        (230_000.0, 5, [0.0, 50_000.0, 100_000.0, 150_000.0, 200_000.0, 250_000.0]),
        (1.0, 4, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ],
)
def test_nice_ticks_cover_the_top_in_round_steps(top: float, most: int, expected: list[float]) -> None:
    assert nice_ticks(top, most) == expected


def test_integer_ticks_never_split_a_workload() -> None:
    assert integer_ticks(3, 6) == [0.0, 1.0, 2.0, 3.0]
    assert all(t == int(t) for t in integer_ticks(1, 6))


def test_log_ticks_are_powers_of_ten_or_the_ends() -> None:
    assert log_ticks(13, 202_000) == [100.0, 1000.0, 10_000.0, 100_000.0]
    assert log_ticks(20, 90) == [20, 90]


def test_time_ticks_are_round_and_inside_the_window() -> None:
    start = datetime(2026, 12, 1, 0, 7, tzinfo=UTC)
    end = start + timedelta(hours=2)
    ticks = time_ticks(start, end, 4)
    assert 2 <= len(ticks) <= 4
    assert all(start <= t <= end and t.minute in (0, 30) for t in ticks)  # 30-minute steps


def test_label_text_is_escaped_and_control_characters_replaced() -> None:
    canvas = Canvas(100, 20, prefix="x")
    canvas.text(0, 10, '<script>alert("x")</script>&\x07', 9)
    root = _parse(canvas.svg())
    assert _texts(root) == ['<script>alert("x")</script>&?']
    assert "<script>" not in canvas.svg()


def test_hatches_are_shared_and_ids_carry_the_prefix() -> None:
    canvas = Canvas(100, 20, prefix="p-volume")
    first, again = canvas.hatch("//", "#D55E00"), canvas.hatch("//", "#D55E00")
    other = canvas.hatch("xx", "#BBBBBB")
    assert first == again != other
    ids = re.findall(r'id="([^"]+)"', canvas.svg())
    assert ids == ["p-volume-h0", "p-volume-h1"]


def test_hostile_labels_in_every_chart_stay_text(demo_run: RunResult) -> None:
    run = copy.deepcopy(demo_run)
    for e in run.edges:
        if e.plaintext_count > 0:
            e.source_namespace = '"><script>x</script>\u202e'
            e.destination_namespace = "</svg><img src=x onerror=alert(1)>"
    history = [{"run_id": "a", "generated_at": "<b>not a date</b>", "verdicts": {"BLOCKED": 2}}]
    for chart in charts.render_all(run, history):
        for svg in (chart.svg, chart.phone_svg):
            root = _parse(svg)
            assert not [e for e in root.iter() if e.tag in ("script", "img", f"{SVG}script", f"{SVG}foreignObject")]
            assert "\u202e" not in svg


@pytest.mark.parametrize("phone", [False, True])
def test_unrotated_text_stays_on_the_canvas(demo_run: RunResult, phone: bool) -> None:
    for draw in (charts.volume_by_namespace, charts.plaintext_over_time, charts.plaintext_heatmap):
        root = _parse(draw(demo_run, phone=phone).svg)
        width = float(root.get("viewBox", "0 0 0 0").split()[2])
        for text in root.iter(f"{SVG}text"):
            if text.get("transform"):
                continue
            size, anchor = float(text.get("font-size") or 0), text.get("text-anchor")
            for span in text:  # one tspan per line, each with its own x
                line, x = span.text or "", float(span.get("x") or 0)
                w = text_width(line, size)
                left = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
                assert left >= -1 and left + w <= width + 1, (draw.__name__, line, left, left + w, width)


def test_the_smallest_text_is_8_points_wide_and_10_on_a_phone(demo_run: RunResult) -> None:
    for chart in charts.render_all(demo_run, [{"run_id": "a", "generated_at": "2026-12-01T02:00:00Z"}]):
        for svg, floor in ((chart.svg, 8.0), (chart.phone_svg, 10.0)):
            sizes = [float(t.get("font-size") or 0) for t in _parse(svg).iter(f"{SVG}text")]
            assert sizes and min(sizes) >= floor, (chart.key, min(sizes))


def test_heatmap_colours_run_from_a_visible_orange_to_the_darkest() -> None:
    low, high = charts.heatmap_colour(0.0), charts.heatmap_colour(1.0)
    assert min(low[:3]) < 0.9 and low[0] > 0.9  # orange, not near-white
    assert high[:3] == pytest.approx((0x7F / 255, 0x27 / 255, 0x04 / 255))
    assert sum(charts.heatmap_colour(0.5)[:3]) < sum(low[:3])  # darker is more


def test_the_timeline_chart_states_each_units_peak_step_of_the_results_plaintext(demo_run: RunResult) -> None:
    frame = demo_run.timeline_frame()
    frame["unit"] = frame["protocol"].map(charts.UNIT_OF).fillna("requests")
    per_step = frame.groupby(["unit", "timestamp"])["count"].sum()
    assert {"requests", "connections"} <= set(per_step.index.get_level_values(0))  # the demo has both
    chart = charts.plaintext_over_time(demo_run)
    for unit in ("requests", "connections"):
        assert f"{unit} peak {charts.compact(per_step[unit].max())} per " in chart.description
    _parse(chart.svg)
