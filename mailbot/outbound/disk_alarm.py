"""The "disk full" alarm, sent by a path that needs no disk space (issue 11 point 9).

When the archive cannot write a message because the disk is full (ENOSPC, or EDQUOT for a quota),
the database is most likely on that disk too, so an alarm queued in the outbox like the others
(mailbot.outbound.alarms) might never be written. This one is composed in memory and handed
straight to the SMTP server of the first mailbox that accepts it (the mailboxes in configuration
order; one whose server refuses or hangs is skipped, within its deadline), and logged at ERROR for
journald either way.

Coalesced: at most one per `alarm_after_minutes` (the period of the other alarms). The process
remembers when it sent one (the daemon is one long process); across processes, the alarm is also
recorded in the outbox as sent when the database can still be written, and a recent record there
is honoured (reading needs no space). The message itself is not lost: it was not recorded, so the
poll leaves it unread and reads it again once there is space.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from mailbot.config import Config, MailboxConfig
from mailbot.errors import TransportError
from mailbot.outbound.alarms import KIND, alarm_context

log = logging.getLogger(__name__)

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
KEY_PREFIX = "alarm:disk_full:"


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def _smtp_sender(mailbox: MailboxConfig):
    from mailbot.transports.smtp import SmtpSender
    return SmtpSender(mailbox.smtp)


class DiskFullAlarm:
    """One per process (the pipeline holds it). `alarm()` is safe to call for every failed write."""

    def __init__(self, config: Config, sessions=None, *, monotonic: Callable[[], float] = time.monotonic,
                 open_sender: Callable[[MailboxConfig], object] = _smtp_sender):
        self.config, self.sessions = config, sessions
        self._monotonic, self._open_sender = monotonic, open_sender
        self._sent_at: float | None = None  # monotonic time of the last alarm this process sent
        self._lock = threading.Lock()

    @property
    def period(self) -> timedelta:
        return timedelta(minutes=self.config.alarm_after_minutes)

    def alarm(self, error: OSError, *, mailbox: str, directory: str, now: datetime) -> bool:
        """Tell the operator the disk is full, unless told within the period; True when sent now."""
        with self._lock:
            if self._sent_at is not None and self._monotonic() - self._sent_at < self.period.total_seconds():
                return False
            if self._recorded_since(now - self.period):
                self._sent_at = self._monotonic()
                return False
            if not self.config.operator_email:
                log.error("disk full (%s): no [operator] email configured to tell", error)
                self._sent_at = self._monotonic()
                return False
            sent = self._send(error, mailbox=mailbox, directory=directory, now=now)
            if sent is not None:
                self._sent_at = self._monotonic()
                self._record(sent, now)
            return sent is not None

    def _send(self, error: OSError, *, mailbox: str, directory: str, now: datetime):
        # Imported here (reading files works on a full disk): Jinja2 and the MIME builder are
        # about 2 MB the idle daemon, which imports this module for is_disk_full, never needs.
        from mailbot.outbound.compose import compose
        from mailbot.outbound.message import build_email, make_message_id
        address = next((mb.address for mb in self.config.mailboxes if mb.name == mailbox), "")
        context = alarm_context("disk_full", mailbox=mailbox, address=address, error=str(error),
                                directory=directory, minutes=f"{self.config.alarm_after_minutes:g}")
        composed = compose(KIND, context)
        to = [self.config.operator_email]
        for via in self.config.mailboxes:
            if via.smtp is None:
                continue  # a directory outbox would need the disk that is full
            domain = via.address.rpartition("@")[2] or "mailbot.invalid"
            raw = build_email(from_addr=via.address, from_name="mailbot", to=to, composed=composed,
                              auto_submitted="auto-generated",
                              message_id=make_message_id(domain, KEY_PREFIX + now.isoformat()), date=now)
            try:
                with self._open_sender(via) as sender:
                    sender.send(via.address, to, raw)
            except (TransportError, OSError) as exc:
                log.error("disk full: the alarm could not be sent through %s: %s", via.name, exc)
                continue
            log.error("disk full (%s): alarm sent to %s through %s, from memory", error, to[0], via.name)
            return via, composed, raw
        log.error("disk full (%s): the alarm could not be sent through any mailbox; see this log", error)
        return None

    def _recorded_since(self, since: datetime) -> bool:
        if self.sessions is None:
            return False
        from mailbot.db.models import Outbox
        try:
            with self.sessions() as session:
                return session.scalar(select(Outbox.id).where(Outbox.key.startswith(KEY_PREFIX),
                                                              Outbox.created_at >= since).limit(1)) is not None
        except SQLAlchemyError as exc:
            log.warning("disk full: could not read earlier alarms (%s)", exc)
            return False

    def _record(self, sent, now: datetime) -> None:
        """The alarm as an outbox row already sent, when the database can still be written."""
        if self.sessions is None:
            return
        from mailbot.db.models import Outbox
        from mailbot.db.states import OutboxStatus
        via, composed, raw = sent
        to = [self.config.operator_email]
        try:
            with self.sessions.begin() as session:
                session.add(Outbox(key=KEY_PREFIX + now.isoformat(), kind=KIND, mailbox=via.name,
                                   from_addr=via.address, recipient=to[0].lower(), to_addrs=to,
                                   subject=composed.subject, message_id=_message_id(raw), raw=raw,
                                   status=OutboxStatus.SENT, attempts=1, next_attempt_at=now, created_at=now,
                                   sent_at=now))
        except SQLAlchemyError as exc:  # the database is on the full disk too: memory must do
            log.warning("disk full: the alarm sent could not be recorded in the outbox (%s)", exc)


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii").strip("<>")
        if not line:
            break
    return ""
