"""Zip-based workbooks (.xlsx, .xlsm, .ods), read with python-calamine after the guards.

calamine is fast but trusts the file: it allocates a dense grid from the furthest cell and a
vector from the shared-string count, and a failed allocation aborts the whole process. So every
part is inflated and checked first (sizes, XML declarations), the sheet XML is scanned once for
the extent, error values and formulas without a cached value, and a sheet too large for a dense
grid is streamed with openpyxl instead (its values only; macros never run in either reader).
"""

from __future__ import annotations

import functools
import io
import posixpath
import re
from dataclasses import dataclass, field

import python_calamine
from defusedxml import ElementTree

from mailbot.config import Limits
from mailbot.errors import UnreadableFile
from mailbot.rules.model import Cell, CellError, Sheet, TableFile
from mailbot.tables.grid import make_sheet, to_cell
from mailbot.tables.guards import (MAX_COLUMNS, MAX_DENSE_CELLS, OverTime, check_shared_string_counts,
                                   checked_zip_parts, refusal)

_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_FORMULA = re.compile(rb"<" + _PREFIX + rb"f\b")
_MERGE_REF = re.compile(rb"<" + _PREFIX + rb"mergeCell\b[^>]*?ref\s*=\s*[\"']([A-Za-z]+)(\d+):([A-Za-z]+)(\d+)[\"']")


@dataclass
class SheetScan:
    """What the sheet XML says before any reader allocates for it."""

    rows: int = 0  # extent of cells with content, 1-based (0: empty sheet)
    cols: int = 0
    errors: dict[tuple[int, int], CellError] = field(default_factory=dict)  # 0-based (row, col)


@functools.lru_cache(maxsize=4096)  # a sheet names a few dozen columns, thousands of times each
def column_index(letters: bytes) -> int:
    """0-based index of a column name: A -> 0, AA -> 26."""
    index = 0
    for letter in letters.upper():
        index = index * 26 + (letter - 64)
    return index - 1


_ANY_CELL = re.compile(rb"<" + _PREFIX + rb"c[\s/>]")
_CELL_COLUMNS = re.compile(rb"<" + _PREFIX + rb"c\s[^>]*?\br\s*=\s*[\"']\$?([A-Za-z]{1,3})\$?\d")
_PLAIN_CELL_ROWS = re.compile(rb'<c r="[A-Z]{1,3}(\d+)"')
_PLAIN_CELL_COLUMNS = re.compile(rb'<c r="([A-Z]{1,3})')
_CELL_ROWS = re.compile(rb"<" + _PREFIX + rb"c\s[^>]*?\br\s*=\s*[\"']\$?[A-Za-z]{1,3}\$?(\d+)")


def _reference_extent(xml: bytes) -> SheetScan | None:
    """The extent when every cell carries its reference (as Excel, WPS and openpyxl write them), in
    C-speed passes; None when some cell has none. Styled empty cells count, erring on the safe side."""
    rows = _PLAIN_CELL_ROWS.findall(xml)
    if len(rows) == xml.count(b"<c ") and b":c " not in xml and b"<c>" not in xml and b"<c/" not in xml:
        # Every cell written as Excel, WPS and openpyxl write it: <c r="B12" ...>
        columns = set(_PLAIN_CELL_COLUMNS.findall(xml))
    else:
        columns = set(_CELL_COLUMNS.findall(xml))
        rows = _CELL_ROWS.findall(xml)
        if len(rows) != len(_ANY_CELL.findall(xml)):
            return None  # cells without references: positions need the full walk
    scan = SheetScan()
    if rows:
        scan.rows = max(map(int, rows))
        scan.cols = max(column_index(col) for col in columns) + 1
    return scan


