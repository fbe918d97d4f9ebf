"""Find the submission table in each sheet by its header words (SPEC 3.2).

Pure: takes the grids a reader produced and returns RawTables with the cells as written. The
header is found by what its cells say, never by position, because every school edits the template
a little (extra title rows, 单位名称 for 学校名称, a two-row header, a column moved).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from mailbot.rules.model import Cell, CellError, RawRow, RawTable, Sheet, TableFile
from mailbot.rules.values import cell_text, compact, is_blank, is_mark

# Real tables have about ten columns; looking further only costs time on hostile sheets.
MAX_HEADER_COLUMNS = 200
# The header sits near the top of its table; searching a whole 5000-row sheet cell by cell is slow.
MAX_HEADER_SEARCH_ROWS = 200
REQUIRED_KEYS = ("school", "enrolled", "participating")
# A row whose first non-blank cell starts with one of these ends the table (compared after compact()).
END_WORDS = ("合计", "总计", "小计", "说明", "备注", "填表人", "审核人", "注:", "联系人", "负责人", "制表人",
             "填报人", "校长")
_QUOTES_RE = re.compile(r"[\"'“”‘’「」『』〝〞]")
_MODE_RE = re.compile(r"2\+(\d{1,2}|N)(?:项)?(?:及以上|以上)?(?:模式)?")
_UNIT_RE = re.compile(r"\(?(人|所|个|名|项|校|人数|个数|单位:人|单位:所)?\)?")
_SEQUENCE_HEADERS = {"序号", "编号", "序", "No.", "NO."}


def header_text(cell: Cell) -> str:
    """A header cell ready for word matching: NFKC, no white space, no quote marks, Latin upper-case."""
    if isinstance(cell, CellError):
        return ""
    if isinstance(cell, str):
        return _header_string(cell)
    return _QUOTES_RE.sub("", compact(cell_text(cell))).upper()


@functools.lru_cache(maxsize=4096)
def _header_string(text: str) -> str:
    # Cached: the header search looks at the same cells several times (row alone, row with the
    # row below), and instruction sheets repeat the same long texts.
    return _QUOTES_RE.sub("", compact(cell_text(text))).upper()


def column_key(text: str) -> str | None:
    """The column a normalised header text names (SPEC 3.2 table), or None. Order matters:
    schools_count before school (学校数 is not 学校名称) and participating before enrolled (a
    participating header may say 在校学生中参与…)."""
    if not text:
        return None
    if "学校数" in text or "校区数" in text:
        return "schools_count"
    if "学校名称" in text or "单位名称" in text or text in ("学校", "单位", "学校(单位)", "单位(学校)"):
        return "school"
    if ("参与" in text or "参加" in text) and ("学生" in text or "人数" in text):
        return "participating"
    if ("在校" in text and "学生" in text) or "在校生" in text:
        return "enrolled"
    # The annex's yes/no header also asks for the service names ("…对应模式栏请填“是”，并填写具体服务
    # 项目名称"): a 2+N mode header is the yes/no column even when it mentions 项目名称.
    if "2+N" in text and "模式" in text and "拓展服务" not in text:
        return "two_plus_n"
    if "拓展服务" in text or "项目名称" in text:
        return "services"
    return None


def mode_label(text: str) -> str | None:
    """"2+1".."2+3" as they are; "2+N", "2+4及以上", "2+4以上", "2+5" all mean four or more: "2+N"."""
    match = _MODE_RE.fullmatch(text)
    if match is None:
        return None
    number = match.group(1)
    if number == "N":
        return "2+N"
    if int(number) < 1:
        return None
    return f"2+{number}" if int(number) <= 3 else "2+N"


def column_letter(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA", as Excel names columns."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass
class _Header:
    """Where each column is, as found in one or two header rows."""

    first_row: int  # 0-based
    last_row: int
    keys: dict[str, int] = field(default_factory=dict)  # key -> column index
    modes: dict[str, int] = field(default_factory=dict)  # "2+3" -> column index
    sequence_column: int | None = None

    @property
    def layout(self) -> str:
        return "modes" if len(self.modes) >= 2 else "single"

    def used_columns(self) -> list[int]:
        return sorted(set(self.keys.values()) | set(self.modes.values()))


class _Grid:
    """A sheet's cells, reading header text through merged ranges (data values stay as written)."""

    def __init__(self, sheet: Sheet):
        self.rows = sheet.rows
        # Merged ranges by each of their first few rows: only header rows are read through merges, and
        # indexing lazily keeps a hostile list of huge ranges from costing memory.
        self.merges_by_row: dict[int, list[tuple[int, int, int, int]]] = {}
        for merge in sheet.merged or []:
            first_row, first_col, last_row, last_col = merge
            if last_row < first_row or last_col < first_col or first_row < 0 or first_col < 0:
                continue
            for r in range(first_row, min(last_row, first_row + 3) + 1):
                self.merges_by_row.setdefault(r, []).append(merge)

    def cell(self, r: int, c: int) -> Cell:
        if 0 <= r < len(self.rows) and 0 <= c < len(self.rows[r]):
            return self.rows[r][c]
        return None

    def _merge_at(self, r: int, c: int) -> tuple[int, int, int, int] | None:
        for merge in self.merges_by_row.get(r, ()):
            if merge[1] <= c <= merge[3]:
                return merge
        return None

    def header_cell(self, r: int, c: int) -> str:
        value = self.cell(r, c)
        if is_blank(value):
            merge = self._merge_at(r, c)
            if merge is not None:
                value = self.cell(merge[0], merge[1])
        return header_text(value)

    def merged_with_row_below(self, r: int, c: int) -> bool:
        merge = self._merge_at(r, c)
        return merge is not None and merge[2] > r

    def width(self, r: int) -> int:
        return min(len(self.rows[r]), MAX_HEADER_COLUMNS) if 0 <= r < len(self.rows) else 0


