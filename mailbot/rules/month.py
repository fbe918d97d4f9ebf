"""Which month a table reports on (SPEC 3.5). Pure functions; the clock is a parameter."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
              "十一": 11, "十二": 12, "元": 1, "正": 1}
_CN_YEAR_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")

# A month phrase without a day: "2022年10月", "2022年10月份", "2022-10", "2022.10", "10月份", "十月".
# A following digit and 日/号 (a date like 10月24日) disqualifies it.
_YEAR_MONTH = re.compile(r"((?:19|20)\d{2}|[二〇零一三四五六七八九]{4})\s*年\s*(\d{1,2}|十[一二]?|[一二三四五六七八九元正])\s*月(?:份)?(?!\s*\d{1,2}\s*[日号])")
_YEAR_DASH = re.compile(r"(?<!\d)((?:19|20)\d{2})[-./](\d{1,2})(?![-./]?\d)")
_MONTH_ONLY = re.compile(r"(?<![\d年])(\d{1,2}|十[一二]?|[一二三四五六七八九元正])\s*月(?:份)?(?!\s*\d{1,2}\s*[日号])")


def _month_number(text: str) -> int | None:
    value = int(text) if text.isdigit() else _CN_DIGITS.get(text)
    return value if value and 1 <= value <= 12 else None


def find_month_phrase(text: str) -> tuple[int | None, int] | None:
    """The first month phrase in text, as (year or None, month)."""
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    candidates = []
    for pattern, has_year in ((_YEAR_MONTH, True), (_YEAR_DASH, True), (_MONTH_ONLY, False)):
        for m in pattern.finditer(text):
            month = _month_number(m.group(2) if has_year else m.group(1))
            if month is None:
                continue
            year = int(m.group(1).translate(_CN_YEAR_DIGITS)) if has_year else None
            candidates.append((m.start(), 0 if has_year else 1, year, month))
            break
    if not candidates:
        return None
    candidates.sort()
    _, _, year, month = candidates[0]
    return year, month


def resolve_year(month: int, sent: datetime) -> int:
    """A month without a year takes the year of the Date header, unless that puts it more than one
    month after the Date's month: then the year before (12月 received in January is last year's)."""
    if month > sent.month + 1:
        return sent.year - 1
    return sent.year


def month_of(texts: list[str], sent: datetime) -> str:
    """The reporting month "YYYY-MM": the first phrase found in texts (in priority order), else the
    month of `sent` (already in the bureau's time zone)."""
    for text in texts:
        found = find_month_phrase(text)
        if found:
            year, month = found
            return f"{year if year else resolve_year(month, sent):04d}-{month:02d}"
    return f"{sent.year:04d}-{sent.month:02d}"


def month_label(month: str) -> str:
    """"2022-10" -> "2022年10月"."""
    year, mon = month.split("-")
    return f"{int(year)}年{int(mon)}月"
