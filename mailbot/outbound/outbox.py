"""Queueing outgoing mail. Every email mailbot sends is first a row here, written in the same
transaction as the decision that caused it; the unique key is the claim that makes it at most one."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.config import MailboxConfig
from mailbot.db.models import Outbox
from mailbot.db.states import OutboxStatus
from mailbot.db.installation import installation_id
from mailbot.outbound.message import build_email, make_message_id

log = logging.getLogger(__name__)


def queue_mail(session: Session, *, key: str, kind: str, mailbox: MailboxConfig, to: list[str], composed,
               now: datetime, attachments: list[tuple[str, bytes, str]] = (), in_reply_to: str | None = None,
               references: list[str] = (), auto_submitted: str = "auto-replied", reply_to: str | None = None,
               message_pk: int | None = None, from_name: str = "安溪县教育局") -> Outbox | None:
    """Queue one email unless one with this key exists already (then return None). Its `Date:` is
    `now` with its offset: the commands' clock speaks the configured zone (+0800)."""
    if session.scalar(select(Outbox.id).where(Outbox.key == key)) is not None:
        log.info("outbox key %s already queued: not queued again", key)
        return None
    domain = mailbox.address.rpartition("@")[2] or "mailbot.invalid"
    message_id = make_message_id(domain, key, installation_id(session))
    raw = build_email(from_addr=mailbox.address, from_name=from_name, to=to, composed=composed,
                      attachments=list(attachments), in_reply_to=in_reply_to, references=list(references),
                      auto_submitted=auto_submitted, reply_to=reply_to, message_id=message_id, date=now)
    row = Outbox(key=key, kind=kind, mailbox=mailbox.name, from_addr=mailbox.address, recipient=to[0].lower(),
                 to_addrs=to, subject=composed.subject, message_id=message_id.strip("<>"), raw=raw,
                 message_pk=message_pk, status=OutboxStatus.QUEUED, attempts=0, next_attempt_at=now, created_at=now)
    try:
        # In a savepoint: another instance sharing the database may queue the same key this very
        # moment (the same alarm, reminder or summary); the unique key lets one win, and the
        # loser's transaction goes on without it.
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        if session.scalar(select(Outbox.id).where(Outbox.key == key)) is None:
            raise
        log.info("outbox key %s was queued by another instance meanwhile: not queued again", key)
        return None
    return row
