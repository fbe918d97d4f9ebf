"""Recording accepted rows: a later submission replaces the earlier one, history is kept, and
lateness follows SPEC 3.6 (a school that was on time once stays on time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row
from sqlalchemy.orm import Session

from mailbot.db import store
from mailbot.config import Config
from mailbot.rules.model import RowResult
from mailbot.timeutil import is_late


@dataclass
class Recorded:
    row: RowResult
    submission_id: int
    late: bool
    replaced: Row | None  # (id, received_at) of the row it replaced


def record_rows(session: Session, config: Config, message, rows: list[RowResult],
                received_at: datetime, now: datetime, entered_by: str | None = None) -> list[Recorded]:
    """Record the rows; `message` (with its `id` and `sender`) is the email they came in, None for
    rows the operator entered."""
    out = []
    for row in rows:
        previous = store.submission_in_force(session, row.school, row.month)
        late = is_late(received_at, row.month, config.schedule.deadline_day, config.timezone)
        if late and store.first_on_time_exists(session, row.school, row.month):
            late = False
        sub = store.insert_submission(
            session, school=row.school, month=row.month, message_pk=message.id if message else None,
            sender=message.sender if message else "", received_at=received_at, late=late, entered_by=entered_by,
            created_at=now, schools_count=row.schools_count, enrolled=row.enrolled, participating=row.participating,
            two_plus_n=bool(row.two_plus_n), services=row.services, n=row.n, sheet=row.sheet,
            row_number=row.row_number, warnings=row.warnings)
        if previous is not None and previous.received_at > received_at:
            # An older email processed after a newer one (e.g. after a mailbox reset): keep it as
            # history, the newer figures stay in force.
            store.replace_submission(session, sub, previous.id)
            previous = None
        elif previous is not None:
            store.replace_submission(session, previous.id, sub)
        out.append(Recorded(row, sub, late, previous))
    return out
