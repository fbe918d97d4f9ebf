"""The summary email rendered in a real browser (headless Chromium): on a 375 px phone the KPIs and
charts fit without horizontal scrolling (wide tables scroll inside their own box), at 1280 px the page
reads as a centred column, and the KPI values are in the rendered text. In CI (CI=true) a missing
Chromium or CJK font fails the test instead of skipping it."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime

import pytest

from mailbot.summary.aggregate import summarise
from support.browser import find_chromium, measure, screenshot
from mailbot.summary.formatting import percent
from mailbot.summary.render import render_summary
from support.installed import missing
from support.summary_sample import TZ, month_sequence, sample_roster, sample_rows

NOW = datetime(2022, 10, 25, 10, 0, tzinfo=TZ)


def _required(what: str, found: bool) -> None:
    if not found:
        missing(what, ".ci/run installs it: apt-get install chromium fonts-noto-cjk")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    _required("chromium", path is not None)
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout if shutil.which("fc-list") else ""
    _required("a Chinese font (fonts-noto-cjk)", bool(fonts.strip()))
    return path


@pytest.fixture(scope="module")
def month():
    """A realistic month: 36 schools, 6 months of history, some missing, some late, one excused."""
    schools = sample_roster(36)
    rows = sample_rows(schools, month_sequence("2022-10", 6), missing=0.12, late=0.12)
    summary = summarise("2022-10", schools, rows, {schools[5].name}, deadline_day=24, tz=TZ)
    assert summary.missing and summary.late
    return summary, render_summary(summary, TZ, NOW, "汇总表.xlsx").html


def test_phone_width_has_no_horizontal_scrolling(chromium, month):
    summary, html = month
    page = measure(html, 375, chromium)

    assert page["innerWidth"] == 375
    assert page["scrollWidth"] <= 375, page["wide"]
    assert page["wide"] == []  # nothing but the scroll boxes' contents sticks out
    assert page["boxes"] and all(box["right"] <= 375 for box in page["boxes"])
    assert any(box["scroll"] > box["client"] for box in page["boxes"])  # the per-school table scrolls inside
    total = summary.scopes["all"]
    for value in (f"{total.reported}/{total.required}所", percent(total.participation.value),
                  percent(total.two_plus_n.value), percent(total.two_plus_three.value), "未达标",
                  summary.missing[0].name, "“2+3”模式占比"):
        assert value in page["text"], value


def test_desktop_width_is_a_readable_column(chromium, month):
    _, html = month
    page = measure(html, 1280, chromium)
    assert page["scrollWidth"] <= 1280 and page["wide"] == []
    assert all(box["client"] <= 720 for box in page["boxes"])  # a column of reading width, not 1280 px lines
    assert page["scrollHeight"] < 20000


def test_screenshot_is_taken(chromium, month, tmp_path):
    _, html = month
    png = screenshot(html, 375, tmp_path / "phone.png", chromium, height=1200)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page, not a blank image