def scan_sheet_xml(xml: bytes) -> SheetScan:
    """Extent, error values and uncached formulas of one worksheet part. The extent comes from the
    cell references; only cells holding a formula or an error are looked into. A sheet whose cells
    lack references is walked with a streaming parser. (The lazy-regex walk this replaces ran at
    ~6 MB/s and took 13 s on a real 870 KB file.)"""
    scan = _reference_extent(xml)
    if scan is None:
        return _walk_sheet(xml)
    if b't="e"' in xml or b"t='e'" in xml or _FORMULA.search(xml):
        plain = b":c " not in xml and b"<c>" not in xml and b"t='e'" not in xml and b":f" not in xml
        scan.errors = _plain_marked_cells(xml) if plain else _marked_cells(xml)
    return scan


# Cells as Excel, WPS and openpyxl write them, found in C: a formula with no cached value, and an
# error value (with or without its formula).
_PLAIN_FORMULA = rb'(?:<f[^>]*/>|<f[^>]*>[^<]*</f>)'
_PLAIN_NOCACHE = re.compile(rb'<c r="([A-Z]{1,3})(\d+)"[^>]*>' + _PLAIN_FORMULA + rb'(?:<v\s*/>|<v></v>)?</c>')
_PLAIN_ERROR = re.compile(rb'<c r="([A-Z]{1,3})(\d+)"[^>]*\st="e"[^>]*>' + _PLAIN_FORMULA + rb'?<v>([^<]+)</v>')


def _plain_marked_cells(xml: bytes) -> dict[tuple[int, int], CellError]:
    errors = {(int(row) - 1, column_index(col)): CellError("nocache") for col, row in _PLAIN_NOCACHE.findall(xml)}
    for col, row, value in _PLAIN_ERROR.findall(xml):
        errors[(int(row) - 1, column_index(col))] = CellError(value.decode("utf-8", "replace").strip())
    return errors


_FULL_CELL = re.compile(rb"<(" + _PREFIX + rb")c\b([^>]*?)(?:/>|>(.*?)</\1c>)", re.DOTALL)
_CELL_REF = re.compile(rb"(?:^|\s)r\s*=\s*[\"']\$?([A-Za-z]{1,3})\$?(\d+)[\"']")
_ERROR_TYPE = re.compile(rb"(?:^|\s)t\s*=\s*[\"']e[\"']")
_VALUE = re.compile(rb"<" + _PREFIX + rb"v(?:\s[^>]*)?>([^<]+)<")
_INLINE = re.compile(rb"<" + _PREFIX + rb"is\b")


def _marked_cells(xml: bytes) -> dict[tuple[int, int], CellError]:
    """Error values and formulas without a cached value, by (row, col), 0-based. Each cell is one
    short match; only the few with a formula or an error get more than a substring test."""
    errors: dict[tuple[int, int], CellError] = {}
    for cell in _FULL_CELL.finditer(xml):
        attrs, inner = cell.group(2), cell.group(3)
        if not inner or (b"f" not in inner and b"e" not in attrs):
            continue
        is_error = _ERROR_TYPE.search(attrs) is not None
        has_formula = _FORMULA.search(inner) is not None
        if not (is_error or has_formula):
            continue
        ref = _CELL_REF.search(attrs)
        if ref is None:
            continue
        position = (int(ref.group(2)) - 1, column_index(ref.group(1)))
        value = _VALUE.search(inner)
        if value and is_error:
            errors[position] = CellError(value.group(1).decode("utf-8", "replace").strip())
        elif has_formula and not value and not _INLINE.search(inner):
            errors[position] = CellError("nocache")
    return errors


def _walk_sheet(xml: bytes) -> SheetScan:
    """Cells without references: positions come from the order of rows and cells (iterparse)."""
    scan = SheetScan()
    row_number, col = 0, -1
    for event, element in _stream(xml, ("{*}row", "{*}c")):
        if _local(element.tag) == "row":
            if event == "start":
                number = element.get("r", "")
                row_number = int(number) if number.isdigit() else row_number + 1
                col = -1
            else:
                _forget(element)
            continue
        if event == "start":
            continue
        ref = _CELL_REF_TEXT.fullmatch(element.get("r", "").strip())
        col = column_index(ref.group(1).encode()) if ref else col + 1
        row = int(ref.group(2)) - 1 if ref else row_number - 1
        value = formula = inline = None
        for child in element:
            name = _local(child.tag) if isinstance(child.tag, str) else ""
            if name == "v" and child.text:
                value = child.text
            elif name == "f":
                formula = child
            elif name == "is":
                inline = child
        if value is None and formula is None and inline is None:
            continue  # styled but empty: calamine skips it too
        scan.rows, scan.cols = max(scan.rows, row + 1), max(scan.cols, col + 1)
        if value is not None and element.get("t") == "e":
            scan.errors[(row, col)] = CellError(value.strip())
        elif formula is not None and value is None and inline is None:
            scan.errors[(row, col)] = CellError("nocache")
    return scan


