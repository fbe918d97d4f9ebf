"""The summary email (SPEC 7): a Summary turned into plain template data, then `compose("summary")`.

Every number is formatted here, once, so the HTML and the plain text say exactly the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from mailbot.config import LEVELS
from mailbot.outbound.compose import Composed, compose, compose_to
from mailbot.rules.labels import LEVEL_LABELS, SCOPE_LABELS, level_label, state_label
from mailbot.rules.month import month_label
from mailbot.summary.aggregate import (SCOPES, TARGET_TWO_PLUS_N, TARGET_TWO_PLUS_THREE, Figures,
                                       Rate, SchoolLine, Summary)
from mailbot.summary.charts import TREND_SERIES, level_bars, trend_columns
from mailbot.summary.formatting import count, percent
from mailbot.timeutil import label_date, label_datetime

KIND = "summary"


def rate_text(rate: Rate, unit: str = "所") -> str:
    """"17/20所"."""
    return f"{count(rate.part)}/{count(rate.whole)}{unit}"


def change_text(current: Rate, previous: Rate | None) -> str | None:
    """The change from last month in percentage points, or None when either month has no figure."""
    if previous is None or current.value is None or previous.value is None:
        return None
    points = round((current.value - previous.value) * 100, 1)
    if points == 0:
        return "持平"
    return f"{'上升' if points > 0 else '下降'}{abs(points):.1f}个百分点"


def target_verdict(rate: Rate, target: float) -> dict:
    met = rate.meets(target)
    label = "暂无数据" if met is None else ("已达标" if met else "未达标")
    return {"met": met, "label": label}


def _detail(joiner: str, *phrases: str) -> dict:
    """A KPI card's detail line, and its phrases: on a phone the HTML breaks the line only between
    phrases (never "未报/送8所")."""
    return {"detail": joiner.join(phrases), "detail_phrases": list(phrases), "detail_joiner": joiner}


def _kpis(summary: Summary) -> list[dict]:
    figures = summary.scopes["all"]
    previous = summary.previous.scopes["all"] if summary.previous else None
    since = f"较{month_label(summary.previous.month)}" if summary.previous else ""

    def change(key: str) -> str | None:
        text = change_text(getattr(figures, key), getattr(previous, key) if previous else None)
        return f"{since}{text}" if text else None

    return [
        {"key": "reporting", "title": "已报送学校", "value": f"{count(figures.reported)}/{count(figures.required)}所",
         **_detail("，", f"按时{figures.on_time}所", f"逾期{figures.late}所", f"未报送{figures.missing}所"),
         "target": None, "verdict": None, "change": change("reporting")},
        {"key": "participation", "title": "学生参与率", "value": percent(figures.participation.value),
         **_detail(" / ", f"参与{count(figures.participating)}人", f"在校{count(figures.enrolled)}人"),
         "target": None, "verdict": None, "change": change("participation")},
        {"key": "two_plus_n", "title": "“2+N”模式覆盖率", "value": percent(figures.two_plus_n.value),
         **_detail("", f"{rate_text(figures.two_plus_n)}落实"), "target": "目标100%",
         "verdict": target_verdict(figures.two_plus_n, TARGET_TWO_PLUS_N), "change": change("two_plus_n")},
        {"key": "two_plus_three", "title": "“2+3”模式占比", "value": percent(figures.two_plus_three.value),
         **_detail("", f"{rate_text(figures.two_plus_three)}达到“2+3”"), "target": "目标不低于80%",
         "verdict": target_verdict(figures.two_plus_three, TARGET_TWO_PLUS_THREE), "change": change("two_plus_three")},
    ]


def _scope_row(label: str, figures: Figures) -> dict:
    return {"label": label, "required": figures.required, "reported": figures.reported, "on_time": figures.on_time,
            "late": figures.late, "missing": figures.missing, "excused": figures.excused,
            "campuses": count(figures.campuses), "enrolled": count(figures.enrolled),
            "participating": count(figures.participating), "participation": percent(figures.participation.value),
            "two_plus_n": percent(figures.two_plus_n.value), "two_plus_n_count": figures.two_plus_n_schools,
            "two_plus_n_verdict": target_verdict(figures.two_plus_n, TARGET_TWO_PLUS_N),
            "two_plus_three": percent(figures.two_plus_three.value),
            "two_plus_three_count": figures.two_plus_three_schools,
            "two_plus_three_verdict": target_verdict(figures.two_plus_three, TARGET_TWO_PLUS_THREE)}


def _school_row(index: int, line: SchoolLine, tz: ZoneInfo) -> dict:
    row = line.row
    return {"index": index, "name": line.name, "level": level_label(line.level),
            "state": line.state, "state_label": state_label(line.state),
            "received": label_datetime(row.received_at, tz) if row else "",
            "campuses": row.schools_count if row else "", "enrolled": count(row.enrolled) if row else "",
            "participating": count(row.participating) if row else "",
            "participation": percent(Rate(row.participating, row.enrolled).value) if row else "",
            "two_plus_n": ("是" if row.two_plus_n else "否") if row else "",
            "mode": (f"2+{row.n}" if row.two_plus_n and row.n is not None else "") if row else "",
            "services": "、".join(row.services) if row else "",
            "contact": line.contact or "", "phone": line.phone or ""}


def summary_context(summary: Summary, tz: ZoneInfo, now: datetime, attachment_name: str | None = None) -> dict:
    """Plain data for the templates: every figure already a string."""
    groups = []
    for level in LEVELS:
        lines = [line for line in summary.schools if line.level == level]
        groups.append({"label": LEVEL_LABELS[level], "schools": [_school_row(i, line, tz)
                                                                 for i, line in enumerate(lines, start=1)]})
    trend_rows = []
    for point in reversed(summary.trend):
        row = _scope_row(month_label(point.month), point.scopes["all"])
        row["reporting_month"] = point.reporting_month
        trend_rows.append(row)
    return {
        "month": summary.month,
        "month_label": month_label(summary.month),
        "deadline_label": label_date(summary.deadline),
        "generated_label": label_datetime(now, tz),
        "reporting_month": summary.reporting_month,
        "previous_label": month_label(summary.previous.month) if summary.previous else None,
        "kpis": _kpis(summary),
        "scopes": [_scope_row(SCOPE_LABELS[scope] if scope != "all" else "合计", summary.scopes[scope])
                   for scope in SCOPES],
        "bar_groups": level_bars(summary),
        "trend_columns": trend_columns(summary.trend),
        "trend_series": [{"label": label, "color": color} for _key, label, color in TREND_SERIES],
        "trend_range": (f"{month_label(summary.trend[0].month)}至{month_label(summary.trend[-1].month)}"
                        if len(summary.trend) > 1 else month_label(summary.month)),
        "trend_rows": trend_rows,
        "school_groups": groups,
        "missing": [_school_row(i, line, tz) for i, line in enumerate(summary.missing, start=1)],
        "late": [_school_row(i, line, tz) for i, line in enumerate(summary.late, start=1)],
        "excused": [_school_row(i, line, tz) for i, line in enumerate(summary.excused, start=1)],
        "top_services": [{"name": s.name, "schools": s.schools, "primary": s.primary, "middle": s.middle,
                          "share": percent(Rate(s.schools, summary.scopes["all"].reported).value)}
                         for s in summary.top_services],
        "attachment_name": attachment_name,
    }


def compose_summary(context: dict) -> Composed:
    """The email of `summary_context`'s data."""
    return compose(KIND, context)


def write_summary(context: dict, text_out: TextIO, html_out: TextIO) -> None:
    """The email of `summary_context`'s data, the same as compose_summary's, written to two files as
    the templates produce it (the preview of a province's summary: an 11 MB HTML part)."""
    compose_to(KIND, context, text_out, html_out)
