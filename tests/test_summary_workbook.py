"""The 汇总表 attachment and the 台账 ledger, read back the way a clerk or LibreOffice reads them."""

from __future__ import annotations

import email
import email.policy
import io
import subprocess
import zipfile
from datetime import datetime

import pytest
from openpyxl import load_workbook

from mailbot.config import School
from mailbot.outbound.prefilled import COLUMNS, TITLE
from mailbot.summary.aggregate import StoredRow, summarise
from mailbot.summary.ledger import build_ledger, ledger_months, month_range
from mailbot.summary.load import HistoryEntry
from support.configs import SAMPLES
from support.installed import require_tool
from support.summary_sample import TZ, month_sequence, sample_roster, sample_rows
from mailbot.summary.workbook import attachment_name, build_summary_workbook

NOW = datetime(2022, 10, 25, 10, 0, tzinfo=TZ)
HOSTILE = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "=HYPERLINK(\"http://evil\",\"x\")"]


def hostile_summary():
    schools = [School("=HYPERLINK(\"http://evil\")小学", "primary"), School("北门小学", "primary"),
               School("城南中学", "middle"), School("龙津中学", "middle")]
    rows = [StoredRow(schools[0].name, "2022-10", NOW, False, "a@163.com", 1, 1000, 900, True, 5, tuple(HOSTILE)),
            StoredRow("城南中学", "2022-10", datetime(2022, 10, 25, 0, 10, tzinfo=TZ), True, "b@163.com", 2, 2000,
                      1500, True, 2, ("阅读", "劳动")),
            StoredRow("北门小学", "2022-09", datetime(2022, 9, 20, tzinfo=TZ), False, "c@163.com", 1, 800, 700, False,
                      None, ())]
    return summarise("2022-10", schools, rows, set(), deadline_day=24, tz=TZ)


def test_layout_follows_the_annex_with_groups_subtotals_and_total():
    summary = hostile_summary()
    wb = load_workbook(io.BytesIO(build_summary_workbook(summary, TZ, NOW)))
    ws = wb["汇总表"]

    assert ws["A1"].value == TITLE and "A1:H1" in {str(r) for r in ws.merged_cells.ranges}
    assert ws["A2"].value == "（2022年10月）"
    assert [ws.cell(row=4, column=i).value for i in range(1, 8)] == [text for text, _ in COLUMNS]
    assert ws["H4"].value == "备注"
    column_b = [ws.cell(row=r, column=2).value for r in range(5, 14)]
    assert column_b == [None, summary.schools[0].name, "北门小学", "小学小计", None, "城南中学", "龙津中学",
                        "中学小计", "合计"]
    assert ws["A5"].value == "一、小学" and ws["A9"].value == "二、中学"
    assert (ws["C13"].value, ws["D13"].value, ws["E13"].value) == (3, 3000, 2400)  # the total row
    assert ws["D8"].value == 1000 and ws["D12"].value == 2000  # subtotals
    assert ws["H7"].value == "未报送" and ws["H10"].value.startswith("逾期报送")
    assert any(str(c.value or "").startswith("说明") for c in ws["A"])
    assert ws.freeze_panes == "C5" and ws.print_title_rows == "$1:$4"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.column_dimensions["B"].width == COLUMNS[1][1]
    assert ws["B6"].border.left.style == "thin"


# The annex's notes about the table, as every school's copy of the annex has them (its third note,
# "3.学生数只填阿拉伯数字", is how a school fills the table in, and is left out).
ANNEX_NOTES = "说明：1.“2+N”中的“2”指作业辅导、体育活动，“N”指学校开展的拓展服务项目数；2.请于每月24日前报送。"


def notes_in_a_school_copy() -> str:
    """The 说明 cell of the annex a school filled in and sent (sample 001)."""
    message = email.message_from_bytes((SAMPLES / "cases" / "001-163-webmail-xlsx" / "message.eml").read_bytes(),
                                       policy=email.policy.default)
    (table,) = [part for part in message.walk() if (part.get_filename() or "").endswith(".xlsx")]
    cells = load_workbook(io.BytesIO(table.get_content()), read_only=True).active.iter_rows(values_only=True)
    (notes,) = [v for row in cells for v in row if isinstance(v, str) and v.startswith("说明")]
    return notes


def test_notes_are_the_annex_notes_word_for_word_then_ours_marked_as_ours():
    summary = hostile_summary()
    ws = load_workbook(io.BytesIO(build_summary_workbook(summary, TZ, NOW)))["汇总表"]
    total_row = next(r for r in range(5, ws.max_row + 1) if ws.cell(row=r, column=2).value == "合计")
    notes = [ws.cell(row=r, column=1).value for r in range(total_row + 1, ws.max_row + 1)]

    assert notes_in_a_school_copy().startswith(ANNEX_NOTES[:-1] + "；3.")  # the same words as the schools' copies
    assert notes[0] == ANNEX_NOTES  # first, and alone in its row
    assert notes[1] == "补充说明（汇总时添加）："
    ours = notes[2:]
    assert [note[:3] for note in ours] == ["（1）", "（2）", "（3）", "（4）"]
    assert "自动汇总" in ours[0] and "2022年10月25日 10:00" in ours[0]
    assert "应报学校4所" in ours[1] and "未报送" in ours[1] and "覆盖率" in ours[2]
    assert sum("说明：" in note for note in notes) == 1  # one 说明, the annex's
    assert ws.print_area.endswith(f"$H${total_row + len(notes)}")  # every note is printed
    assert f"A{total_row + 1}:H{total_row + 1}" in {str(r) for r in ws.merged_cells.ranges}


