"""How the summary writes numbers, shared by the email, the charts and the workbook."""

from __future__ import annotations

import math

# The campaign's targets: a rate just below one must never be shown as reaching it (79.96% is
# not "80.0%", 99.96% is not "100.0%"), or the figure and the verdict next to it would disagree.
_TARGET_MARKS = (1.0, 0.8)


def shown_rate(value: float | None) -> float | None:
    """The rate as displayed: rounded half up to 0.1%, but never up onto a target it misses."""
    if value is None:
        return None
    shown = math.floor(value * 1000 + 0.5) / 1000
    for mark in _TARGET_MARKS:
        if value < mark <= shown:
            shown = mark - 0.001
    return shown


def percent(value: float | None) -> str:
    """0.8567 -> "85.7%", 0.85 -> "85%"; None -> "—" (nothing to measure)."""
    shown = shown_rate(value)
    if shown is None:
        return "—"
    tenths = round(shown * 1000)
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}%"


def count(value: int) -> str:
    """12345 -> "12,345"."""
    return f"{value:,}"
