"""Turn one raw table row into checked figures (SPEC 3.2 end, 3.3).

Pure. Every problem of the row is collected (not only the first), each in Chinese that names the
sheet, row and column so the school can find and fix it. The school and the month are left for the
caller (identify / month stages).
"""

from __future__ import annotations

from mailbot.rules.model import Cell, RawRow, RowResult
from mailbot.tables.locate import header_text, mode_label
from mailbot.rules.values import (
    cell_text,
    extension_services,
    fragments_not_names,
    is_blank,
    is_mark,
    parse_count,
    parse_yes_no,
    quoted,
    split_services,
)

# Column names as the template calls them, for messages.
COLUMN_NAMES = {
    "school": "学校名称",
    "schools_count": "开展课后服务学校数",
    "enrolled": "在校学生数",
    "participating": "参与课后服务学生数",
    "two_plus_n": "是否开展“2+N”模式",
    "services": "拓展服务项目名称",
}
# N a marked mode stands for; "2+N" (2+4及以上) counts as four.
MODE_N = {"2+1": 1, "2+2": 2, "2+3": 3, "2+N": 4}


class _Problems:
    """Collects errors and warnings for one row, each prefixed with where it is."""

    def __init__(self, raw: RawRow):
        self.raw = raw
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def row_place(self) -> str:
        return f"工作表“{self.raw.sheet}”第{self.raw.row_number}行"

    def cell_place(self, key: str) -> str:
        letter = self.raw.columns.get(key)
        name = COLUMN_NAMES.get(key, f"“{key}”模式")
        column = f" {letter}列（{name}）" if letter else f"（{name}）"
        return self.row_place() + column

    def error(self, place: str, text: str) -> None:
        self.errors.append(f"{place}：{text}。")

    def warning(self, place: str, text: str) -> None:
        self.warnings.append(f"{place}：{text}。")


def _count(raw: RawRow, key: str, problems: _Problems) -> int | None:
    """A required count: blank or unparseable is an error for the row."""
    cell = raw.cells.get(key)
    if key not in raw.cells:
        problems.error(problems.row_place(), f"表格中没有“{COLUMN_NAMES[key]}”一列，请使用原表格式填写")
        return None
    if is_blank(cell):
        problems.error(problems.cell_place(key), f"未填写{COLUMN_NAMES[key]}，请填写准确人数")
        return None
    try:
        return parse_count(cell)
    except ValueError as exc:
        problems.error(problems.cell_place(key), str(exc))
        return None


def _schools_count(raw: RawRow, problems: _Problems) -> int | None:
    """Blank (or no such column) means the usual single campus, with a warning."""
    cell = raw.cells.get("schools_count")
    if is_blank(cell):
        problems.warning(problems.cell_place("schools_count"), "未填写开展课后服务学校数，已按1所记录")
        return 1
    try:
        return parse_count(cell)
    except ValueError as exc:
        problems.error(problems.cell_place("schools_count"), str(exc).replace("人数", "学校数"))
        return None


def _check_counts(result: RowResult, problems: _Problems) -> None:
    if result.enrolled is not None and result.enrolled <= 0:
        problems.error(problems.cell_place("enrolled"), "在校学生数必须大于0，请填写准确人数")
    if result.enrolled is not None and result.participating is not None \
            and result.participating > result.enrolled:
        problems.error(problems.row_place(),
                       f"参与课后服务学生数（{result.participating}）大于在校学生数（{result.enrolled}），请核对")


def _services_after_yes(cell: Cell) -> list[str]:
    """Services written in the yes/no cell itself: "是（科普、美术）", "是：科普、美术"."""
    if not isinstance(cell, str):
        return []
    text = cell.strip()
    if not text.startswith("是"):
        return []
    return split_services(text[1:].strip(" \u3000:：,，、-—"))


