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
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.worksheet import Worksheet

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


def _style_row(ws: Worksheet, row: int, width: int, font: Font = FONT, fill: PatternFill | None = None) -> None:
    for column in range(1, width + 1):
        cell = ws.cell(row=row, column=column)
        cell.border, cell.font = BORDER, font
        cell.alignment = LEFT if column in (2, 7, 8) else CENTER
        if fill is not None:
            cell.fill = fill


def _banner(ws: Worksheet, row: int, text: str, font: Font, alignment: Alignment, width: int, height: float) -> None:
    set_text(ws.cell(row=row, column=1), text)
    ws.cell(row=row, column=1).font = font
    ws.cell(row=row, column=1).alignment = alignment
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    ws.row_dimensions[row].height = height


def _remark(line: SchoolLine, tz: ZoneInfo) -> str:
    if line.state == "missing":
        return "未报送"
    if line.state == "excused":
        return "本月免报"
    if line.state == "late" and line.row is not None:
        local = line.row.received_at.astimezone(tz)
        return f"逾期报送（{local.month}月{local.day}日报送）"
    return ""


def _school_row(ws: Worksheet, row: int, index: int, line: SchoolLine, tz: ZoneInfo, width: int) -> None:
    ws.cell(row=row, column=1, value=index)
    set_text(ws.cell(row=row, column=2), line.name)
    if line.row is not None:
        ws.cell(row=row, column=3, value=line.row.schools_count)
        ws.cell(row=row, column=4, value=line.row.enrolled)
        ws.cell(row=row, column=5, value=line.row.participating)
        ws.cell(row=row, column=6, value="是" if line.row.two_plus_n else "否")
        set_text(ws.cell(row=row, column=7), "、".join(line.row.services))
    set_text(ws.cell(row=row, column=8), _remark(line, tz))
    _style_row(ws, row, width)
    # Explicit heights: LibreOffice and WPS do not grow rows for wrapped text in a file they open.
    ws.row_dimensions[row].height = 20 if len(ws.cell(row=row, column=7).value or "") <= 20 else 32


def _figures_row(ws: Worksheet, row: int, label: str, figures: Figures, width: int) -> None:
    set_text(ws.cell(row=row, column=2), label)
    ws.cell(row=row, column=3, value=figures.campuses)
    ws.cell(row=row, column=4, value=figures.enrolled)
    ws.cell(row=row, column=5, value=figures.participating)
    ws.cell(row=row, column=6, value=f"{figures.two_plus_n_schools}所（{percent(figures.two_plus_n.value)}）")
    ws.cell(row=row, column=7, value=f"“2+3”模式{figures.two_plus_three_schools}所，占{percent(figures.two_plus_three.value)}；"
                                      f"学生参与率{percent(figures.participation.value)}")
    remark = f"应报{figures.required}所，已报{figures.reported}所，未报{figures.missing}所"
    ws.cell(row=row, column=8, value=remark + (f"，免报{figures.excused}所" if figures.excused else ""))
    _style_row(ws, row, width, BOLD, SUBTOTAL_FILL)
    ws.row_dimensions[row].height = 30


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


