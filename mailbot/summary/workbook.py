"""The official 汇总表 as an .xlsx attachment, in the layout of the plan's annex (SPEC 7).

Sheet 1 is the table a clerk would forward upward: merged title, month, 填报单位 line, the annex's
header texts exactly (shared with the pre-filled template), one row per school grouped by level with
a subtotal per level and a total row, a 备注 column for late, missing and excused schools, the
annex's 说明 notes and after them our own, marked as ours; borders, widths, frozen header and an A4
landscape print setup. Sheet 2 holds the monthly trend with a native Excel line chart.

Figures are written as values, not =SUM() formulas: the numbers are the system's, and a file whose
formulas have no cached values shows blanks in readers that do not recalculate.
"""

from __future__ import annotations

import io
from copy import copy
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.cell_range import CellRange

from mailbot.config import LEVELS
from mailbot.rules.labels import LEVEL_LABELS
from mailbot.rules.month import month_label
from mailbot.outbound.prefilled import ANNEX_NOTES, COLUMNS, TITLE, fit_a4_landscape, print_a4_landscape
from mailbot.summary.aggregate import Figures, SchoolLine, Summary
from mailbot.summary.formatting import percent, shown_rate
from mailbot.timeutil import label_date, label_datetime

SHEET_TABLE = "汇总表"
SHEET_TREND = "月度趋势"
REMARK_COLUMN = ("备注", 26)
HEADER_ROW = 4
FORMULA_LEADERS = ("=", "+", "-", "@")  # what Excel and WPS read as the start of a formula

_THIN = Side(style="thin", color="000000")
BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
RIGHT = Alignment(horizontal="right", vertical="center")
FONT = Font(name="宋体", size=11)
BOLD = Font(name="宋体", size=11, bold=True)
HEADER_FILL = PatternFill(fill_type="solid", start_color="F2F2F2", end_color="F2F2F2")
SUBTOTAL_FILL = PatternFill(fill_type="solid", start_color="F7F7F7", end_color="F7F7F7")
TITLE_FONT = Font(name="宋体", size=16, bold=True)
MONTH_FONT = Font(name="宋体", size=12)
NOTE_FONT = Font(name="宋体", size=10)
TREND_TITLE_FONT = Font(name="宋体", size=14, bold=True)
LEVEL_HEADINGS = {"primary": "一、小学", "middle": "二、中学"}


def attachment_name(month: str) -> str:
    """"2022年10月城区义务教育阶段学校课后服务开展情况汇总表.xlsx"."""
    return f"{month_label(month)}{TITLE}.xlsx"


def clean_text(value: str) -> str:
    """Text openpyxl accepts: control characters (which it refuses) removed."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def set_text(cell: Cell, value: str | None) -> Cell:
    """Write school-supplied text as text. A name or service that begins with = + - @ would be a
    formula to Excel (openpyxl itself writes any "=..." string as one): force the string type and
    Excel's quote prefix, so it is shown as written and stays text when someone edits the cell."""
    text = clean_text(value or "")
    cell.value = text or None
    if text.startswith(FORMULA_LEADERS):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


class _Rows:
    """Rows for a write-only sheet, styled cheaply. openpyxl looks a style object up in the
    workbook's tables (hashing it) on every assignment, which for 10,000 schools was most of the
    summary's time: each combination of font, fill, alignment, border and number format is looked
    up once here, and every cell copies the resulting style array."""

    def __init__(self, ws: WriteOnlyWorksheet):
        self.ws = ws
        self.count = 0  # rows written
        self._styles: dict[tuple, tuple[StyleArray, tuple]] = {}

    def cell(self, value=None, *, font: Font = FONT, alignment: Alignment = CENTER, border: Border | None = BORDER,
             fill: PatternFill | None = None, number_format: str | None = None, text: bool = False) -> WriteOnlyCell:
        """A cell; `text`: school-supplied text, written as text (see `set_text`)."""
        quote = text and bool(value) and clean_text(value).startswith(FORMULA_LEADERS)
        key = (id(font), id(alignment), id(border), id(fill), number_format, quote)
        if key not in self._styles:
            sample = WriteOnlyCell(self.ws)
            sample.font, sample.alignment = font, alignment
            if border is not None:
                sample.border = border
            if fill is not None:
                sample.fill = fill
            if number_format is not None:
                sample.number_format = number_format
            sample.quotePrefix = quote
            self._styles[key] = (sample._style, (font, alignment, border, fill))  # the objects keep their ids
        cell = WriteOnlyCell(self.ws)
        if text:
            set_text(cell, value)
        elif value is not None:
            cell.value = value
        cell._style = copy(self._styles[key][0])
        return cell

    def append(self, cells: list, height: float | None = None) -> int:
        """Write the row; returns its number."""
        self.count += 1
        row = self.count
        if height is not None:
            self.ws.row_dimensions[row].height = height
        self.ws.append(cells)
        return row

    def banner(self, text: str, font: Font, alignment: Alignment, width: int, height: float,
               border: Border | None = None, fill: PatternFill | None = None) -> int:
        """A line of text across the table's width (merged)."""
        first = self.cell(text, font=font, alignment=alignment, border=border, fill=fill, text=True)
        rest = [self.cell(font=font, border=border, fill=fill) for _ in range(width - 1)] if border else []
        row = self.append([first, *rest], height)
        self.ws.merged_cells.add(CellRange(min_col=1, min_row=row, max_col=width, max_row=row))
        return row


