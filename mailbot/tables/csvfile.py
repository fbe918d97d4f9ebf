"""CSV tables as Excel and WPS save them: UTF-8 (with or without BOM) or GB18030, comma, tab or
semicolon separated, with Excel quoting ("1,234")."""

from __future__ import annotations

import csv
import io
import os

from mailbot.config import Limits
from mailbot.rules.model import Cell, TableFile
from mailbot.tables.grid import make_sheet
from mailbot.tables.guards import MAX_COLUMNS

SEPARATORS = (",", "\t", ";")
_ALLOWED_CONTROLS = frozenset("\t\r\n\x0c")
_SNIFF_LINES = 50


def decode_text(data: bytes) -> str | None:
    """The bytes as text when they are text (UTF-8, else GB18030); None for binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            return None
    # GB18030 decodes most byte soup, so control characters are what tells binary from text.
    if any(ch < " " and ch not in _ALLOWED_CONTROLS for ch in text):
        return None
    return text


def choose_separator(text: str) -> str | None:
    """The separator that splits the first lines into 2 or more columns most often, or None."""
    sample = "\n".join(text.splitlines()[:_SNIFF_LINES])
    best, best_score = None, 0
    for separator in SEPARATORS:
        try:
            widths = [len(row) for row in csv.reader(io.StringIO(sample), delimiter=separator) if row]
        except csv.Error:
            continue
        score = sum(1 for width in widths if width >= 2)
        if score > best_score:
            best, best_score = separator, score
    return best


def looks_like_csv(data: bytes) -> bool:
    text = decode_text(data[:65536]) if len(data) > 65536 else decode_text(data)
    if text is None and len(data) > 65536:
        # the cut may fall inside a multi-byte character; retry on a slightly shorter prefix
        text = next((t for t in (decode_text(data[:65536 - k]) for k in (1, 2, 3)) if t is not None), None)
    return text is not None and choose_separator(text) is not None


def parse_csv(text: str, max_rows: int) -> list[list[Cell]]:
    separator = choose_separator(text) or ","
    rows: list[list[Cell]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        for row in reader:
            if len(rows) >= max_rows:
                break
            rows.append([value if value != "" else None for value in row[:MAX_COLUMNS]])
    except csv.Error:
        pass  # a broken quote near the end: keep the rows read so far
    return rows


def read_csv(data: bytes, filename: str, limits: Limits) -> TableFile | None:
    """One Sheet named after the file, cells as written; None when the bytes are not CSV text."""
    text = decode_text(data)
    if text is None or choose_separator(text) is None:
        return None
    sheet_name = os.path.splitext(filename)[0] or filename
    return TableFile(filename=filename, format="csv", sheets=[make_sheet(sheet_name, parse_csv(text, limits.max_rows))])
