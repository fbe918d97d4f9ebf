"""Database reads for the summary and the ledger. Thin: the deciding happens in aggregate.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from mailbot.db.models import Submission
from mailbot.summary.aggregate import StoredRow

_ROW_COLUMNS = (Submission.school, Submission.month, Submission.received_at, Submission.late, Submission.sender,
                Submission.schools_count, Submission.enrolled, Submission.participating, Submission.two_plus_n,
                Submission.n, Submission.services)


def _stored_row(values) -> StoredRow:
    school, month, received_at, late, sender, schools_count, enrolled, participating, two_plus_n, n, services = values
    return StoredRow(school=school, month=month, received_at=received_at, late=bool(late), sender=sender or "",
                     schools_count=schools_count, enrolled=enrolled, participating=participating,
                     two_plus_n=bool(two_plus_n), n=n,
                     services=tuple(s for s in (services or []) if isinstance(s, str)))


def _within(query: Select, first_month: str | None, last_month: str | None) -> Select:
    """The query limited to submissions of months in the range (either end may be open)."""
    if first_month:
        query = query.where(Submission.month >= first_month)
    if last_month:
        query = query.where(Submission.month <= last_month)
    return query


def rows_in_force(session: Session, first_month: str | None = None, last_month: str | None = None) -> list[StoredRow]:
    """The submissions in force (not replaced, not voided), optionally within a month range."""
    query = _within(select(*_ROW_COLUMNS).where(Submission.replaced_by.is_(None), Submission.voided_at.is_(None)),
                    first_month, last_month)
    # Plain column tuples, not ORM objects: 2,000 schools x 24 months load in a fraction of a second.
    return [_stored_row(values) for values in session.execute(query.order_by(Submission.month, Submission.id))]


def rows_for_summary(session: Session, month: str) -> list[StoredRow]:
    """The rows in force for `month` in full, and for earlier months without what only the month
    itself shows (services, sender): the trend needs counts only, and decoding every earlier row's
    JSON would be most of the summary's time for a large county."""
    earlier = select(Submission.school, Submission.month, Submission.received_at, Submission.late,
                     Submission.schools_count, Submission.enrolled, Submission.participating,
                     Submission.two_plus_n, Submission.n).where(
        Submission.replaced_by.is_(None), Submission.voided_at.is_(None), Submission.month < month)
    rows = [StoredRow(school=school, month=m, received_at=received_at, late=bool(late), sender="",
                      schools_count=schools_count, enrolled=enrolled, participating=participating,
                      two_plus_n=bool(two_plus_n), n=n)
            for school, m, received_at, late, schools_count, enrolled, participating, two_plus_n, n
            in session.execute(earlier.order_by(Submission.month, Submission.id))]
    return rows + rows_in_force(session, month, month)


def months_on_record(session: Session) -> list[str]:
    return list(session.scalars(select(Submission.month).distinct().order_by(Submission.month)))


@dataclass(frozen=True)
class HistoryEntry:
    """One accepted submission, in force or not, for the ledger's audit sheet."""

    id: int
    row: StoredRow
    status: str  # in_force | replaced | voided
    replaced_by: int | None
    voided_at: datetime | None
    void_reason: str | None
    entered_by: str | None


def submission_history(session: Session, first_month: str | None = None,
                       last_month: str | None = None) -> list[HistoryEntry]:
    """Every accepted submission in the range, oldest first: what the 台账 keeps besides the rows in force."""
    query = _within(select(Submission.id, Submission.replaced_by, Submission.voided_at, Submission.void_reason,
                           Submission.entered_by, *_ROW_COLUMNS), first_month, last_month)
    entries = []
    for values in session.execute(query.order_by(Submission.month, Submission.received_at, Submission.id)):
        sub_id, replaced_by, voided_at, void_reason, entered_by = values[:5]
        status = "voided" if voided_at is not None else ("replaced" if replaced_by is not None else "in_force")
        entries.append(HistoryEntry(sub_id, _stored_row(values[5:]), status, replaced_by, voided_at, void_reason,
                                    entered_by))
    return entries
