"""Login throttling: repeated failures from one address, or for one user name, slow down.

After FREE_FAILURES failures within WINDOW, each further attempt must wait a delay that doubles
with every failure (from FIRST_DELAY up to MAX_DELAY); while it runs, attempts are refused without
checking the password. A success clears the user's and the address's record. Pure bookkeeping
with the clock passed in; one instance per web process (the console runs as one process).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

FREE_FAILURES = 5
WINDOW = timedelta(minutes=15)
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(minutes=15)


@dataclass
class _Record:
    failures: int
    last: datetime


class LoginThrottle:
    def __init__(self):
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    @staticmethod
    def delay_after(failures: int) -> timedelta:
        if failures < FREE_FAILURES:
            return timedelta(0)
        return min(FIRST_DELAY * 2 ** (failures - FREE_FAILURES), MAX_DELAY)

    def _current(self, key: tuple[str, str], now: datetime) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last > max(WINDOW, self.delay_after(record.failures)):
            del self._records[key]
            return None
        return record

    def wait_seconds(self, address: str, name: str, now: datetime) -> int:
        """How long this attempt must still wait (0: it may try)."""
        with self._lock:
            wait = timedelta(0)
            for key in (("address", address), ("user", name.lower())):
                record = self._current(key, now)
                if record is not None:
                    wait = max(wait, record.last + self.delay_after(record.failures) - now)
            return max(0, int(wait.total_seconds() + 0.999))

    def failed(self, address: str, name: str, now: datetime) -> None:
        with self._lock:
            for key in (("address", address), ("user", name.lower())):
                record = self._current(key, now)
                if record is None:
                    record = self._records[key] = _Record(0, now)
                record.failures += 1
                record.last = now
                if record.failures >= FREE_FAILURES:
                    log.warning("login throttled: %d failures for %s %s; next attempt in %ds", record.failures,
                                key[0], key[1], self.delay_after(record.failures).total_seconds())

    def succeeded(self, address: str, name: str) -> None:
        with self._lock:
            self._records.pop(("address", address), None)
            self._records.pop(("user", name.lower()), None)