def _looks_numeric(cell: Cell) -> bool:
    if isinstance(cell, bool) or isinstance(cell, CellError):
        return False
    if isinstance(cell, (int, float)):
        return True
    return isinstance(cell, str) and bool(re.fullmatch(r"[\d,]+(\.\d+)?[人所个名]?", compact(cell)))


def names_two_plus_n_and_services(text: str) -> bool:
    """A cell such as 是否开展“2+N”模式（是的请填写拓展服务项目）: the single 2+N column asking for
    the services after 是, or a services column beside a 2+N column; the whole header decides."""
    return "2+N" in text and "模式" in text and column_key(text) == "services"


def _match_columns(texts: dict[int, list[str]]) -> _Header:
    """Give each column the first key its candidate texts name; the first column wins a key.
    A cell naming both 2+N and the services is the 2+N column unless another cell is (SPEC 3.2)."""
    header = _Header(0, 0)
    naming_both: list[int] = []
    for col in sorted(texts):
        for text in texts[col]:
            if text in _SEQUENCE_HEADERS and header.sequence_column is None:
                header.sequence_column = col
                break
            label = mode_label(text)
            if label is not None:
                header.modes.setdefault(label, col)
                break
            if names_two_plus_n_and_services(text):
                naming_both.append(col)
                break
            key = column_key(text)
            if key is not None:
                header.keys.setdefault(key, col)
                break
    for col in naming_both:
        header.keys.setdefault("two_plus_n" if "two_plus_n" not in header.keys else "services", col)
    # A lone "2+N" column is the yes/no column, not a mode layout.
    if len(header.modes) == 1 and "two_plus_n" not in header.keys:
        header.keys["two_plus_n"] = header.modes.popitem()[1]
    return header


def _is_sub_header(grid: _Grid, r: int) -> bool:
    """Whether row r+1 continues the header started at row r (a two-row header)."""
    below = r + 1
    if below >= len(grid.rows):
        return False
    width = grid.width(below)
    if any(_looks_numeric(grid.cell(below, c)) for c in range(width)):
        return False
    for c in range(max(width, grid.width(r))):
        text = grid.header_cell(below, c)
        if grid.merged_with_row_below(r, c):
            return True
        if text and (mode_label(text) or column_key(text) or text == grid.header_cell(r, c)):
            return True
    return False


def _two_row_texts(grid: _Grid, r: int) -> dict[int, list[str]]:
    """Candidate texts per column: the lower cell alone first, then parent + lower cell.

    Without merge information a parent written once over several sub-columns leaves the upper cells
    to its right blank; they take the nearest parent to their left. A column whose lower cell is
    blank (merged vertically, or not) is named by its upper cell.
    """
    texts: dict[int, list[str]] = {}
    parent = ""
    for c in range(max(grid.width(r), grid.width(r + 1))):
        upper = grid.header_cell(r, c)
        lower = grid.header_cell(r + 1, c)
        if upper:
            parent = upper
        elif lower:
            upper = parent
        else:
            parent = ""
        if lower and lower != upper:
            texts[c] = [lower, upper + lower]
        elif upper:
            texts[c] = [upper]
    return texts


def find_header(grid: _Grid, start: int) -> _Header | None:
    """The first header at or below row `start`: a row naming at least one column, which alone or
    with the row below names the school, enrolled and participating columns."""
    for r in range(start, min(len(grid.rows), start + MAX_HEADER_SEARCH_ROWS)):
        if not _may_be_header(grid, r):
            continue
        single = {c: [grid.header_cell(r, c)] for c in range(grid.width(r))}
        own = _match_columns(single)
        if not own.keys and not own.modes:
            continue
        own.first_row = own.last_row = r
        if _is_sub_header(grid, r):
            both = _match_columns(_two_row_texts(grid, r))
            both.first_row, both.last_row = r, r + 1
            if _is_complete(both):
                return both
        if _is_complete(own):  # the row below only looked like more header
            return own
    return None


