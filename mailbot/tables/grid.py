"""Turning what a library read into the model's grid: cell values, trimming, caps, merged ranges."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Iterable

from mailbot.rules.model import Cell, CellError, Sheet

# Spreadsheet error values as Excel and WPS display them.
ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                         "#GETTING_DATA", "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#UNKNOWN!"})


def to_cell(value: object) -> Cell:
    """One library value as a model Cell.

    Whole floats become int: Excel stores every number as a double, so 1947.0 is the 1947 the
    school typed. Text is kept exactly as written, except that a text equal to an error code is
    the error (some readers give errors as text).
    """
    if value is None or value == "":
        return None
    if isinstance(value, (bool, int, CellError, datetime)):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, str):
        return CellError(value) if value in ERROR_CODES else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, (time, timedelta)):
        return str(value)  # durations and clock times are never counts; keep them readable
    return str(value)


def trim_grid(rows: list[list[Cell]]) -> list[list[Cell]]:
    """Drop trailing fully blank rows and columns, and make every row as wide as the widest."""
    last_row = len(rows)
    while last_row and all(cell is None for cell in rows[last_row - 1]):
        last_row -= 1
    kept = rows[:last_row]
    width = 0
    for row in kept:
        for index in range(len(row) - 1, width - 1, -1):
            if row[index] is not None:
                width = index + 1
                break
    return [(row[:width] + [None] * (width - len(row))) for row in kept]


def clip_merged(ranges: Iterable[tuple[int, int, int, int]], height: int, width: int
                ) -> list[tuple[int, int, int, int]]:
    """Merged ranges that start inside the grid, clipped to it; single cells are not merges."""
    clipped = []
    for first_row, first_col, last_row, last_col in ranges:
        if first_row < 0 or first_col < 0 or first_row >= height or first_col >= width:
            continue
        last_row, last_col = min(last_row, height - 1), min(last_col, width - 1)
        if (last_row, last_col) != (first_row, first_col) and last_row >= first_row and last_col >= first_col:
            clipped.append((first_row, first_col, last_row, last_col))
    return sorted(set(clipped))


def make_sheet(name: str, rows: list[list[Cell]], merged: Iterable[tuple[int, int, int, int]] = ()) -> Sheet:
    grid = trim_grid(rows)
    width = len(grid[0]) if grid else 0
    return Sheet(name=name, rows=grid, merged=clip_merged(merged, len(grid), width))
