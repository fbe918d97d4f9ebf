"""Read-only queries for the CLI's reports."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.db.models import Outbox, Submission
from mailbot.rules.month import is_reporting_month
from mailbot.rules.status import InForce, month_status


def submissions_in_force(session: Session, month: str) -> dict[str, InForce]:
    # Columns, not ORM objects: a province's 10,000 rows load in a fraction of the time.
    rows = session.execute(select(Submission.school, Submission.received_at, Submission.late, Submission.enrolled,
                                  Submission.participating, Submission.two_plus_n, Submission.n,
                                  Submission.services).where(
        Submission.month == month, Submission.replaced_by.is_(None), Submission.voided_at.is_(None))
        .order_by(Submission.id))
    return {school: InForce(school, received_at, late, enrolled, participating, two_plus_n, n, list(services))
            for school, received_at, late, enrolled, participating, two_plus_n, n, services in rows}


def load_status(session: Session, config: Config, month: str) -> dict:
    from mailbot.db.campaign import excused_schools

    reporting = is_reporting_month(month, config.schedule.reporting_months)
    return month_status(month, config.schools, submissions_in_force(session, month),
                        excused_schools(session, month), config.schedule.deadline_day, config.timezone, reporting)


def list_outbox(session: Session, status: str | None = None, limit: int = 200) -> list[dict]:
    query = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
    if status:
        query = query.where(Outbox.status == status)
    return [{"id": o.id, "key": o.key, "kind": o.kind, "mailbox": o.mailbox, "to": o.to_addrs, "subject": o.subject,
             "status": o.status, "attempts": o.attempts, "created_at": o.created_at.isoformat(),
             "sent_at": o.sent_at.isoformat() if o.sent_at else None, "last_error": o.last_error}
            for o in session.scalars(query)]
