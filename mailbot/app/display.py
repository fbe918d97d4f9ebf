"""Columns that line up in a terminal when they hold Chinese.

A CJK character takes two terminal cells, so `str.ljust` pads Chinese names short and the next
column drifts. These helpers pad by display width (Unicode East Asian Width: W and F are two
cells, combining marks none), which is what terminals and `journalctl` use.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence


def display_width(text: str) -> int:
    """Terminal cells `text` takes."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(text: str, width: int, align: str = "<") -> str:
    """`text` padded with spaces to `width` cells (left-aligned, or right with align=">")."""
    gap = " " * max(0, width - display_width(text))
    return text + gap if align == "<" else gap + text


def table(rows: Sequence[Sequence[object]], align: str = "", gap: str = "  ") -> list[str]:
    """Rows of cells as lines with every column as wide as its widest cell. `align` gives one
    character per column ("<" left, ">" right; missing ones are left); the last column is not padded."""
    cells = [[("" if cell is None else str(cell)) for cell in row] for row in rows]
    count = max((len(row) for row in cells), default=0)
    widths = [max((display_width(row[i]) for row in cells if i < len(row)), default=0) for i in range(count)]
    lines = []
    for row in cells:
        parts = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            how = align[i] if i < len(align) else "<"
            parts.append(cell if last and how == "<" else pad(cell, widths[i], how))
        lines.append(gap.join(parts).rstrip())
    return lines
