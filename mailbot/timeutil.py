"""Time helpers. The clock is always passed in; nothing here reads it.

The month rules (deadline, late, current month) live in `mailbot.rules.month.Month`; the
functions here take and give months as the "YYYY-MM" text the database stores.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from mailbot.rules.month import Month


def deadline_of(month: str, deadline_day: int, tz: ZoneInfo) -> datetime:
    """`Month.deadline` of a "YYYY-MM" month."""
    return Month.parse(month).deadline(deadline_day, tz)


def is_late(received_at: datetime, month: str, deadline_day: int, tz: ZoneInfo) -> bool:
    """`Month.is_late` of a "YYYY-MM" month."""
    return Month.parse(month).is_late(received_at, deadline_day, tz)


def start_of_day(moment: datetime, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def label_datetime(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def label_date(moment: datetime) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"


def current_month(now: datetime, tz: ZoneInfo) -> str:
    """The month of `now` in the bureau's time zone, as "YYYY-MM"."""
    return str(Month.of(now, tz))
