"""Geometry of the summary's charts, drawn in the email with table cells and coloured blocks.

No images: 163, QQ and Outlook webmail block or strip external images and some drop inline ones,
while table cells with a background colour render everywhere, on a phone too. These functions only
compute widths, heights and colours; the template draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.rules.labels import SCOPE_LABELS
from mailbot.summary.aggregate import (SCOPES, TARGET_TWO_PLUS_N, TARGET_TWO_PLUS_THREE, MonthFigures,
                                       Rate, Summary)
from mailbot.summary.formatting import count, percent

MET = "#2e7d32"  # green: the target is met
NOT_MET = "#d9822b"  # orange: below the target
NEUTRAL = "#3f6fb5"  # blue: a figure without a target
EMPTY = "#e8e8e8"
TREND_COLUMN_PX = 100  # height of a 100% column in the trend chart
TREND_MONTHS = 12  # the chart shows the last year; the table under it lists every month
TREND_SERIES = (  # (key, label, colour)
    ("two_plus_n", "“2+N”覆盖率", "#3f6fb5"),
    ("two_plus_three", "“2+3”占比", "#2e9c8f"),
    ("participation", "学生参与率", "#d9822b"),
)


@dataclass(frozen=True)
class Segment:
    """One cell of a horizontal bar: a width in whole percent of the bar, a colour, and whether the
    target mark (a dark left border) sits at its start."""

    width: int
    color: str
    target_mark: bool = False


def whole_percent(value: float | None) -> int:
    """0..100, rounded down so a bar never shows a target as met when it is not (79.9% -> 79)."""
    if value is None:
        return 0
    return max(0, min(100, int(value * 100 + 1e-9)))


def bar_segments(value: float | None, target: float | None = None, color: str | None = None) -> list[Segment]:
    """The cells of a bar filled to `value` (0..1) with an optional target mark; widths sum to 100."""
    filled = whole_percent(value)
    mark = whole_percent(target) if target is not None else None
    if color is None:
        color = NEUTRAL if target is None else (MET if value is not None and value + 1e-9 >= target else NOT_MET)
    cuts = sorted({0, filled, 100} | ({mark} if mark is not None and 0 < mark < 100 else set()))
    segments = []
    for start, end in zip(cuts, cuts[1:]):
        segments.append(Segment(end - start, color if end <= filled else EMPTY, start == mark))
    return segments


@dataclass(frozen=True)
class BarRow:
    label: str
    rate: Rate
    segments: list[Segment]
    text: str  # "17/20 85%" for schools; just "93.5%" for students (the counts are in the table)


@dataclass(frozen=True)
class BarGroup:
    """One measure (e.g. "2+3" share) for primary, middle and all, with its target if it has one."""

    title: str
    target: float | None
    rows: list[BarRow]


def level_bars(summary: Summary) -> list[BarGroup]:
    """The per-level bar chart of the month: one group per key rate, one bar per level."""
    measures = (("报送率（已报送学校/应报学校）", "reporting", None, True),
                ("“2+N”模式覆盖率", "two_plus_n", TARGET_TWO_PLUS_N, True),
                ("“2+3”模式占比", "two_plus_three", TARGET_TWO_PLUS_THREE, True),
                ("学生参与率（参与学生/在校学生）", "participation", None, False))
    groups = []
    for title, key, target, of_schools in measures:
        rows = []
        for scope in SCOPES:
            rate = getattr(summary.scopes[scope], key)
            text = f"{count(rate.part)}/{count(rate.whole)} {percent(rate.value)}" if of_schools else percent(rate.value)
            rows.append(BarRow(SCOPE_LABELS[scope], rate, bar_segments(rate.value, target), text))
        groups.append(BarGroup(title, target, rows))
    return groups


@dataclass(frozen=True)
class TrendBar:
    color: str
    height: int  # px
    title: str  # tooltip text, e.g. "2022年10月 “2+3”占比 85.0%"


@dataclass(frozen=True)
class TrendColumn:
    month: str
    label: str  # "10月"
    year_label: str  # "2022" where the year starts or changes, else ""
    bars: list[TrendBar]


def trend_columns(trend: list[MonthFigures], months: int = TREND_MONTHS) -> list[TrendColumn]:
    """The trend chart: the last `months` months on record, three rates each (scope "all")."""
    columns = []
    previous_year = None
    for point in trend[-months:]:
        year, month = point.month.split("-")
        figures = point.scopes["all"]
        bars = []
        for key, label, color in TREND_SERIES:
            value = getattr(figures, key).value
            bars.append(TrendBar(color, round(whole_percent(value) * TREND_COLUMN_PX / 100),
                                 f"{int(year)}年{int(month)}月 {label} {percent(value)}"))
        columns.append(TrendColumn(point.month, f"{int(month)}月", year if year != previous_year else "", bars))
        previous_year = year
    return columns
