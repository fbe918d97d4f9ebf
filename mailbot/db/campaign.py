"""The operator's decisions on a month's data (SPEC 6, 8): excuse a school, void a wrong submission.

Both are recorded with who, when and why. The functions work in the caller's transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.config import Config, is_month
from mailbot.db.models import Excuse, Submission, VoidLog
from mailbot.errors import MailbotError
from mailbot.rules.roster import Roster

log = logging.getLogger(__name__)


class CampaignError(MailbotError):
    """An operator command named something that does not exist or cannot be done (an unknown
    school or submission, a submission voided already); the message says which and why."""


@dataclass
class VoidResult:
    submission: Submission
    restored: Submission | None  # the earlier submission in force again, if any


def resolve_school(config: Config, written: str) -> str:
    """The roster name for what the operator typed (full name or an alias, as schools write them)."""
    school = Roster(config.schools).match(written or "")
    if school is None:
        raise CampaignError(f"no school {written!r} in the roster (use the name or an alias from the config)")
    return school.name


def excuse(session: Session, config: Config, school: str, month: str, reason: str, by: str,
           now: datetime) -> tuple[Excuse, bool]:
    """Excuse `school` for `month`. Returns the record and whether it is new (excusing twice keeps
    the first record and is not an error)."""
    if not is_month(month or ""):
        raise CampaignError(f"{month!r} is not a month like 2022-10")
    name = resolve_school(config, school)
    row = session.scalar(select(Excuse).where(Excuse.school == name, Excuse.month == month))
    if row is not None and row.withdrawn_at is None:
        return row, False
    if row is None:
        row = Excuse(school=name, month=month)
        session.add(row)
    row.reason, row.created_by, row.created_at = reason or "", by, now
    row.withdrawn_by = row.withdrawn_at = None
    session.flush()
    log.info("school %s excused for %s by %s: %s", name, month, by, reason or "-")
    return row, True


def withdraw_excuse(session: Session, config: Config, school: str, month: str, by: str, now: datetime) -> Excuse:
    """Undo an excuse: the school is required (and reminded) again for the month."""
    name = resolve_school(config, school)
    row = session.scalar(select(Excuse).where(Excuse.school == name, Excuse.month == month,
                                              Excuse.withdrawn_at.is_(None)))
    if row is None:
        raise CampaignError(f"{name} is not excused for {month}")
    row.withdrawn_by, row.withdrawn_at = by, now
    session.flush()
    log.info("excuse of %s for %s withdrawn by %s", name, month, by)
    return row


def excused_schools(session: Session, month: str) -> set[str]:
    """The schools excused for `month` (and not withdrawn)."""
    return set(session.scalars(select(Excuse.school).where(Excuse.month == month, Excuse.withdrawn_at.is_(None))))


def void(session: Session, submission_id: int, reason: str, by: str, now: datetime) -> VoidResult:
    """Withdraw a submission. If it was in force, the one it replaced (if any) is in force again;
    if it had been replaced already, the chain skips it. History is kept either way."""
    sub = session.get(Submission, submission_id)
    if sub is None:
        raise CampaignError(f"no submission with id {submission_id}")
    if sub.voided_at is not None:
        raise CampaignError(f"submission {submission_id} was voided already ({sub.void_reason or 'no reason given'})")
    # The one it replaced: normally the newest earlier one still pointing at it.
    predecessor = session.scalar(select(Submission).where(
        Submission.replaced_by == sub.id, Submission.voided_at.is_(None), Submission.id != sub.id)
        .order_by(Submission.received_at.desc(), Submission.id.desc()).limit(1))
    restored = None
    if predecessor is not None:
        # In force again when `sub` was in force; else it now points at what replaced `sub`.
        predecessor.replaced_by = sub.replaced_by
        restored = predecessor if sub.replaced_by is None else None
    sub.voided_at, sub.void_reason = now, reason or ""
    session.add(VoidLog(submission_id=sub.id, school=sub.school, month=sub.month, reason=reason or "",
                        voided_by=by, voided_at=now, restored_id=restored.id if restored else None))
    session.flush()
    log.info("submission %d (%s, %s) voided by %s: %s; in force now: %s", sub.id, sub.school, sub.month, by,
             reason or "-", restored.id if restored else "none")
    return VoidResult(sub, restored)
