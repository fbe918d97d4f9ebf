"""Leases: one instance at a time does one thing (poll a mailbox), with nothing but the shared
database between instances (issue 14).

A lease is a row (name, holder, expires_at). It is taken by a conditional UPDATE (`WHERE name = ?
AND (holder = me OR expires_at < now)`), or by inserting the row when there is none; either way the
database lets exactly one holder win, on SQLite and on PostgreSQL alike (under READ COMMITTED the
UPDATE re-reads the row another instance just committed). The holder renews it while it works
(`LeaseKeeper`, a thread); an instance that dies stops renewing and loses it at expiry, so another
takes over within `ttl` (at once when the holder was a process of the same host that is gone, as
outbox claims are judged: mailbot.outbound.sending). An instance whose renewal fails (it stalled past the expiry and someone
else took over) is told (`lost`) and stops at the next message.

The times are this host's UTC clock, not the business clock the daemon's tests move: hosts sharing
a database keep time with NTP, a few seconds apart at worst against a ttl of a minute.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.db.models import Lease

log = logging.getLogger(__name__)

POLL_TTL = timedelta(seconds=45)  # a dead instance loses its poll lease within a minute


def host_name() -> str:
    """This host, as claims and leases name it."""
    return socket.gethostname().replace(":", "_")


def claim_token() -> str:
    """host:pid:run:birth, the holder of a claim or lease: the pid tells whether the holder still
    lives, the run tells two runs apart, the birth whether a live pid is still that process."""
    return f"{host_name()}:{os.getpid()}:{secrets.token_hex(4)}:{process_birth(os.getpid()) or ''}"


def process_birth(pid: int) -> str | None:
    """Which process a pid is: the boot and its start time since then (Linux), or None. A pid is
    used again, after a reboot above all (systemd starts the services in much the same order), and a
    claim left by a process killed in its send window must not pass for the new process's."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            boot_id = boot.read().strip()[:8]
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            started = stat.read().rpartition(")")[2].split()[19]  # field 22: starttime, after the comm
    except (OSError, IndexError):
        return None
    return f"{boot_id}-{started}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_gone(holder: str, this_host: str, pid_alive: Callable[[int], bool] = process_alive,
                birth_of: Callable[[int], str | None] = process_birth) -> bool | None:
    """Whether the holder (host:pid:run:birth) is certainly gone: True or False for a process of
    this host (its pid dead, or alive but born since), None for another host's (only time tells:
    its claim or lease expires)."""
    host, pid, _run, birth = (holder.split(":") + ["", "", ""])[:4]
    if host == this_host and pid.isdigit():
        if not pid_alive(int(pid)):
            return True
        now_born = birth_of(int(pid)) if birth else None
        return bool(now_born) and now_born != birth
    return None


def poll_lease(sessions: sessionmaker[Session], mailbox: str) -> "LeaseKeeper":
    """The poll lease of one mailbox for this process; a holder of this host that is gone is
    replaced at once."""
    here = host_name()
    return LeaseKeeper(sessions, poll_lease_name(mailbox), claim_token(), POLL_TTL,
                       abandoned=lambda holder: bool(holder_gone(holder, here)))


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def poll_lease_name(mailbox: str) -> str:
    return f"poll:{mailbox}"


def acquire(session: Session, name: str, holder: str, now: datetime, ttl: timedelta, *,
            abandoned: Callable[[str], bool] = lambda current: False) -> bool:
    """Take or renew the lease `name` for `holder` until now + ttl; True when it is ours.
    `abandoned(current_holder)` may say that the holder is certainly gone before its expiry (a
    process of this host that no longer exists): then it is taken at once. Commits (the others
    must see it at once)."""
    won = session.execute(update(Lease).where(
        Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now),
    ).values(holder=holder, acquired_at=now, expires_at=now + ttl)).rowcount == 1
    current = None if won else session.scalar(select(Lease.holder).where(Lease.name == name))
    if current is not None and abandoned(current):
        log.warning("lease %s: its holder %s is gone; taken over before its expiry", name, current)
        won = session.execute(update(Lease).where(Lease.name == name, Lease.holder == current)
                              .values(holder=holder, acquired_at=now, expires_at=now + ttl)).rowcount == 1
    elif not won and current is None:
        try:
            with session.begin_nested():
                session.add(Lease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
            won = True
        except IntegrityError:  # it exists and is held by someone else
            won = False
    session.commit()
    return won


def renew(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Push the expiry on; False when the lease is no longer ours."""
    kept = session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                           .values(expires_at=now + ttl)).rowcount == 1
    session.commit()
    return kept


def release(session: Session, name: str, holder: str) -> None:
    session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
    session.commit()


class LeaseKeeper:
    """Holds a lease while a block of work runs: renewed every ttl/3 in a thread, released at the
    end. `lost` turns true when a renewal finds it taken (the work should stop)."""

    def __init__(self, sessions: sessionmaker[Session], name: str, holder: str, ttl: timedelta,
                 clock: Callable[[], datetime] = utc_now, abandoned: Callable[[str], bool] = lambda current: False):
        self.sessions, self.name, self.holder, self.ttl, self.clock = sessions, name, holder, ttl, clock
        self.abandoned = abandoned
        self.lost = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        with self.sessions() as session:
            if not acquire(session, self.name, self.holder, self.clock(), self.ttl, abandoned=self.abandoned):
                return False
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return True

    def _renew_loop(self) -> None:
        renewed = self.clock()
        while not self._done.wait(self.ttl.total_seconds() / 3):
            try:
                with self.sessions() as session:
                    kept = renew(session, self.name, self.holder, self.clock(), self.ttl)
            except Exception as exc:  # noqa: BLE001 - unreachable, failed over, a pool timeout: try again
                # Any error, not only OperationalError: a thread ended by another one (InterfaceError,
                # a pool's TimeoutError) left `lost` false while the lease ran out under the work.
                log.warning("could not renew lease %s: %s: %s", self.name, type(exc).__name__, exc)
                kept = self.clock() - renewed < self.ttl  # past the expiry another may hold it
            else:
                renewed = self.clock()
            if not kept:
                log.error("lease %s was lost (taken over, or not renewed in time): stopping this work", self.name)
                self.lost = True
                return

    def release(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(self.ttl.total_seconds())  # a renewal's statements are bounded; so is this
            if self._thread.is_alive():
                log.error("lease %s: its renewal did not end; left to expire", self.name)
                self.lost = True
        if not self.lost:
            with self.sessions() as session:
                release(session, self.name, self.holder)
