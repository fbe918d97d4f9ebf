"""The audit trail: who did what to the campaign's data, when, through which door (CLI or web).

The records of the decisions themselves (Excuse.created_by, VoidLog.voided_by, Quarantine.decided_by)
say who; this table lists every operator action in one place, with the door in the actor: `web:NAME`
for the web console's user, `cli:LOGIN` for the command line's. Written in the caller's transaction,
next to the action.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.db.models import AuditEntry


def record(session: Session, *, actor: str, action: str, target: str, now: datetime, **detail) -> AuditEntry:
    entry = AuditEntry(at=now, actor=actor, action=action, target=target, detail=detail)
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, limit: int = 50) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))


# One function per operator action, used by both doors (the web console and the CLI), so an action
# reads the same in the trail whichever door it came through.

def excused(session: Session, *, actor: str, school: str, month: str, reason: str, now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="excuse", target=f"{school} {month}", now=now, reason=reason)


def excuse_withdrawn(session: Session, *, actor: str, school: str, month: str, now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="excuse_withdraw", target=f"{school} {month}", now=now)


def voided(session: Session, *, actor: str, submission_id: int, school: str, month: str, restored: int | None,
           reason: str, now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="void", target=f"submission {submission_id}", now=now,
                  reason=reason, school=school, month=month, restored=restored)


def quarantine_approved(session: Session, *, actor: str, quarantine_id: int, schools: list[str], remember: bool,
                        outcome: str, now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="quarantine_approve", target=f"quarantine {quarantine_id}", now=now,
                  school="、".join(schools), remember=remember, outcome=outcome)


def quarantine_rejected(session: Session, *, actor: str, quarantine_id: int, reason: str, now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="quarantine_reject", target=f"quarantine {quarantine_id}", now=now,
                  reason=reason)


def outbox_retried(session: Session, *, actor: str, outbox_id: int, retry_id: int, to: list[str],
                   now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="outbox_retry", target=f"outbox {outbox_id}", now=now,
                  new_outbox=retry_id, to=to)


def sender_exempted(session: Session, *, actor: str, email: str, schools: list[str], now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="sender_trust_unauthenticated", target=email, now=now,
                  school="、".join(schools))


def sender_exemption_withdrawn(session: Session, *, actor: str, email: str, now: datetime) -> AuditEntry:
    return record(session, actor=actor, action="sender_forget_unauthenticated", target=email, now=now)
