"""The summary email rendered in a real browser (headless Chromium): on a 375 px phone the KPIs and
charts fit without horizontal scrolling, the per-school table reflows to the phone's width (the other
wide tables scroll inside their own box), no table cell is clipped and no KPI word is broken across
lines; at 1280 px the page reads as a centred column, and the KPI values are in the rendered text. In
CI (CI=true) a missing Chromium or CJK font fails the test instead of skipping it."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime

import pytest

from mailbot.summary.aggregate import summarise
from support.browser import find_chromium, measure, screenshot
from mailbot.summary.formatting import count, percent
from mailbot.summary.render import compose_summary, summary_context
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
    return summary, compose_summary(summary_context(summary, TZ, NOW, "汇总表.xlsx")).html


KPI_CARDS = '[aria-label="主要指标"]'


def kpi_words(summary) -> tuple[str, ...]:
    """What a reader reads in the KPI cards, each a unit that must not be split across lines."""
    total = summary.scopes["all"]
    return ("已报送学校", "学生参与率", "“2+N”模式覆盖率", "“2+3”模式占比",
            f"{total.reported}/{total.required}所", percent(total.participation.value),
            percent(total.two_plus_n.value), percent(total.two_plus_three.value),
            f"按时{total.on_time}所", f"逾期{total.late}所", f"未报送{total.missing}所",
            f"参与{count(total.participating)}人", f"在校{count(total.enrolled)}人",
            "目标100%", "目标不低于80%", "未达标", "已达标")


@pytest.fixture(scope="module")
def laid_out(chromium, month):
    """The page laid out at a width, measured once per width (each a Chromium run of about a
    CPU-second) with the KPI words counted: every test of that width reads its own assertions from
    the same measurement, which the phrase counting does not change (it only reads the layout)."""
    summary, html = month
    pages: dict[int, dict] = {}

    def at(width: int) -> dict:
        if width not in pages:
            pages[width] = measure(html, width, chromium, phrases=kpi_words(summary), within=KPI_CARDS)
        return pages[width]
    return at


def test_phone_width_has_no_horizontal_scrolling(laid_out, month):
    summary, _ = month
    page = laid_out(375)

    assert page["innerWidth"] == 375
    assert page["scrollWidth"] <= 375, page["wide"]
    assert page["wide"] == []  # nothing but the scroll boxes' contents sticks out
    assert page["boxes"] and all(box["right"] <= 375 for box in page["boxes"])
    assert any(box["scroll"] > box["client"] for box in page["boxes"])  # the 11-column scope table scrolls inside
    total = summary.scopes["all"]
    for value in (f"{total.reported}/{total.required}所", percent(total.participation.value),
                  percent(total.two_plus_n.value), percent(total.two_plus_three.value), "未达标",
                  summary.missing[0].name, "“2+3”模式占比"):
        assert value in page["text"], value


def test_phone_width_clips_no_table_cell_and_the_school_table_fits(laid_out, month):
    summary, _ = month
    page = laid_out(375)

    assert page["clipped"] == []  # every cell's text inside its cell, and on screen or in a box that scrolls to it
    schools = [table for table in page["tables"] if table["head"].startswith("序号")]
    assert len(schools) == 1, page["tables"]
    assert schools[0]["right"] <= 375 - 16  # within the page's margin: readable without sideways scrolling
    for line in summary.schools:
        assert line.name in page["text"], line.name


@pytest.mark.parametrize("width", [375, 320, 1280])
def test_no_kpi_word_is_broken_across_lines(laid_out, month, width):
    summary, _ = month
    words = kpi_words(summary)
    page = laid_out(width)

    assert page["lines"]["未达标"], "the month has a target not met"
    broken = {word: counts for word, counts in page["lines"].items() if any(n != 1 for n in counts)}
    assert broken == {}
    for word in words[:13]:
        assert page["lines"][word], f"{word} is not in the page"


def test_desktop_width_is_a_readable_column(laid_out):
    page = laid_out(1280)
    assert page["scrollWidth"] <= 1280 and page["wide"] == []
    assert all(box["client"] <= 720 for box in page["boxes"])  # a column of reading width, not 1280 px lines
    assert page["scrollHeight"] < 20000


def test_screenshot_is_taken(chromium, month, tmp_path):
    _, html = month
    png = screenshot(html, 375, tmp_path / "phone.png", chromium, height=1200)
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page, not a blank image
