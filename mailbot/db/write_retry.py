"""One write transaction, retried whole while SQLite says the database is locked (issue 11 point 6).

It begins with `BEGIN IMMEDIATE`: the write lock is taken up front, waiting up to the busy timeout
for it, so reading and then writing inside it can never fail half-way (see mailbot.db.engine). A poll can hold it longer (a slow table in a worker); then the work is retried as a whole,
so a reminder stage is queued entirely, in one transaction, as soon as the lock clears, instead of
failing and waiting for the next trigger an hour later.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_WITHIN_SECONDS = 15 * 60.0  # stage windows are hours long; the poll interval is minutes


def is_locked(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig or exc)


def in_write_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T], *,
                         within: float = DEFAULT_WITHIN_SECONDS, pause: float = 1.0,
                         should_stop: Callable[[], bool] = lambda: False,
                         clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep) -> T:
    """`work(session)` in one transaction, committed; retried whole on "database is locked" for up to
    `within` seconds (not after a stop is asked). Any other error, or the lock still held at the end,
    is raised with nothing written."""
    give_up = clock() + within
    attempt = 0
    while True:
        attempt += 1
        try:
            with sessions.begin() as session:
                if session.get_bind().dialect.name == "sqlite":
                    session.execute(text("BEGIN IMMEDIATE"))
                return work(session)
        except OperationalError as exc:
            if not is_locked(exc) or clock() >= give_up or should_stop():
                raise
            log.warning("database locked by another writer (attempt %d); retrying the whole transaction", attempt)
        sleep(min(pause * attempt, 10.0))
