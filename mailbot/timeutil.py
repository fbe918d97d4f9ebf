"""Time helpers. The clock is always passed in; nothing here reads it (`pause` waits on the
`sleep` it is given).

The month rules (deadline, late, current month) live in `mailbot.rules.month.Month`; the
functions here take and give months as the "YYYY-MM" text the database stores.
"""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as time_of_day
from typing import Callable
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
    return datetime.combine(local.date(), time_of_day(0), tzinfo=tz)


def label_datetime(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def label_date(moment: datetime) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"


def current_month(now: datetime, tz: ZoneInfo) -> str:
    """The month of `now` in the bureau's time zone, as "YYYY-MM"."""
    return str(Month.of(now, tz))



def people_time(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time as people read it in the CLI: `2022-10-20 20:11 +08:00`, in the configured zone."""
    if moment is None:
        return "-"
    local = moment.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def iso_local(moment: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO-8601 with the configured zone's offset, for JSON: `2022-10-20T20:11:00+08:00`."""
    if moment is None:
        return None
    return moment.astimezone(tz).isoformat()


def parse_local_minute(text: str, tz: ZoneInfo) -> datetime:
    """`YYYY-MM-DD HH:MM` typed by the operator, in the configured zone; ValueError otherwise."""
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time like 2022-10-23 16:30 (YYYY-MM-DD HH:MM)") from exc
    return naive.replace(tzinfo=tz)


def pause(seconds: float, should_stop: Callable[[], bool], sleep: Callable[[float], None] = time.sleep,
          step: float = 0.1) -> bool:
    """Wait `seconds` in short steps; False as soon as a stop is asked (the wait is cut short).
    Counts what it asked `sleep` for, so an injected sleep (tests) is honoured exactly."""
    waited = 0.0
    while waited < seconds:
        if should_stop():
            return False
        chunk = min(step, seconds - waited)
        sleep(chunk)
        waited += chunk
    return not should_stop()