_CELL_REF_TEXT = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")


def _stream(xml: bytes, tags: tuple[str, ...]):
    """Start and end events of `tags` in XML whose declarations were already refused (guards);
    entities are never resolved, nothing is fetched, and damaged XML is read as far as it goes."""
    from lxml import etree

    events = etree.iterparse(io.BytesIO(xml), events=("start", "end"), tag=tags, recover=True,
                             resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        yield from events
    except etree.XMLSyntaxError:
        return  # what was read before the damage stands; the reader will judge the rest


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _forget(element) -> None:
    """Free a finished element and the siblings before it: memory stays flat on long sheets."""
    element.clear()
    parent = element.getparent()
    while parent is not None and element.getprevious() is not None:
        del parent[0]


def worksheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
    """Sheet name -> part name (xl/worksheets/sheet1.xml), from workbook.xml and its rels."""
    try:
        workbook = ElementTree.fromstring(parts["xl/workbook.xml"])
        rels = ElementTree.fromstring(parts.get("xl/_rels/workbook.xml.rels", b"<Relationships/>"))
    except Exception:  # defusedxml and expat raise several types; the file is corrupt either way
        return {}
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        targets[rel.get("Id")] = path
    found = {}
    for element in workbook.iter():
        if element.tag.rsplit("}", 1)[-1] != "sheet":
            continue
        rel_id = next((v for k, v in element.attrib.items() if k.rsplit("}", 1)[-1] == "id"), None)
        if element.get("name") is not None and rel_id in targets:
            found[element.get("name")] = targets[rel_id]
    return found


_TABLE_NS = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE_NS = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_ODS_CELLS = (_TABLE_NS + "table-cell", _TABLE_NS + "covered-table-cell")


def ods_dense_cells(content_xml: bytes) -> int:
    """The most cells a dense reader would allocate for one sheet of content.xml: per sheet, the rows
    up to the last one with content times its widest row, repeats counted. LibreOffice pads every
    sheet with a million repeated empty rows; those are not cells (calamine skips them too)."""
    largest = rows = last_row_end = widest = 0
    for event, element in _stream(content_xml, (_TABLE_NS + "table", _TABLE_NS + "table-row")):
        if element.tag == _TABLE_NS + "table":
            if event == "start":
                rows = last_row_end = widest = 0
            else:
                largest = max(largest, last_row_end * widest)
            continue
        if event == "start":
            continue
        col = last_col_end = 0
        for cell in element:
            if cell.tag not in _ODS_CELLS:
                continue
            col += _repeat(cell.get(_TABLE_NS + "number-columns-repeated"))
            if cell.get(_OFFICE_NS + "value-type") is not None or "".join(cell.itertext()).strip():
                last_col_end = col
        rows += _repeat(element.get(_TABLE_NS + "number-rows-repeated"))
        if last_col_end:
            last_row_end, widest = rows, max(widest, last_col_end)
        _forget(element)
    return max(largest, last_row_end * widest)  # a sheet left open by damaged XML counts too


def _repeat(value: str | None) -> int:
    return int(value) if value and value.strip().isdigit() else 1


def read_zip_workbook(data: bytes, fmt: str, filename: str, limits: Limits) -> TableFile:
    """An .xlsx/.xlsm/.ods as a TableFile, or UnreadableFile (zip_bomb, xml_entities, corrupt)."""
    parts = checked_zip_parts(data, limits, filename)
    scans: dict[str, SheetScan] = {}
    if fmt == "ods":
        if ods_dense_cells(parts.get("content.xml", b"")) > MAX_DENSE_CELLS:
            raise refusal("zip_bomb", filename, "content.xml repeats cells past the dense-grid budget")
    else:
        check_shared_string_counts(parts, filename)
        for sheet_name, part in worksheet_parts(parts).items():
            if part in parts:
                scans[sheet_name] = scan_sheet_xml(parts[part])
    too_big = {name for name, scan in scans.items() if scan.rows * scan.cols > MAX_DENSE_CELLS}
    sheets = read_with_calamine(data, limits, filename, scans, stream_instead=too_big)
    for name in too_big:
        part = worksheet_parts(parts)[name]
        sheets[name] = read_sheet_streaming(data, name, parts[part], scans[name], limits, filename)
    return TableFile(filename=filename, format=fmt, sheets=[sheets[name] for name in sheets])


def read_with_calamine(data: bytes, limits: Limits, filename: str, scans: dict[str, SheetScan] | None = None,
                       stream_instead: set[str] = frozenset()) -> dict[str, Sheet]:
    """Every visible worksheet in workbook order (hidden sheets are stale copies or lookup lists).
    Sheets named in `stream_instead` keep their place but are left for another reader."""
    scans = scans or {}
    sheets: dict[str, Sheet] = {}
    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        for meta in workbook.sheets_metadata:
            if meta.typ != python_calamine.SheetTypeEnum.WorkSheet or meta.visible != python_calamine.SheetVisibleEnum.Visible:
                continue
            if meta.name in stream_instead:
                sheets[meta.name] = Sheet(meta.name, [])
                continue
            sheet = workbook.get_sheet_by_name(meta.name)
            raw = sheet.to_python(skip_empty_area=False, nrows=limits.max_rows)
            rows = [[to_cell(value) for value in row[:MAX_COLUMNS]] for row in raw]
            patch_cells(rows, scans.get(meta.name))
            merged = [(r0, c0, r1, c1) for (r0, c0), (r1, c1) in (sheet.merged_cell_ranges or [])]
            sheets[meta.name] = make_sheet(meta.name, rows, merged)
    except BaseException as exc:  # noqa: B036  calamine panics surface as pyo3 PanicException(BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, UnreadableFile, OverTime)):
            raise
        if "password" in str(exc).lower() or type(exc).__name__ == "PasswordError":
            raise refusal("encrypted", filename, f"calamine: {exc}") from exc
        raise refusal("corrupt", filename, f"calamine: {type(exc).__name__}: {exc}") from exc
    return sheets


def patch_cells(rows: list[list[Cell]], scan: SheetScan | None) -> None:
    """Put error values and uncached formulas where the reader left blanks."""
    if not scan:
        return
    for (row, col), error in scan.errors.items():
        if row < len(rows) and col < MAX_COLUMNS:
            line = rows[row]
            if col >= len(line):
                line.extend([None] * (col + 1 - len(line)))
            if line[col] is None or error.code != "nocache":
                line[col] = error


def read_sheet_streaming(data: bytes, name: str, sheet_xml: bytes, scan: SheetScan, limits: Limits,
                         filename: str) -> Sheet:
    """A sheet whose furthest cell is too far for a dense grid: stream the first rows and columns."""
    import openpyxl  # only here: slower, but it never allocates past the rows it yields

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
        worksheet = workbook[name]
        rows = [[to_cell(value) for value in row] for row in
                worksheet.iter_rows(min_row=1, max_row=limits.max_rows, max_col=MAX_COLUMNS, values_only=True)]
        workbook.close()
    except Exception as exc:  # openpyxl raises many types on broken parts
        raise refusal("corrupt", filename, f"openpyxl: {type(exc).__name__}: {exc}") from exc
    patch_cells(rows, scan)
    merged = [(int(r0) - 1, column_index(c0), int(r1) - 1, column_index(c1))
              for c0, r0, c1, r1 in _MERGE_REF.findall(sheet_xml)]
    return make_sheet(name, rows, merged)
