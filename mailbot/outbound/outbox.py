"""Queueing outgoing mail. Every email mailbot sends is first a row here, written in the same
transaction as the decision that caused it; the unique key is the claim that makes it at most one."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
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
    `now` with its offset: the commands' clock speaks the configured zone (+0800). The row is
    returned as written, not attached to the session."""
    connection = session.connection()
    # Looked up first so that a stage or summary run again builds no email it will not queue.
    if connection.execute(_QUEUED, {"key": key}).first() is not None:
        log.info("outbox key %s already queued: not queued again", key)
        return None
    domain = mailbox.address.rpartition("@")[2] or "mailbot.invalid"
    message_id = make_message_id(domain, key, installation_id(session))
    raw = build_email(from_addr=mailbox.address, from_name=from_name, to=to, composed=composed,
                      attachments=list(attachments), in_reply_to=in_reply_to, references=list(references),
                      auto_submitted=auto_submitted, reply_to=reply_to, message_id=message_id, date=now)
    values = dict(key=key, kind=kind, mailbox=mailbox.name, from_addr=mailbox.address, recipient=to[0].lower(),
                  to_addrs=to, subject=composed.subject, message_id=message_id.strip("<>"), raw=raw,
                  message_pk=message_pk, status=OutboxStatus.QUEUED, attempts=0, next_attempt_at=now,
                  created_at=now)
    # The unique key decides: another instance sharing the database may queue the same key this
    # very moment (the same alarm, reminder or summary), and one wins. ON CONFLICT DO NOTHING in
    # one statement, not a savepoint and an ORM flush for each email (issue 13).
    pk = connection.execute(_INSERT_UNLESS_QUEUED[connection.dialect.name], values).scalar()
    if pk is None:
        log.info("outbox key %s was queued by another instance meanwhile: not queued again", key)
        return None
    return Outbox(id=pk, **values)


_OUTBOX = Outbox.__table__
_QUEUED = select(_OUTBOX.c.id).where(_OUTBOX.c.key == bindparam("key"))
_INSERT_UNLESS_QUEUED = {
    name: dialect.insert(_OUTBOX).on_conflict_do_nothing(index_elements=[_OUTBOX.c.key]).returning(_OUTBOX.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
