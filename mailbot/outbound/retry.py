"""Retry a failed email (`outbox retry ID [--to ADDRESS]`, the web console's 重新发送).

The failed row is kept as it is (its server answer is the record of what went wrong); the retry is
a new outbox row under the key `<old key>:retry:<n>`, so it is claimed and sent like any other mail,
at most once. Its bytes are the old email with a new Date and Message-ID, and with the corrected
recipient when one is given; the body is unchanged, so it says exactly what the first one said.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import format_datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailbot.db.installation import installation_id
from mailbot.db.models import Outbox
from mailbot.db.states import OutboxStatus
from mailbot.errors import MailbotError
from mailbot.outbound.message import CRLF, _checked_address, make_message_id

log = logging.getLogger(__name__)

_REPLACED = ("date", "to", "message-id")


class RetryError(MailbotError):
    """The email cannot be retried: unknown, not failed, or the corrected address is unusable."""


def _split_head(raw: bytes) -> tuple[list[str], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise RetryError("the stored email has no header/body separator")
    lines: list[str] = []
    for line in head.decode("ascii", "surrogateescape").split(CRLF):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += CRLF + line  # a folded continuation belongs to the header above
        else:
            lines.append(line)
    return lines, body


def readdressed(raw: bytes, *, to: list[str], message_id: str, date: datetime) -> bytes:
    """The same email with new Date, To and Message-ID headers (pure)."""
    lines, body = _split_head(raw)
    kept = [line for line in lines if line.split(":", 1)[0].strip().lower() not in _REPLACED]
    new = [f"Date: {format_datetime(date)}", "To: " + ("," + CRLF + " ").join(to), f"Message-ID: <{message_id}>"]
    head = CRLF.join(new + kept)
    return head.encode("ascii", "surrogateescape") + b"\r\n\r\n" + body


def retry_failed(session: Session, outbox_id: int, now: datetime, to: list[str] | None = None) -> Outbox:
    """Queue a failed email again, optionally to corrected addresses; returns the new row."""
    old = session.get(Outbox, outbox_id)
    if old is None:
        raise RetryError(f"no outbox email with id {outbox_id}")
    if old.status != OutboxStatus.FAILED:
        raise RetryError(f"outbox {outbox_id} is {old.status}, not failed: only a failed email is retried")
    try:
        recipients = list(dict.fromkeys(_checked_address(a) for a in (to or old.to_addrs)))
    except ValueError as exc:
        raise RetryError(str(exc)) from exc
    if not recipients:
        raise RetryError("a retry needs at least one recipient")
    base = old.key.split(":retry:")[0]
    tries = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.key.startswith(f"{base}:retry:")))
    key = f"{base}:retry:{tries + 1}"
    domain = old.from_addr.rpartition("@")[2] or "mailbot.invalid"
    message_id = make_message_id(domain, key, installation_id(session))
    row = Outbox(key=key, kind=old.kind, mailbox=old.mailbox, from_addr=old.from_addr,
                 recipient=recipients[0].lower(), to_addrs=recipients, subject=old.subject, message_id=message_id,
                 raw=readdressed(bytes(old.raw), to=recipients, message_id=message_id, date=now),
                 message_pk=old.message_pk, status=OutboxStatus.QUEUED, attempts=0, next_attempt_at=now, created_at=now)
    session.add(row)
    session.flush()
    log.info("outbox %d (%s) retried as %d to %s", old.id, old.kind, row.id, ", ".join(recipients))
    return row
