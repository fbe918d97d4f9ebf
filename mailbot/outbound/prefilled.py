"""The blank submission table, pre-filled with a school's name (SPEC 3, 6).

Schools get it attached to every reminder and rejection, fill in one row and send it back. Its
layout follows the plan's annex (title, month, 填报单位 row, header, one data row, 说明 notes) and
its header texts are ones the header rules of SPEC 3.2 recognise, so a returned template is always
readable. The bytes are deterministic for the same input, so callers may cache them.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from mailbot.rules.labels import LEVEL_LABELS, SECTION_LABELS
from mailbot.rules.month import Month

TITLE = "城区义务教育阶段学校课后服务开展情况汇总表"

# (header text, column width). The texts are the plan's annex word for word: leaders forward the
# bureau's 汇总表 upward, and a school's template must say what the bureau's says. The reader
# recognises them by the SPEC 3.2 words (学校数, 学校名称, 在校+学生, 参与+学生, 2+N+模式, 拓展服务).
COLUMNS: tuple[tuple[str, float], ...] = (
    ("序号", 6),
    ("城区学校名称", 26),
    ("城区开展课后服务学校数（所）", 14),
    ("城区学校在校学生数（人）", 13),
    ("城区参与课后服务学生数（人）", 15),
    ("城区学校开展“2+N”课后服务对应模式栏请填“是”，并填写具体服务项目名称", 22),
    ("开展“N”项“拓展服务”，具体服务项目名称", 40),
)
# The annex's two 说明 notes about the table, word for word as every school's copy of the annex
# carries them (its third note, "学生数只填阿拉伯数字", tells a school how to fill the table in).
ANNEX_NOTES = "说明：1.“2+N”中的“2”指作业辅导、体育活动，“N”指学校开展的拓展服务项目数；2.请于每月24日前报送。"
HEADER_ROW = 4
DATA_ROW = 5
COUNT_COLUMNS = "CDE"
TWO_PLUS_N_COLUMN = "F"
SERVICES_COLUMN = "G"
LAST_COLUMN = "G"

# The two sections of SPEC 1; a deployment with other addresses passes mailbox_address.
SECTIONS = {
    "primary": (SECTION_LABELS["primary"], "chuyoujiao@163.com"),
    "middle": (SECTION_LABELS["middle"], "zjg23236764@163.com"),
}

# Fixed so that the same input gives the same bytes (the file is cached and attached many times).
FIXED_TIMESTAMP = datetime(2022, 1, 1, 0, 0, 0)
_ZIP_TIMESTAMP = (2022, 1, 1, 0, 0, 0)

_UNSAFE_IN_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')

_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)


def _label_if_valid(month: str | None) -> str | None:
    """`Month.label` ('2022-10' -> '2022年10月'), or None for None or anything that is not a valid
    YYYY-MM (the template is still made, without a month)."""
    valid = Month.parse_or_none(month)
    return valid.label if valid else None


def fit_a4_landscape(ws: Worksheet) -> None:
    """A4 landscape, as many pages long as needed but one page wide."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def print_a4_landscape(ws: Worksheet, header_row: int, margin: float) -> None:
    """How the bureau prints the annex's tables: A4 landscape, fit to the page width, centred, the
    title and header repeated on every page."""
    ws.print_title_rows = f"1:{header_row}"
    fit_a4_landscape(ws)
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = margin


def template_filename(school_name: str | None, month: str | None) -> str:
    """E.g. '安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx'; safe as a file name on any system."""
    school = _UNSAFE_IN_FILENAME.sub("", school_name or "").strip()[:60]
    return f"{school}{_label_if_valid(month) or ''}课后服务开展情况汇总表.xlsx"


def _notes(school_given: bool, level: str | None, deadline_day: int, mailbox_address: str | None) -> list[str]:
    if level in SECTIONS:
        section, default_address = SECTIONS[level]
        where = f"{section}邮箱 {mailbox_address or default_address}"
    elif mailbox_address:
        where = f"邮箱 {mailbox_address}"
    else:
        where = "、".join(f"{LEVEL_LABELS[lv]}发送至{s}邮箱 {a}" for lv, (s, a) in SECTIONS.items())
    return [
        "说明：",
        "1. 学校名称已预先填好，请核对；如需修改，请填写学校全称。" if school_given else "1. 学校名称请填写学校全称。",
        "2. “开展课后服务学校数”指本校开展课后服务的校区数，一般填1；“在校学生数”“参与课后服务学生数”"
        "只填阿拉伯数字，不加单位；参与课后服务学生数不能大于在校学生数。",
        "3. “2+N”中的“2”指作业辅导、体育活动两项基本服务，“N”指学校开展的拓展服务项目数"
        "（如科普、文艺、劳动、阅读、兴趣小组、社团等）；开展3项及以上拓展服务即为“2+3”模式。",
        "4. “2+N”模式一栏请在下拉列表中选择“是”或“否”；拓展服务项目名称一栏请逐项填写拓展服务，"
        "用“、”分隔，不必填写作业辅导、体育活动。",
        f"5. 请于每月{deadline_day}日前，将本表（保持 Excel 格式）作为附件直接发送至{where}；"
        "请勿使用“超大附件”或网盘链接，也不要发送照片或扫描件。",
    ]


