"""The per-mailbox daily sending cap (SPEC 5), counted in the database so that several instances
sending through one mailbox share it (issue 14): what was sent since local midnight, plus what
anyone is sending right now. mailbot.outbound.sending checks it; under PostgreSQL the check and
the claim of a row are one transaction, serialised per mailbox by an advisory lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from mailbot.config import MailboxConfig
from mailbot.db.models import Outbox
from mailbot.db.states import OutboxStatus


def sent_today(session: Session, mailbox: str, day_start: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Outbox).where(
        Outbox.mailbox == mailbox, Outbox.status == OutboxStatus.SENT, Outbox.sent_at >= day_start)) or 0


def used_today(session: Session, mailbox: str, day_start: datetime) -> int:
    """Sent today plus being sent, in one statement: under READ COMMITTED two statements could see a
    row move from `sending` to `sent` between them and count it in neither."""
    return session.scalar(select(func.count()).select_from(Outbox).where(
        Outbox.mailbox == mailbox,
        or_(Outbox.status == OutboxStatus.SENDING,
            and_(Outbox.status == OutboxStatus.SENT, Outbox.sent_at >= day_start)))) or 0


def cap_guard(mailbox: MailboxConfig, day_start: datetime) -> Callable[[Session], bool]:
    """Whether the mailbox may send one more today, counted across instances."""
    def within_cap(session: Session) -> bool:
        return used_today(session, mailbox.name, day_start) < mailbox.daily_send_cap
    return within_cap


def lock_mailbox_cap(session: Session, mailbox: str) -> None:
    """PostgreSQL: one instance at a time counts and claims for this mailbox, until its commit."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"mailbot-send-cap:{mailbox}"))))
