"""Who may poll: two polls of one mailbox at once would fetch the same mail twice.

- `poll_lock`: a file lock in the state directory, for the processes of one machine (the daemon,
  a `mailbot poll` by hand). SQLite lives on one machine, so there it is all that is needed.
- `mailbox_lease`: under PostgreSQL, instances on several machines share the database and nothing
  else: a per-mailbox lease in the database (mailbot.db.leases), renewed while the poll runs.
"""

from __future__ import annotations

import contextlib
import fcntl
from typing import Iterator

from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config, MailboxConfig
from mailbot.db.leases import LeaseKeeper, poll_lease


def mailbox_lease(config: Config, sessions: sessionmaker[Session], mailbox: MailboxConfig) -> LeaseKeeper | None:
    """The mailbox's poll lease where several instances may share the database, else None."""
    return poll_lease(sessions, mailbox.name) if config.database_backend == "postgresql" else None


@contextlib.contextmanager
def poll_lock(config: Config) -> Iterator[bool]:
    """True when this process may poll: two polls at once would fetch the same mail twice."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.state_dir / "poll.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
