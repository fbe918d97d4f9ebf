"""The pre-filled template a school fills in and sends back."""

from __future__ import annotations

import io
import time
import zipfile

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.outbound.prefilled import build_template, template_filename
from mailbot.tables.locate import column_key, header_text

HEADERS = ["序号", "学校名称", "开展课后服务学校数（所）", "在校学生数（人）", "参与课后服务学生数（人）",
           '是否落实"2+N"模式', "拓展服务项目名称（用“、”分隔）"]


def open_sheet(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).active


def rows_of(ws) -> list[list]:
    return [list(row) for row in ws.iter_rows(values_only=True)]


def column_of(header: str) -> str | None:
    """The column a header cell is for, by the same word rules the table reader applies (SPEC 3.2)."""
    return column_key(header_text(header))


def test_headers_are_recognised_by_the_spec_rules():
    header = rows_of(open_sheet(build_template("安溪县北门小学", "primary", "2022-10")))[3]

    assert [column_of(text) for text in header] == [
        None, "school", "schools_count", "enrolled", "participating", "two_plus_n", "services"]


def test_the_data_row_helps_the_school_type_valid_values():
    ws = open_sheet(build_template("安溪县北门小学", "primary", "2022-10"))

    assert [ws[f"{c}5"].number_format for c in "CDE"] == ["0", "0", "0"]
    [yes_no] = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert str(yes_no.sqref) == "F5" and yes_no.formula1 == '"是,否"'
    [counts] = [dv for dv in ws.data_validations.dataValidation if dv.type == "whole"]
    assert str(counts.sqref) == "C5:E5"


def test_notes_explain_the_columns_the_2_plus_n_rule_and_where_to_send():
    notes = "".join(row[0] for row in rows_of(open_sheet(build_template("安溪县城南中学", "middle", "2022-10")))[5:])

    for fact in ("作业辅导", "体育活动", "“2+3”", "3项及以上", "24日前", "中教股", "zjg23236764@163.com",
                 "阿拉伯数字", "超大附件"):
        assert fact in notes
    assert "chuyoujiao@163.com" not in notes


def test_notes_follow_a_configured_deadline_and_mailbox():
    data = build_template("安溪县北门小学", "primary", "2022-10", deadline_day=20, mailbox_address="xx@example.cn")
    notes = "".join(row[0] for row in rows_of(open_sheet(data))[5:])

    assert "20日前" in notes and "初幼教股邮箱 xx@example.cn" in notes


def test_the_sheet_prints_on_a4_landscape_with_a_frozen_bordered_header():
    ws = open_sheet(build_template("安溪县北门小学", "primary", "2022-10"))

    assert ws.freeze_panes == "A5"
    assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == "9"
    assert ws.page_setup.fitToWidth == 1
    assert {"A1:G1", "A2:G2", "A3:G3"} <= {str(r) for r in ws.merged_cells.ranges}
    for cell in list(ws[4]) + list(ws[5]):
        assert cell.border.left.style == "thin" and cell.border.bottom.style == "thin"
    assert all(cell.alignment.wrap_text for cell in ws[4])
    assert ws.column_dimensions["B"].width >= 20 and ws.column_dimensions["G"].width >= 30


@pytest.mark.parametrize("month", [None, "2022-13", "2022/10", ""])
def test_without_a_valid_month_the_month_line_is_left_blank(month):
    rows = rows_of(open_sheet(build_template("安溪县北门小学", "primary", month)))

    assert rows[1][0] == "（    年  月）"


def test_a_blank_template_for_an_unknown_school_names_both_mailboxes():
    rows = rows_of(open_sheet(build_template(None, None, None)))

    assert rows[2][0].startswith("填报单位：") and rows[4][1] is None
    notes = "".join(row[0] for row in rows[5:])
    assert "chuyoujiao@163.com" in notes and "zjg23236764@163.com" in notes


def test_the_same_input_gives_the_same_bytes_at_any_time(monkeypatch):
    first = build_template("安溪县北门小学", "primary", "2022-10")
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # zip entries would carry this date
    second = build_template("安溪县北门小学", "primary", "2022-10")

    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert "2022-01-01T00:00:00Z" in archive.read("docProps/core.xml").decode()
    assert first != build_template("安溪县北门小学", "primary", "2022-11")


def test_template_filename_names_school_and_month():
    assert template_filename("安溪县北门小学", "2022-10") == "安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx"
    assert template_filename(None, None) == "课后服务开展情况汇总表.xlsx"
    assert template_filename("../a/b:c", "2022-10") == "..abc2022年10月课后服务开展情况汇总表.xlsx"


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=300))
def test_any_roster_name_gives_a_readable_workbook(name):
    ws = open_sheet(build_template(name, "primary", "2022-10"))

    written = ws["B5"].value or ""
    assert "\n" not in written and len(written) <= 200
    assert ws["A4"].value == "序号"
    assert "/" not in template_filename(name, "2022-10")


def test_a_filled_in_template_is_read_back_by_the_table_reader():
    from mailbot.config import Limits
    from mailbot.tables.locate import find_tables
    from mailbot.tables.xlsx import read_zip_workbook

    wb = openpyxl.load_workbook(io.BytesIO(build_template("安溪县北门小学", "primary", "2022-10")))
    for letter, value in zip("CDEFG", [1, 1878, 1797, "是", "科普、文艺、劳动"]):
        wb.active[f"{letter}5"] = value
    filled = io.BytesIO()
    wb.save(filled)

    [table] = find_tables(read_zip_workbook(filled.getvalue(), "xlsx", "t.xlsx", Limits()))

    assert "2022年10月" in table.title_text and table.layout == "single"
    [row] = table.rows
    assert row.row_number == 5
    assert row.cells == {"school": "安溪县北门小学", "schools_count": 1, "enrolled": 1878, "participating": 1797,
                         "two_plus_n": "是", "services": "科普、文艺、劳动"}
