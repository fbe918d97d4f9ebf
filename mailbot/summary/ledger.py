"""The monthly ledger (台账) the bureau's plan asks each section to keep: `mailbot export`.

One sheet per month (every roster school, its state and the row in force), a long-format sheet
with all months for pivot tables, and the full submission history (replaced and voided rows
included) with who sent each one and when. Written in openpyxl's write-only mode: 2,000 schools
over two years is ~50,000 rows.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from mailbot.config import School
from mailbot.rules.labels import level_label, state_label
from mailbot.rules.month import Month, is_reporting_month, month_label
from mailbot.summary.aggregate import SchoolLine, StoredRow, in_force_by_month, runs_two_plus_three, school_lines
from mailbot.summary.load import HistoryEntry
from mailbot.summary.workbook import BOLD, BORDER, CENTER, FONT, HEADER_FILL, set_text

MAX_MONTHS = 120  # ten years: a typo like --from 1900-01 must not write thousands of sheets
SHEET_LONG = "全部月份"
SHEET_HISTORY = "报送记录"
HISTORY_STATUS = {"in_force": "有效", "replaced": "已被替换", "voided": "已作废"}

ROW_COLUMNS = (("学段", 6), ("学校名称", 28), ("报送情况", 10), ("报送邮箱", 24), ("报送时间", 17), ("是否逾期", 8),
               ("开展课后服务学校数（所）", 12), ("在校学生数（人）", 11), ("参与课后服务学生数（人）", 13),
               ('是否落实"2+N"模式', 10), ("拓展服务项目数", 9), ('是否达到"2+3"模式', 10),
               ("拓展服务项目名称", 40))
HISTORY_COLUMNS = (("记录编号", 9), ("月份", 10), ("学校名称", 28), ("状态", 9), ("被替换为（记录编号）", 11),
                   ("作废时间", 17), ("作废原因", 20), ("录入人", 10), ("报送邮箱", 24), ("报送时间", 17),
                   ("是否逾期", 8), ("开展课后服务学校数（所）", 12), ("在校学生数（人）", 11),
                   ("参与课后服务学生数（人）", 13), ('是否落实"2+N"模式', 10), ("拓展服务项目数", 9),
                   ("拓展服务项目名称", 40))
DATE_FORMAT = "yyyy-mm-dd hh:mm"


def month_range(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" from first to last inclusive; ValueError past MAX_MONTHS or when reversed."""
    month, end = Month.parse(first), Month.parse(last)
    months = []
    while month <= end:
        months.append(str(month))
        if len(months) > MAX_MONTHS:
            raise ValueError(f"{first} to {last} is more than {MAX_MONTHS} months")
        month = month.next()
    if not months:
        raise ValueError(f"{first} is after {last}")
    return months


def ledger_months(first: str, last: str, on_record: Iterable[str], reporting_months: Iterable[int]) -> list[str]:
    """The months that get a sheet: reporting months and months with records, within the range."""
    recorded, reporting = set(on_record), set(reporting_months)
    return [m for m in month_range(first, last) if m in recorded or is_reporting_month(m, reporting)]


def _local(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    """Excel has no time zones: the bureau's local time, naive."""
    return moment.astimezone(tz).replace(tzinfo=None) if moment else None


def _header(ws: WriteOnlyWorksheet, columns: tuple[tuple[str, float], ...]) -> None:
    for index, (_text, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    cells = []
    for text, _width in columns:
        cell = WriteOnlyCell(ws, value=text)
        cell.font, cell.alignment, cell.border, cell.fill = BOLD, CENTER, BORDER, HEADER_FILL
        cells.append(cell)
    ws.append(cells)


def _cells(ws: WriteOnlyWorksheet, values: list) -> list[WriteOnlyCell]:
    cells = []
    for value in values:
        cell = WriteOnlyCell(ws)
        if isinstance(value, str):
            set_text(cell, value)
        else:
            cell.value = value
            if isinstance(value, datetime):
                cell.number_format = DATE_FORMAT
        cell.font, cell.border = FONT, BORDER
        cells.append(cell)
    return cells


def _row_values(row: StoredRow | None, tz: ZoneInfo) -> list:
    if row is None:
        return [None] * 8
    return [row.sender, _local(row.received_at, tz), "是" if row.late else "否", row.schools_count, row.enrolled,
            row.participating, "是" if row.two_plus_n else "否", row.n]


def _line_values(line: SchoolLine, tz: ZoneInfo) -> list:
    row = line.row
    return ([level_label(line.level), line.name, state_label(line.state)]
            + _row_values(row, tz)
            + [("是" if runs_two_plus_three(row.two_plus_n, row.n) else "否") if row else None,
               "、".join(row.services) if row else None])


def build_ledger(schools: list[School], rows: Iterable[StoredRow], history: list[HistoryEntry], months: list[str],
                 *, excused: Mapping[str, set[str]] | None = None, deadline_day: int, tz: ZoneInfo,
                 reporting_months: Iterable[int] = range(1, 13)) -> bytes:
    """The 台账 workbook for `months` (each gets a sheet) from the rows in force and the history."""
    excused = excused or {}
    reporting = set(reporting_months)
    by_month = in_force_by_month(rows)
    wb = Workbook(write_only=True)
    long_sheet = wb.create_sheet(SHEET_LONG)
    long_sheet.freeze_panes = "C2"
    _header(long_sheet, (("月份", 10),) + ROW_COLUMNS)
    long_rows = 0
    for month in months:
        lines = school_lines(month, schools, by_month.get(month, {}), set(excused.get(month, ())), deadline_day, tz,
                             is_reporting_month(month, reporting))
        sheet = wb.create_sheet(month_label(month))
        sheet.freeze_panes = "C2"
        _header(sheet, (("序号", 6),) + ROW_COLUMNS)
        for index, line in enumerate(lines, start=1):
            sheet.append(_cells(sheet, [index] + _line_values(line, tz)))
            long_sheet.append(_cells(long_sheet, [month_label(month)] + _line_values(line, tz)))
            long_rows += 1
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(ROW_COLUMNS) + 1)}{len(lines) + 1}"
    long_sheet.auto_filter.ref = f"A1:{get_column_letter(len(ROW_COLUMNS) + 1)}{long_rows + 1}"

    audit = wb.create_sheet(SHEET_HISTORY)
    audit.freeze_panes = "D2"
    _header(audit, HISTORY_COLUMNS)
    for entry in history:
        row = entry.row
        values = [entry.id, month_label(row.month), row.school, HISTORY_STATUS.get(entry.status, entry.status),
                  entry.replaced_by, _local(entry.voided_at, tz), entry.void_reason, entry.entered_by,
                  row.sender, _local(row.received_at, tz), "是" if row.late else "否", row.schools_count,
                  row.enrolled, row.participating, "是" if row.two_plus_n else "否", row.n, "、".join(row.services)]
        audit.append(_cells(audit, values))
    audit.auto_filter.ref = f"A1:{get_column_letter(len(HISTORY_COLUMNS))}{len(history) + 1}"
    wb.properties.creator = "mailbot"
    wb.properties.title = "课后服务报送台账"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
