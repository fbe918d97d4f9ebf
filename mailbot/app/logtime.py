"""Log lines stamped in the configured time zone with its offset (SPEC 8: times for people).

The machine a bureau runs on is often set to UTC while everyone reads the logs in Asia/Shanghai;
a stamp with its offset is unambiguous either way."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ZonedFormatter(logging.Formatter):
    """`2022-10-20 20:11:05 +08:00 INFO mailbot...: ...`, whatever the machine's zone."""

    def __init__(self, tz: ZoneInfo, fmt: str = FORMAT):
        super().__init__(fmt)
        self.tz = tz
        # The stamp of the last second stamped: a busy ingest logs hundreds of lines a second, and
        # converting each one's time to the zone cost a few percent of the process (issue 13).
        self._last: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        second = int(record.created)
        last_second, stamp = self._last
        if second != last_second:
            local = datetime.fromtimestamp(second, self.tz)
            offset = local.strftime("%z")
            stamp = f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"
            self._last = (second, stamp)
        return stamp


def use_zone(tz: ZoneInfo) -> None:
    """Stamp every handler of the root logger in `tz` (called once the config is loaded)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(ZonedFormatter(tz))