def _fill_sheet(ws: Worksheet, school_name: str, level: str | None, month: str | None,
                deadline_day: int, mailbox_address: str | None) -> None:
    width = len(COLUMNS)
    label = _label_if_valid(month)

    def banner(row: int, text: str, font: Font, alignment: Alignment, height: float) -> None:
        ws.cell(row=row, column=1, value=text).font = font
        ws.cell(row=row, column=1).alignment = alignment
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        ws.row_dimensions[row].height = height

    banner(1, TITLE, Font(name="宋体", size=16, bold=True), _CENTER, 32)
    banner(2, f"（{label}）" if label else "（    年  月）", Font(name="宋体", size=12), _CENTER, 22)
    banner(3, f"填报单位：{school_name}    填报时间：", Font(name="宋体", size=11), _LEFT, 22)

    header_fill = PatternFill(fill_type="solid", start_color="F2F2F2", end_color="F2F2F2")
    for index, (text, col_width) in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=HEADER_ROW, column=index, value=text)
        cell.font = Font(name="宋体", size=11, bold=True)
        cell.alignment, cell.border, cell.fill = _CENTER, _BORDER, header_fill
        ws.column_dimensions[cell.column_letter].width = col_width
    ws.row_dimensions[HEADER_ROW].height = 48

    for index in range(1, width + 1):
        cell = ws.cell(row=DATA_ROW, column=index)
        cell.border, cell.alignment = _BORDER, _CENTER
        cell.font = Font(name="宋体", size=11)
    ws.cell(row=DATA_ROW, column=1, value=1)
    ws.cell(row=DATA_ROW, column=2, value=school_name or None)
    ws[f"{SERVICES_COLUMN}{DATA_ROW}"].alignment = _LEFT
    for letter in COUNT_COLUMNS:
        ws[f"{letter}{DATA_ROW}"].number_format = "0"
    ws.row_dimensions[DATA_ROW].height = 36

    yes_no = DataValidation(type="list", formula1='"是,否"', allow_blank=True, showDropDown=False,
                            showErrorMessage=True, errorTitle="请选择“是”或“否”",
                            error="本栏只能填写“是”或“否”，请从下拉列表中选择。",
                            showInputMessage=True, promptTitle="是否落实“2+N”模式",
                            prompt="请选择“是”或“否”。")
    yes_no.add(f"{TWO_PLUS_N_COLUMN}{DATA_ROW}")
    counts = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                            showErrorMessage=True, errorTitle="请填写整数",
                            error="学校数、学生数只填阿拉伯数字（整数），不加单位。")
    counts.add(f"{COUNT_COLUMNS[0]}{DATA_ROW}:{COUNT_COLUMNS[-1]}{DATA_ROW}")
    ws.add_data_validation(yes_no)
    ws.add_data_validation(counts)

    notes = _notes(bool(school_name), level, deadline_day, mailbox_address)
    for offset, text in enumerate(notes, start=DATA_ROW + 1):
        banner(offset, text, Font(name="宋体", size=10), _LEFT, 18 if text == "说明：" else 30)

    ws.freeze_panes = f"A{DATA_ROW}"  # the title and header stay visible
    print_a4_landscape(ws, HEADER_ROW, margin=0.5)
    ws.print_area = f"A1:{LAST_COLUMN}{DATA_ROW + len(notes)}"


def _normalised_zip(data: bytes) -> bytes:
    """Rewrite the archive with fixed entry timestamps: zipfile stamps each entry with 'now'."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIMESTAMP)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def build_template(school_name: str | None, level: str | None, month: str | None, *,
                   deadline_day: int = 24, mailbox_address: str | None = None) -> bytes:
    """The .xlsx a school fills in: the annex's layout with its name and the month pre-filled.

    `level` ("primary"/"middle") picks the section and mailbox named in the notes (both when None);
    `month` is "YYYY-MM" (a blank month line when None or malformed).
    """
    # One line of printable text, whatever the roster holds (openpyxl refuses control characters).
    school = " ".join(ILLEGAL_CHARACTERS_RE.sub("", school_name or "").split())[:200]
    wb = Workbook()
    ws = wb.active
    ws.title = "汇总表"
    _fill_sheet(ws, school, level, month, deadline_day, mailbox_address)
    wb.properties.creator = "mailbot"
    wb.properties.title = TITLE
    wb.properties.created = FIXED_TIMESTAMP
    wb.properties.modified = FIXED_TIMESTAMP

    buffer = io.BytesIO()
    # ExcelWriter directly: openpyxl's save_workbook() would stamp `modified` with the current time.
    archive = zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)
    ExcelWriter(wb, archive).save()
    return _normalised_zip(buffer.getvalue())