def _remark(line: SchoolLine, tz: ZoneInfo) -> str:
    if line.state == "missing":
        return "未报送"
    if line.state == "excused":
        return "本月免报"
    if line.state == "late" and line.row is not None:
        local = line.row.received_at.astimezone(tz)
        return f"逾期报送（{local.month}月{local.day}日报送）"
    return ""


def _alignment(column: int) -> Alignment:
    return LEFT if column in (2, 7, 8) else CENTER


def _number_format(column: int) -> str | None:
    return "#,##0" if column in (3, 4, 5) else None


def _table_row(rows: _Rows, values: list, font: Font = FONT, fill: PatternFill | None = None,
               text_columns: tuple[int, ...] = (2, 7, 8)) -> list:
    return [rows.cell(value, font=font, alignment=_alignment(column), fill=fill, number_format=_number_format(column),
                      text=column in text_columns)
            for column, value in enumerate(values, start=1)]


def _school_row(rows: _Rows, index: int, line: SchoolLine, tz: ZoneInfo) -> None:
    row = line.row
    services = "、".join(row.services) if row is not None else None
    values = [index, line.name, *((row.schools_count, row.enrolled, row.participating,
                                   "是" if row.two_plus_n else "否", services) if row is not None else (None,) * 5),
              _remark(line, tz)]
    # Explicit heights: LibreOffice and WPS do not grow rows for wrapped text in a file they open.
    rows.append(_table_row(rows, values), 20 if len(clean_text(services or "")) <= 20 else 32)


def _figures_row(rows: _Rows, label: str, figures: Figures) -> int:
    remark = f"应报{figures.required}所，已报{figures.reported}所，未报{figures.missing}所"
    values = [None, label, figures.campuses, figures.enrolled, figures.participating,
              f"{figures.two_plus_n_schools}所（{percent(figures.two_plus_n.value)}）",
              f"“2+3”模式{figures.two_plus_three_schools}所，占{percent(figures.two_plus_three.value)}；"
              f"学生参与率{percent(figures.participation.value)}",
              remark + (f"，免报{figures.excused}所" if figures.excused else "")]
    return rows.append(_table_row(rows, values, BOLD, SUBTOTAL_FILL, text_columns=(2,)), 30)


OUR_NOTES_HEADING = "补充说明（汇总时添加）："


def _notes(summary: Summary, tz: ZoneInfo, now: datetime) -> list[str]:
    """The annex's notes as the plan has them, then ours, numbered apart so none is taken for the plan's."""
    total = summary.scopes["all"]
    missing = "、".join(line.name for line in summary.missing)
    return [
        ANNEX_NOTES,
        OUR_NOTES_HEADING,
        f"（1）本表由课后服务报送系统根据各校报送的数据自动汇总，数据统计至{label_datetime(now, tz)}；"
        f"报送截止时间为{label_date(summary.deadline)}。",
        f"（2）应报学校{total.required}所（小学{summary.scopes['primary'].required}所、"
        f"中学{summary.scopes['middle'].required}所），已报送{total.reported}所（按时{total.on_time}所、"
        f"逾期{total.late}所），未报送{total.missing}所" + (f"：{missing}。" if missing else "。"),
        "（3）“2+N”覆盖率、“2+3”占比按学校（不按校区）计算，分母为应报学校数，未报送学校按未落实计；"
        "“2+3”模式指落实“2+N”且开展3项及以上拓展服务。目标：“2+N”模式100%，“2+3”模式不低于80%。",
        "（4）学生参与率＝参与课后服务学生数÷在校学生数，按已报送学校计算。",
    ]


