"""The official 汇总表 is the plan's annex table (issue 9, list item 10): leaders forward it upward,
so its header is the annex's word for word; our own 备注 column comes after the annex's columns.
The pre-filled template a school gets carries the same header words, so the school's table and the
bureau's match, and the reader still reads a template filled in."""

from __future__ import annotations

import pytest

import io
import json

import openpyxl

from builders import submission
from mailbot.outbound.prefilled import build_template
from support.cli import run_cli
from support.configs import write_config

ANNEX_HEADER = [
    "序号", "城区学校名称", "城区开展课后服务学校数（所）", "城区学校在校学生数（人）", "城区参与课后服务学生数（人）",
    "城区学校开展“2+N”课后服务对应模式栏请填“是”，并填写具体服务项目名称",
    "开展“N”项“拓展服务”，具体服务项目名称",
]


def header_row(sheet) -> list[str]:
    for row in sheet.iter_rows(values_only=True):
        if row and row[0] == "序号":
            return [cell for cell in row if cell is not None]
    raise AssertionError("no header row starting with 序号")


def test_the_summary_workbook_header_is_the_annex_s_word_for_word(tmp_path):
    config = write_config(tmp_path)
    out = tmp_path / "preview"
    run_cli(config, "--now", "2022-10-26T12:00:00+08:00", "summary", "--month", "2022-10", "--out", str(out))
    (xlsx,) = out.glob("*.xlsx")

    header = header_row(openpyxl.load_workbook(xlsx).worksheets[0])

    assert header[:len(ANNEX_HEADER)] == ANNEX_HEADER
    assert header[len(ANNEX_HEADER):] == ["备注"]


def test_the_pre_filled_template_has_the_same_header_words():
    data = build_template("安溪县北门小学", "primary", "2022-10", deadline_day=24, mailbox_address="chuyoujiao@163.com")

    assert header_row(openpyxl.load_workbook(io.BytesIO(data)).active) == ANNEX_HEADER


def test_a_template_filled_in_by_a_school_is_read_back(tmp_path):
    config = write_config(tmp_path)
    wb = openpyxl.load_workbook(io.BytesIO(build_template("安溪县北门小学", "primary", "2022-10", deadline_day=24,
                                                         mailbox_address="chuyoujiao@163.com")))
    ws = wb.active
    data_row = next(r[0].row for r in ws.iter_rows() if r[0].value == 1)
    for column, value in zip("CDEFG", [1, 1878, 1797, "是", "科普、美术、阅读"]):
        ws[f"{column}{data_row}"] = value
    buf = io.BytesIO()
    wb.save(buf)
    eml = tmp_path / "filled.eml"
    eml.write_bytes(submission("beimenxx@163.com", "chuyoujiao@163.com",
                               attachments=[("北门小学.xlsx", buf.getvalue(), "application/octet-stream")]))

    result = json.loads(run_cli(config, "ingest", "--json", str(eml)).stdout)

    assert result["outcome"] == "accepted", result
    (row,) = result["rows"]
    assert (row["school"], row["enrolled"], row["participating"], row["two_plus_n"], row["services"]) == (
        "安溪县北门小学", 1878, 1797, True, ["科普", "美术", "阅读"])
