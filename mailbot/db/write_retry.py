"""One write transaction, retried whole while the database says another writer is in the way
(issue 11 point 6; issue 14 for PostgreSQL).

SQLite: it begins with `BEGIN IMMEDIATE`: the write lock is taken up front, waiting up to the busy
timeout for it, so reading and then writing inside it can never fail half-way (see
mailbot.db.engine). A poll can hold it longer (a slow table in a worker); then the work is retried
as a whole, so a reminder stage is queued entirely, in one transaction, as soon as the lock clears,
instead of failing and waiting for the next trigger an hour later.

PostgreSQL: other instances write at the same time (row locks, not a database lock). The work takes
a transaction-scoped advisory lock first, so two instances doing the same work (both queueing a
reminder stage at 09:00) do it one after the other: the second reads what the first committed and
queues nothing twice (the outbox key is the final guard). A deadlock or serialization failure
(SQLSTATE 40P01, 40001) or a lock not available (55P03) is retried whole, like SQLite's "locked",
and so is a connection that drops under the work (the server restarted, a network cut): a sent
email's record is then not lost to a moment's outage (it would be sent again after a restart).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.timeutil import pause as wait

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_WITHIN_SECONDS = 15 * 60.0  # stage windows are hours long; the poll interval is minutes


RETRIED_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
WRITE_LOCK_KEY = 4242011  # PostgreSQL's advisory lock for in_write_transaction's work


def is_locked(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    return "database is locked" in str(exc.orig or exc) or getattr(exc.orig, "sqlstate", None) in RETRIED_SQLSTATES


def is_dropped(exc: BaseException) -> bool:
    """The connection broke under the transaction (a PostgreSQL server restarted, a network cut):
    SQLAlchemy has thrown that connection away, and the next try gets a new one."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def in_write_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T], *,
                         within: float = DEFAULT_WITHIN_SECONDS, pause: float = 1.0,
                         should_stop: Callable[[], bool] = lambda: False,
                         clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep) -> T:
    """`work(session)` in one transaction, committed; retried whole on "database is locked", or on a
    connection dropped under it, for up to `within` seconds (not after a stop is asked: the pause
    between tries is cut short by it). Any other error, or the lock still held at the end, is raised
    with nothing written. A connection can drop during COMMIT, after the server committed: `work`
    must therefore be safe to run again over its own result (every caller's is: the outbox keys,
    a `sent` recorded for the claim's token only)."""
    give_up = clock() + within
    attempt = 0
    while True:
        attempt += 1
        try:
            with sessions.begin() as session:
                dialect = session.get_bind().dialect.name
                if dialect == "sqlite":
                    session.execute(text("BEGIN IMMEDIATE"))
                elif dialect == "postgresql":
                    session.execute(text(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"))
                return work(session)
        except DBAPIError as exc:
            if not (is_locked(exc) or is_dropped(exc)) or clock() >= give_up or should_stop():
                raise
            log.warning("%s (attempt %d); retrying the whole transaction", "database connection dropped"
                        if is_dropped(exc) else "database locked by another writer", attempt)
            if not wait(min(pause * attempt, 10.0), should_stop, sleep):
                raise
