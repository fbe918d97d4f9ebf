"""The audit trail: who did what to the campaign's data, when, through which door (CLI or web).

The records of the decisions themselves (Excuse.created_by, VoidLog.voided_by, Quarantine.decided_by)
say who; this table lists every operator action in one place, with the web user's name for actions
taken in the web console (`web:NAME`). Written in the caller's transaction, next to the action.
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