# Every header word (SPEC 3.2) contains one of these, before or after NFKC (２ -> 2).
_HEADER_HINTS = ("学", "单位", "在校", "参", "拓展", "项目", "2", "２", "模式")


def _may_be_header(grid: _Grid, r: int) -> bool:
    """A cheap test that skips most rows of long lists before the word matching."""
    if r in grid.merges_by_row:
        return True
    return any(isinstance(cell, str) and any(hint in cell for hint in _HEADER_HINTS) for cell in grid.rows[r])


def _is_complete(header: _Header) -> bool:
    return all(key in header.keys for key in REQUIRED_KEYS)


def _first_text(row: list[Cell]) -> str:
    for value in row:
        if not is_blank(value):
            return compact(cell_text(value))
    return ""


def _ends_table(row: list[Cell]) -> bool:
    return _first_text(row).startswith(END_WORDS)


def _is_empty_data_row(grid: _Grid, r: int, header: _Header) -> bool:
    """No content under any recognised column (a lone 序号 or a note in a spare column is no data)."""
    return all(is_blank(grid.cell(r, c)) for c in header.used_columns())


def _is_filler(grid: _Grid, r: int, header: _Header) -> bool:
    """A row between header and data that carries no data: units such as （人）, column numbers
    1 2 3 …, or header words (a third header row, a printed form's repeated header)."""
    if _is_column_numbering(grid.rows[r]):
        return True
    for c in header.used_columns():
        value = grid.cell(r, c)
        if is_blank(value):
            continue
        text = header_text(value)
        if not (_UNIT_RE.fullmatch(text) or column_key(text) or mode_label(text)):
            return False
    return True


def _is_column_numbering(row: list[Cell]) -> bool:
    numbers = [cell_text(v) for v in row if not is_blank(v)]
    return len(numbers) >= 3 and numbers == [str(i) for i in range(1, len(numbers) + 1)]


def _raw_row(grid: _Grid, r: int, header: _Header, sheet_name: str) -> RawRow:
    cells = {key: grid.cell(r, col) for key, col in header.keys.items()}
    columns = {key: column_letter(col) for key, col in header.keys.items()}
    mode_cells = {label: grid.cell(r, col) for label, col in header.modes.items()}
    mode = None
    if header.layout == "modes":
        columns.update({label: column_letter(col) for label, col in header.modes.items()})
        marked = [label for label in ("2+1", "2+2", "2+3", "2+N") if is_mark(mode_cells.get(label))]
        # Several ticks: the highest mode is the school's claim; rows.py warns about it.
        mode = marked[-1] if marked else None
    else:
        mode_cells = {}
    return RawRow(sheet=sheet_name, row_number=r + 1, cells=cells, columns=columns, mode=mode,
                  mode_cells=mode_cells)


def _title_text(grid: _Grid, first: int, stop: int, sheet_name: str) -> str:
    lines = []
    for r in range(first, stop):
        texts: list[str] = []
        for value in grid.rows[r][:MAX_HEADER_COLUMNS]:
            text = cell_text(value)
            if text and text not in texts:  # Word repeats a merged cell's text in every column
                texts.append(text)
        if texts:
            lines.append(" ".join(texts))
    lines.append(sheet_name)
    return "\n".join(lines)


def tables_in_sheet(sheet: Sheet, filename: str) -> list[RawTable]:
    """Every table in one sheet (usually one; a second header further down starts another)."""
    grid = _Grid(sheet)
    tables: list[RawTable] = []
    start = 0
    while start < len(grid.rows):
        header = find_header(grid, start)
        if header is None:
            break
        rows: list[RawRow] = []
        r = header.last_row + 1
        while r < len(grid.rows) and _is_filler(grid, r, header) \
                and not _ends_table(grid.rows[r]) and not _is_empty_data_row(grid, r, header):
            r += 1
        while r < len(grid.rows):
            if _ends_table(grid.rows[r]) or _is_empty_data_row(grid, r, header):
                break
            school = grid.cell(r, header.keys["school"])
            if column_key(header_text(school)) != "school":  # a repeated header is not data
                rows.append(_raw_row(grid, r, header, sheet.name))
            r += 1
        tables.append(RawTable(file=filename, sheet=sheet.name,
                               title_text=_title_text(grid, start, header.first_row, sheet.name),
                               header_row=header.first_row + 1, layout=header.layout, rows=rows))
        start = r + 1
    return tables


def find_tables(table_file: TableFile) -> list[RawTable]:
    """Every recognisable table in every sheet, in order. Sheets without a header (instructions,
    blank pages) give nothing; a header without data rows gives a RawTable with no rows."""
    tables: list[RawTable] = []
    for sheet in table_file.sheets:
        tables.extend(tables_in_sheet(sheet, table_file.filename))
    return tables
