"""Reporting months (SPEC 3.5, 6, 7): the `Month` value, and which month a table reports on.
Pure functions; the clock is a parameter."""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTH_TEXT = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@dataclass(frozen=True, order=True)
class Month:
    """One calendar month, written "YYYY-MM" in the database, the CLI and `--json`."""

    year: int
    number: int  # 1-12

    def __post_init__(self):
        if not 1 <= self.number <= 12:
            raise ValueError(f"month number must be 1-12, not {self.number}")

    @classmethod
    def parse(cls, text: str) -> "Month":
        """"2022-10" -> Month(2022, 10); ValueError for anything else (also "2022-1", "2022-13")."""
        match = _MONTH_TEXT.match(text or "")
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{text!r} is not a month like 2022-10")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def parse_or_none(cls, text: str | None) -> "Month | None":
        try:
            return cls.parse(text or "")
        except ValueError:
            return None

    @classmethod
    def of(cls, moment: datetime | date, tz: ZoneInfo | None = None) -> "Month":
        """The month `moment` falls in; an aware datetime is first taken to local time in `tz`."""
        if tz is not None and isinstance(moment, datetime):
            moment = moment.astimezone(tz)
        return cls(moment.year, moment.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.number:02d}"

    @property
    def label(self) -> str:
        """How a school or leader reads it: "2022年10月"."""
        return f"{self.year}年{self.number}月"

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.number)[1]

    def day(self, number: int) -> date:
        """That day of the month; a day past the month's end is its last day (31 in April: the 30th)."""
        return date(self.year, self.number, min(number, self.days))

    def next(self) -> "Month":
        return Month(self.year + 1, 1) if self.number == 12 else Month(self.year, self.number + 1)

    def previous(self) -> "Month":
        return Month(self.year - 1, 12) if self.number == 1 else Month(self.year, self.number - 1)

    def deadline(self, deadline_day: int, tz: ZoneInfo) -> datetime:
        """The last moment a submission for this month is on time: 23:59:59 on the deadline day, local."""
        return datetime(self.year, self.number, deadline_day, 23, 59, 59, tzinfo=tz)

    def is_late(self, received_at: datetime, deadline_day: int, tz: ZoneInfo) -> bool:
        """Received after the deadline second has passed (23:59:59.5 is still on time)."""
        return received_at > self.deadline(deadline_day, tz) + timedelta(microseconds=999_999)

    def is_reporting(self, reporting_months: Iterable[int]) -> bool:
        """Whether schools must report this month (`schedule.reporting_months`, SPEC 6)."""
        return self.number in set(reporting_months)

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
            return str(Month(year if year else resolve_year(month, sent), month))
    return str(Month.of(sent))


def month_label(month: str) -> str:
    """"2022-10" -> "2022年10月" (`Month.label` for the months stored as text)."""
    return Month.parse(month).label


def is_reporting_month(month: str, reporting_months: Iterable[int]) -> bool:
    """`Month.is_reporting` for a month stored as text."""
    return Month.parse(month).is_reporting(reporting_months)