def _fill_table(ws: WriteOnlyWorksheet, summary: Summary, tz: ZoneInfo, now: datetime, reporter: str) -> None:
    columns = list(COLUMNS) + [REMARK_COLUMN]
    width = len(columns)
    # A write-only sheet takes its columns, panes and print set-up before its first row.
    for index, (_text, col_width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = col_width
    ws.freeze_panes = f"C{HEADER_ROW + 1}"  # title, header and school names stay visible
    print_a4_landscape(ws, HEADER_ROW, margin=0.4)
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"

    rows = _Rows(ws)
    rows.banner(TITLE, TITLE_FONT, CENTER, width, 32)
    rows.banner(f"（{month_label(summary.month)}）", MONTH_FONT, CENTER, width, 22)
    rows.banner(f"填报单位：{reporter}    填报时间：{label_date(now.astimezone(tz))}", FONT, LEFT, width, 22)
    rows.append([rows.cell(text, font=BOLD, fill=HEADER_FILL) for text, _ in columns], 48)
    for level in LEVELS:
        rows.banner(LEVEL_HEADINGS[level], BOLD, LEFT, width, 20, border=BORDER)
        for index, line in enumerate((line for line in summary.schools if line.level == level), start=1):
            _school_row(rows, index, line, tz)
        _figures_row(rows, f"{LEVEL_LABELS[level]}小计", summary.scopes[level])
    last_table_row = _figures_row(rows, "合计", summary.scopes["all"])
    notes = _notes(summary, tz, now)
    for text in notes:
        rows.banner(text, NOTE_FONT, LEFT, width, 18 if text == OUR_NOTES_HEADING else 32)
    ws.print_area = f"A1:H{last_table_row + len(notes)}"


TREND_COLUMNS = (("月份", 12), ("应报学校（所）", 10), ("已报送（所）", 10), ("按时（所）", 9), ("逾期（所）", 9),
                 ("未报送（所）", 10), ("在校学生数（人）", 13), ("参与学生数（人）", 13), ("学生参与率", 11),
                 ("“2+N”覆盖率", 11), ("“2+3”占比", 11))


def _fill_trend(ws: WriteOnlyWorksheet, summary: Summary) -> None:
    # Columns, panes and the sheet's properties go to the file before its first row.
    for index, (_text, col_width) in enumerate(TREND_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(index)].width = col_width
    ws.freeze_panes = "B3"
    fit_a4_landscape(ws)
    rows = _Rows(ws)
    rows.banner("城区义务教育阶段学校课后服务主要指标月度趋势（全部学校）", TREND_TITLE_FONT, CENTER,
                len(TREND_COLUMNS), 28)
    rows.append([rows.cell(text, font=BOLD, fill=HEADER_FILL) for text, _ in TREND_COLUMNS], 32)
    for point in summary.trend:
        f = point.scopes["all"]
        values = [month_label(point.month), f.required, f.reported, f.on_time, f.late, f.missing, f.enrolled,
                  f.participating, shown_rate(f.participation.value), shown_rate(f.two_plus_n.value),
                  shown_rate(f.two_plus_three.value)]
        rows.append([rows.cell(value, alignment=CENTER if column == 1 else RIGHT,
                               number_format="0.0%" if column >= 9 else "#,##0")
                     for column, value in enumerate(values, start=1)])
    last = 2 + len(summary.trend)

    chart = LineChart()
    chart.title = "学生参与率、“2+N”覆盖率、“2+3”占比"
    chart.y_axis.title = "比例"
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.x_axis.title = "月份"
    # openpyxl hides axes unless told otherwise (delete=True by default since 3.1).
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.height, chart.width = 8.5, 22
    chart.add_data(Reference(ws, min_col=9, max_col=11, min_row=2, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=last))
    for series in chart.series:
        series.smooth = False
    ws.add_chart(chart, f"A{last + 2}")


def build_summary_workbook(summary: Summary, tz: ZoneInfo, now: datetime, reporter: str = "安溪县教育局") -> bytes:
    """The .xlsx attachment of the summary email."""
    # Write-only: rows go to the file as they are made, so 10,000 schools do not sit in memory as cells.
    wb = Workbook(write_only=True)
    _fill_table(wb.create_sheet(SHEET_TABLE), summary, tz, now, reporter)
    _fill_trend(wb.create_sheet(SHEET_TREND), summary)
    wb.properties.creator = "mailbot"
    wb.properties.title = f"{month_label(summary.month)}{TITLE}"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
