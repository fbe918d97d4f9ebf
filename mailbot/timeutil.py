"""Time helpers. The clock is always passed in; nothing here reads it."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def deadline_of(month: str, deadline_day: int, tz: ZoneInfo) -> datetime:
    """The last moment a submission for `month` is on time: 23:59:59 on the deadline day, local."""
    year, mon = (int(x) for x in month.split("-"))
    return datetime(year, mon, deadline_day, 23, 59, 59, tzinfo=tz)


def is_late(received_at: datetime, month: str, deadline_day: int, tz: ZoneInfo) -> bool:
    return received_at > deadline_of(month, deadline_day, tz) + timedelta(microseconds=999_999)


def start_of_day(moment: datetime, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def label_datetime(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def label_date(moment: datetime) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"


def current_month(now: datetime, tz: ZoneInfo) -> str:
    local = now.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"
