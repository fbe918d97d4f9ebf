"""The summary email: the same facts in the HTML and the text, targets with verdicts, charts drawn
without images or scripts, and school-written text escaped."""

from __future__ import annotations

import io
import re
from datetime import datetime

from mailbot.config import School
from mailbot.summary.aggregate import StoredRow, summarise
from mailbot.summary.charts import EMPTY, MET, NOT_MET, bar_segments, trend_columns
from mailbot.summary.formatting import percent
from mailbot.summary.render import compose_summary, summary_context, write_summary
from support.summary_sample import TZ, month_sequence, sample_roster, sample_rows

NOW = datetime(2022, 10, 25, 10, 0, tzinfo=TZ)


def realistic():
    schools = sample_roster(36)
    schools[0].contact, schools[0].phone = "陈老师", "13812345678"
    rows = [r for r in sample_rows(schools, month_sequence("2022-10", 6), missing=0.0, late=0.15)
            if not (r.month == "2022-10" and r.school == schools[0].name)]  # one known missing school
    return schools, summarise("2022-10", schools, rows, {schools[3].name}, deadline_day=24, tz=TZ)


def test_subject_and_headline_kpis_with_targets_in_both_parts():
    schools, summary = realistic()
    composed = compose_summary(summary_context(summary, TZ, NOW, "2022年10月城区义务教育阶段学校课后服务开展情况汇总表.xlsx"))
    total = summary.scopes["all"]

    assert composed.subject == "【课后服务】2022年10月城区学校课后服务开展情况汇总"
    facts = [f"{total.reported}/{total.required}所", percent(total.participation.value),
             percent(total.two_plus_n.value), percent(total.two_plus_three.value), "目标100%", "目标不低于80%",
             "2022年10月24日", "2022年10月25日 10:00", schools[0].name, "陈老师", "13812345678",
             "较2022年9月", "2022年10月城区义务教育阶段学校课后服务开展情况汇总表.xlsx", "本月免报", schools[3].name]
    for fact in facts:
        assert fact in composed.text, fact
        assert fact in composed.html, fact
    verdict = "已达标" if total.two_plus_three.meets(0.8) else "未达标"
    assert verdict in composed.text and verdict in composed.html
    for line in summary.late:
        assert line.name in composed.text


def test_html_has_no_images_scripts_or_external_resources():
    _, summary = realistic()
    html = compose_summary(summary_context(summary, TZ, NOW)).html
    assert not re.search(r"<(img|script|link|iframe|object|style)\b", html, re.I)
    assert not re.search(r"(src|href)\s*=|url\(|@import|@font-face", html, re.I)


def test_school_written_text_is_escaped_in_html():
    schools = [School("<b>甲</b>小学", "primary")]
    rows = [StoredRow("<b>甲</b>小学", "2022-10", NOW, False, "a@163.com", 1, 100, 90, True, 3,
                      ("<script>alert(1)</script>", "=HYPERLINK(\"http://x\")", "阅读"))]
    summary = summarise("2022-10", schools, rows, set(), deadline_day=24, tz=TZ)
    composed = compose_summary(summary_context(summary, TZ, NOW))
    assert "<script>" not in composed.html and "&lt;script&gt;" in composed.html
    assert "&lt;b&gt;甲&lt;/b&gt;小学" in composed.html
    assert "<b>甲</b>小学" in composed.text  # the plain text shows it as written


def test_the_preview_files_are_the_email():
    """`summary --out` writes the parts as the templates produce them, never holding them whole;
    what it writes is what the email carries."""
    _, summary = realistic()
    text, html = io.StringIO(), io.StringIO()
    write_summary(summary_context(summary, TZ, NOW, "汇总表.xlsx"), text, html)
    composed = compose_summary(summary_context(summary, TZ, NOW, "汇总表.xlsx"))
    assert text.getvalue() == composed.text and html.getvalue() == composed.html


def test_bar_segments_fill_to_the_value_and_mark_the_target():
    segments = bar_segments(0.45, 0.8)
    assert sum(s.width for s in segments) == 100
    assert [(s.width, s.color, s.target_mark) for s in segments] == [(45, NOT_MET, False), (35, EMPTY, False),
                                                                      (20, EMPTY, True)]
    met = bar_segments(0.9, 0.8)
    assert [(s.width, s.color, s.target_mark) for s in met] == [(80, MET, False), (10, MET, True), (10, EMPTY, False)]
    assert [s.width for s in bar_segments(None)] == [100] and bar_segments(1.0, 1.0)[0].color == MET
    # 79.96% is not drawn or printed as the 80% target.
    assert bar_segments(0.7996, 0.8)[0].color == NOT_MET and percent(0.7996) == "79.9%"
    assert percent(0.9996) == "99.9%" and percent(1.0) == "100%" and percent(5 / 12) == "41.7%"


def test_trend_chart_shows_the_last_year_with_heights_proportional():
    _, summary = realistic()
    columns = trend_columns(summary.trend)
    assert [c.month for c in columns] == month_sequence("2022-10", 6)
    assert columns[0].year_label == "2022" and columns[1].year_label == ""
    last = summary.trend[-1].scopes["all"]
    assert columns[-1].bars[1].height == int(last.two_plus_three.value * 100)


def test_a_month_with_no_data_still_renders():
    summary = summarise("2022-10", sample_roster(3), [], set(), deadline_day=24, tz=TZ)
    composed = compose_summary(summary_context(summary, TZ, NOW))
    assert "0/3所" in composed.text and "暂无数据" in composed.text