def test_text_that_looks_like_a_formula_is_written_as_text():
    data = build_summary_workbook(hostile_summary(), TZ, NOW)
    ws = load_workbook(io.BytesIO(data))["汇总表"]
    assert ws["B6"].value == "=HYPERLINK(\"http://evil\")小学" and ws["B6"].data_type == "s"
    assert ws["G6"].value == "、".join(HOSTILE) and ws["G6"].data_type == "s"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in xml or "<f " in xml for xml in sheets)  # no formula anywhere


def test_trend_sheet_has_every_month_and_a_native_chart():
    schools = sample_roster(12)
    rows = sample_rows(schools, month_sequence("2022-10", 6))
    summary = summarise("2022-10", schools, rows, set(), deadline_day=24, tz=TZ)
    wb = load_workbook(io.BytesIO(build_summary_workbook(summary, TZ, NOW)))
    trend = wb["月度趋势"]
    assert [trend.cell(row=r, column=1).value for r in range(3, 9)] == [f"2022年{m}月" for m in range(5, 11)]
    assert trend["C8"].value == summary.scopes["all"].reported
    with zipfile.ZipFile(io.BytesIO(build_summary_workbook(summary, TZ, NOW))) as archive:
        assert any(name.startswith("xl/charts/chart") for name in archive.namelist())


def test_attachment_name():
    assert attachment_name("2022-10") == "2022年10月城区义务教育阶段学校课后服务开展情况汇总表.xlsx"


def test_libreoffice_opens_the_summary_workbook(tmp_path):
    libreoffice = require_tool("libreoffice")
    schools = sample_roster(30)
    summary = summarise("2022-10", schools, sample_rows(schools, month_sequence("2022-10", 6)), set(),
                        deadline_day=24, tz=TZ)
    source = tmp_path / "summary.xlsx"
    source.write_bytes(build_summary_workbook(summary, TZ, NOW))
    proc = subprocess.run([libreoffice, f"-env:UserInstallation=file://{tmp_path / 'profile'}", "--headless",
                           "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
                          capture_output=True, text=True, timeout=120)
    pdf = tmp_path / "summary.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF"), proc.stderr


# -- ledger -----------------------------------------------------------------------------------------
def test_ledger_has_a_sheet_per_month_a_long_sheet_and_the_history():
    schools = [School("北门小学", "primary"), School("城南中学", "middle")]
    in_force = StoredRow("北门小学", "2022-10", datetime(2022, 10, 25, 9, tzinfo=TZ), True, "bm@163.com", 1, 800, 700,
                         True, 3, ("科普", "阅读", "=cmd"))
    replaced = StoredRow("北门小学", "2022-10", datetime(2022, 10, 20, 9, tzinfo=TZ), False, "bm@163.com", 1, 800,
                         600, True, 2, ("科普", "阅读"))
    september = StoredRow("城南中学", "2022-09", datetime(2022, 9, 20, 9, tzinfo=TZ), False, "cn@163.com", 1, 900,
                          800, False, None, ())
    history = [HistoryEntry(1, september, "in_force", None, None, None, None),
               HistoryEntry(2, replaced, "replaced", 3, None, None, None),
               HistoryEntry(3, in_force, "in_force", None, None, None, None)]
    months = ledger_months("2022-09", "2022-10", ["2022-09", "2022-10"], [9, 10])
    data = build_ledger(schools, [in_force, september], history, months, deadline_day=24, tz=TZ)
    wb = load_workbook(io.BytesIO(data))

    assert wb.sheetnames == ["全部月份", "2022年9月", "2022年10月", "报送记录"]
    october = wb["2022年10月"]
    assert [c.value for c in october[2]][:9] == [1, "小学", "北门小学", "逾期报送", "bm@163.com",
                                                 datetime(2022, 10, 25, 9, 0), "是", 1, 800]
    assert october["N2"].value == "科普、阅读、=cmd" and october["N2"].data_type == "s"
    assert [c.value for c in october[3]][:4] == [2, "中学", "城南中学", "未报送"]
    long = wb["全部月份"]
    assert long.max_row == 1 + 4 and {long.cell(row=r, column=1).value for r in range(2, 6)} == {"2022年9月", "2022年10月"}
    audit = wb["报送记录"]
    assert [audit.cell(row=r, column=4).value for r in range(2, 5)] == ["有效", "已被替换", "有效"]
    assert audit["E3"].value == 3


def test_month_range_refuses_reversed_and_huge_ranges():
    assert month_range("2022-11", "2023-02") == ["2022-11", "2022-12", "2023-01", "2023-02"]
    with pytest.raises(ValueError):
        month_range("2022-10", "2022-09")
    with pytest.raises(ValueError):
        month_range("1900-01", "2100-12")
    assert ledger_months("2022-01", "2022-12", ["2022-12"], [3, 4]) == ["2022-03", "2022-04", "2022-12"]