def _fill_table(ws: Worksheet, summary: Summary, tz: ZoneInfo, now: datetime, reporter: str) -> None:
    columns = list(COLUMNS) + [REMARK_COLUMN]
    width = len(columns)
    _banner(ws, 1, TITLE, Font(name="宋体", size=16, bold=True), CENTER, width, 32)
    _banner(ws, 2, f"（{month_label(summary.month)}）", Font(name="宋体", size=12), CENTER, width, 22)
    _banner(ws, 3, f"填报单位：{reporter}    填报时间：{label_date(now.astimezone(tz))}", FONT, LEFT, width, 22)
    for index, (text, col_width) in enumerate(columns, start=1):
        cell = ws.cell(row=HEADER_ROW, column=index, value=text)
        cell.font, cell.alignment, cell.border, cell.fill = BOLD, CENTER, BORDER, HEADER_FILL
        ws.column_dimensions[cell.column_letter].width = col_width
    ws.row_dimensions[HEADER_ROW].height = 48

    row = HEADER_ROW + 1
    for level in LEVELS:
        lines = [line for line in summary.schools if line.level == level]
        set_text(ws.cell(row=row, column=1), LEVEL_HEADINGS[level])
        _style_row(ws, row, width, BOLD)
        ws.row_dimensions[row].height = 20
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        ws.cell(row=row, column=1).alignment = LEFT
        row += 1
        for index, line in enumerate(lines, start=1):
            _school_row(ws, row, index, line, tz, width)
            row += 1
        _figures_row(ws, row, f"{LEVEL_LABELS[level]}小计", summary.scopes[level], width)
        row += 1
    _figures_row(ws, row, "合计", summary.scopes["all"], width)
    last_table_row = row
    for number_column in "CDE":
        for cells in ws[f"{number_column}{HEADER_ROW + 1}:{number_column}{last_table_row}"]:
            cells[0].number_format = "#,##0"

    notes = _notes(summary, tz, now)
    for offset, text in enumerate(notes, start=last_table_row + 1):
        _banner(ws, offset, text, Font(name="宋体", size=10), LEFT, width, 18 if text == OUR_NOTES_HEADING else 32)

    ws.freeze_panes = f"C{HEADER_ROW + 1}"  # title, header and school names stay visible
    print_a4_landscape(ws, HEADER_ROW, margin=0.4)
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.print_area = f"A1:H{last_table_row + len(notes)}"


TREND_COLUMNS = (("月份", 12), ("应报学校（所）", 10), ("已报送（所）", 10), ("按时（所）", 9), ("逾期（所）", 9),
                 ("未报送（所）", 10), ("在校学生数（人）", 13), ("参与学生数（人）", 13), ("学生参与率", 11),
                 ("“2+N”覆盖率", 11), ("“2+3”占比", 11))


def _fill_trend(ws: Worksheet, summary: Summary) -> None:
    _banner(ws, 1, "城区义务教育阶段学校课后服务主要指标月度趋势（全部学校）", Font(name="宋体", size=14, bold=True),
            CENTER, len(TREND_COLUMNS), 28)
    for index, (text, col_width) in enumerate(TREND_COLUMNS, start=1):
        cell = ws.cell(row=2, column=index, value=text)
        cell.font, cell.alignment, cell.border, cell.fill = BOLD, CENTER, BORDER, HEADER_FILL
        ws.column_dimensions[cell.column_letter].width = col_width
    ws.row_dimensions[2].height = 32
    for row, point in enumerate(summary.trend, start=3):
        f = point.scopes["all"]
        values = [month_label(point.month), f.required, f.reported, f.on_time, f.late, f.missing, f.enrolled,
                  f.participating, shown_rate(f.participation.value), shown_rate(f.two_plus_n.value),
                  shown_rate(f.two_plus_three.value)]
        for column, value in enumerate(values, start=1):
            cell = ws.cell(row=row, column=column, value=value)
            cell.border, cell.font, cell.alignment = BORDER, FONT, CENTER if column == 1 else RIGHT
            cell.number_format = "0.0%" if column >= 9 else "#,##0"
    last = 2 + len(summary.trend)
    ws.freeze_panes = "B3"

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
    fit_a4_landscape(ws)


def build_summary_workbook(summary: Summary, tz: ZoneInfo, now: datetime, reporter: str = "安溪县教育局") -> bytes:
    """The .xlsx attachment of the summary email."""
    wb = Workbook()
    table = wb.active
    table.title = SHEET_TABLE
    _fill_table(table, summary, tz, now, reporter)
    _fill_trend(wb.create_sheet(SHEET_TREND), summary)
    wb.properties.creator = "mailbot"
    wb.properties.title = f"{month_label(summary.month)}{TITLE}"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