def _listed_services(raw: RawRow, problems: _Problems) -> list[str]:
    """The extension services the row lists, from the services column and the yes/no cell."""
    cell = raw.cells.get("services")
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        problems.warning(problems.cell_place("services"),
                         f"{quoted(cell)}是数字，请填写具体的拓展服务项目名称（如科普、文艺、劳动），用顿号隔开")
        cell = None
    names = split_services(cell) + _services_after_yes(raw.cells.get("two_plus_n"))
    fragments = fragments_not_names(names)
    if fragments:
        shown = "、".join(f"“{name}”" for name in fragments)
        problems.warning(problems.cell_place("services"),
                         f"拓展服务项目中的{shown}不是项目名称，未计入N；请填写具体项目名称（如科普、文艺、劳动）")
    return extension_services(names)


def _two_plus_n_single(raw: RawRow, result: RowResult, problems: _Problems) -> None:
    if "two_plus_n" not in raw.cells:
        problems.warning(problems.row_place(), "表格中没有“是否开展2+N模式”一列，未能记录是否开展“2+N”模式，请使用原表格式填写")
        result.n = len(result.services)
        return
    answer, warning = parse_yes_no(raw.cells["two_plus_n"])
    if warning:
        problems.warning(problems.cell_place("two_plus_n"), warning)
    result.two_plus_n = answer
    result.n = len(result.services)
    if answer and not result.services:
        problems.warning(problems.cell_place("services"),
                         "填写了开展“2+N”模式，但没有列出拓展服务项目，N按0记录；请填写具体项目名称，用顿号隔开")
    if not answer and result.services and not warning:
        problems.warning(problems.cell_place("two_plus_n"),
                         f"填写了未开展“2+N”模式，但列出了{len(result.services)}项拓展服务，请核对")


def _two_plus_n_modes(raw: RawRow, result: RowResult, problems: _Problems) -> None:
    for label, cell in raw.mode_cells.items():
        if not is_blank(cell) and not is_mark(cell) and parse_yes_no(cell) != (False, None):
            problems.warning(problems.cell_place(label),
                             f"{quoted(cell)}无法识别，请在所开展的模式下打“√”")
    marked = [label for label, cell in raw.mode_cells.items() if is_mark(cell)]
    mode = mode_label(header_text(raw.mode)) if raw.mode else None  # tolerate "2+4及以上" from other callers
    if len(marked) > 1:
        problems.warning(problems.row_place(),
                         f"在{len(marked)}个模式下都打了“√”（{'、'.join(marked)}），已按“{mode}”记录，请只在一个模式下打“√”")
    listed = len(result.services)
    if mode is None:
        if "two_plus_n" in raw.cells and parse_yes_no(raw.cells["two_plus_n"])[0]:
            _two_plus_n_single(raw, result, problems)  # a separate 是/否 column said yes
            return
        result.two_plus_n = False
        result.n = listed
        if listed:
            problems.warning(problems.row_place(),
                             f"列出了{listed}项拓展服务，但没有在任何“2+N”模式下打“√”，已按未开展记录，请核对")
        return
    result.two_plus_n = True
    mode_n = MODE_N[mode]
    consistent = listed == mode_n or (mode == "2+N" and listed >= mode_n)
    if listed and not consistent:
        problems.warning(problems.cell_place("services"),
                         f"在“{mode}”下打了“√”，但列出的拓展服务有{listed}项（{'、'.join(result.services)}），"
                         f"已按{listed}项记录，请核对")
    result.n = listed if listed else mode_n


def interpret_row(raw: RawRow, layout: str) -> RowResult:
    """Parse and check one row. `layout` is the table's: "single" or "modes"."""
    problems = _Problems(raw)
    result = RowResult(sheet=raw.sheet, row_number=raw.row_number,
                       school_as_written=cell_text(raw.cells.get("school")))
    result.schools_count = _schools_count(raw, problems)
    result.enrolled = _count(raw, "enrolled", problems)
    result.participating = _count(raw, "participating", problems)
    _check_counts(result, problems)
    result.services = _listed_services(raw, problems)
    if layout == "modes":
        _two_plus_n_modes(raw, result, problems)
    else:
        _two_plus_n_single(raw, result, problems)
    result.errors, result.warnings = problems.errors, problems.warnings
    return result
