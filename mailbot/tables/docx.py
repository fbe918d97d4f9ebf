"""Tables in a Word document (.docx), as the plan's annex is: each table becomes one Sheet.

word/document.xml is parsed with lxml, entities never resolved and no network (DOCTYPE was
already refused by the guards). Merged cells are laid out on the table grid: a gridSpan cell
covers several columns, a vMerge cell continues the one above; the value sits in the top-left
cell and the range is reported in `merged`, as spreadsheets do. The paragraphs above a table
(the title, "（2022年10月）", "填报单位：…") come first in its Sheet, one row each, because the month
and the school are often written only there.
"""

from __future__ import annotations

import io

from lxml import etree

from mailbot.config import Limits
from mailbot.rules.model import Cell, Sheet, TableFile
from mailbot.tables.grid import make_sheet
from mailbot.tables.guards import MAX_COLUMNS, checked_zip_parts, refusal

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def paragraph_text(paragraph: etree._Element) -> str:
    """The visible text of a w:p: runs, tabs and line breaks; deleted text and field codes are not text."""
    pieces = []
    for element in paragraph.iter(f"{W}t", f"{W}tab", f"{W}br", f"{W}cr"):
        if element.tag == f"{W}t":
            pieces.append(element.text or "")
        elif element.tag == f"{W}tab":
            pieces.append("\t")
        else:
            pieces.append("\n")
    return "".join(pieces)


def cell_text(cell: etree._Element) -> str:
    return "\n".join(paragraph_text(p) for p in cell.iter(f"{W}p"))


def _int_attr(parent: etree._Element, path: str, default: int) -> int:
    element = parent.find(path)
    try:
        return max(1, int(element.get(f"{W}val"))) if element is not None else default
    except (TypeError, ValueError):
        return default


def _row_cells(row: etree._Element) -> list[etree._Element]:
    """The w:tc of a row, including those wrapped in content controls (w:sdt)."""
    return [tc for tc in row.iter(f"{W}tc") if _nearest(tc, f"{W}tr") is row]


def _nearest(element: etree._Element, tag: str) -> etree._Element | None:
    parent = element.getparent()
    while parent is not None and parent.tag != tag:
        parent = parent.getparent()
    return parent


def table_grid(table: etree._Element, max_rows: int) -> tuple[list[list[Cell]], list[tuple[int, int, int, int]]]:
    """A w:tbl as a grid on its columns, with merged ranges (0-based, inclusive)."""
    rows: list[list[Cell]] = []
    merged: list[list[int]] = []
    open_vertical: dict[int, list[int]] = {}  # column -> the merged range it continues
    table_rows = [tr for tr in table.iter(f"{W}tr") if _nearest(tr, f"{W}tbl") is table]
    for row_index, tr in enumerate(table_rows[:max_rows]):
        line: list[Cell] = []
        col = _int_attr(tr, f"{W}trPr/{W}gridBefore", 0)
        line.extend([None] * min(col, MAX_COLUMNS))
        for tc in _row_cells(tr):
            span = _int_attr(tc, f"{W}tcPr/{W}gridSpan", 1)
            if col >= MAX_COLUMNS:
                break
            span = min(span, MAX_COLUMNS - col)
            vmerge = tc.find(f"{W}tcPr/{W}vMerge")
            continues = vmerge is not None and vmerge.get(f"{W}val", "continue") == "continue"
            if continues and col in open_vertical:
                open_vertical[col][2] = row_index
                line.extend([None] * span)
            else:
                text = cell_text(tc)
                line.extend([text if text else None] + [None] * (span - 1))
                rng = [row_index, col, row_index, col + span - 1]
                merged.append(rng)
                for covered in range(col, col + span):
                    open_vertical.pop(covered, None)
                if vmerge is not None:
                    open_vertical[col] = rng
            col += span
        for covered in [c for c in open_vertical if c >= col]:
            open_vertical.pop(covered)  # a row that stops short ends the merges to its right
        rows.append(line)
    ranges = [tuple(r) for r in merged if (r[0], r[1]) != (r[2], r[3])]
    return rows, ranges  # type: ignore[return-value]


def document_sheets(document_xml: bytes, limits: Limits) -> list[Sheet]:
    root = etree.parse(io.BytesIO(document_xml), _PARSER).getroot()
    body = root.find(f"{W}body")
    if body is None:
        return []
    sheets = []
    preceding: list[str] = []
    for element in _body_blocks(body):
        if element.tag == f"{W}p":
            text = paragraph_text(element).strip()
            if text:
                preceding.append(text)
        elif element.tag == f"{W}tbl":
            grid, merged = table_grid(element, limits.max_rows)
            title_rows: list[list[Cell]] = [[text] for text in preceding[-limits.max_rows:]]
            shift = len(title_rows)
            shifted = [(r0 + shift, c0, r1 + shift, c1) for r0, c0, r1, c1 in merged]
            sheets.append(make_sheet(f"表格{len(sheets) + 1}", (title_rows + grid)[:limits.max_rows], shifted))
            preceding = []
    return sheets


def _body_blocks(body: etree._Element):
    """Paragraphs and tables of the body in order, looking inside content controls."""
    for element in body:
        if element.tag == f"{W}sdt":
            content = element.find(f"{W}sdtContent")
            if content is not None:
                yield from _body_blocks(content)
        elif element.tag in (f"{W}p", f"{W}tbl"):
            yield element


def read_docx(data: bytes, filename: str, limits: Limits) -> TableFile:
    """A .docx as a TableFile, one Sheet per table; no Sheet when the document has no table."""
    parts = checked_zip_parts(data, limits, filename)
    try:
        sheets = document_sheets(parts["word/document.xml"], limits)
    except (KeyError, etree.XMLSyntaxError, ValueError) as exc:
        raise refusal("corrupt", filename, f"word/document.xml: {type(exc).__name__}: {exc}") from exc
    return TableFile(filename=filename, format="docx", sheets=sheets)
