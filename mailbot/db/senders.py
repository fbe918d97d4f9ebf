"""The addresses the operator trusted on approval (`quarantine approve --remember`): list and forget.

A remembered address counts as the school's own, as if it were in the roster, until forgotten
(a teacher who left, an address approved by mistake). Forgetting deletes the row; the approval
itself stays in the quarantine record and in the audit trail.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailbot.db.models import KnownSender


class UnknownSender(LookupError):
    """The address is not one the operator remembered."""


def list_senders(session: Session) -> list[dict]:
    """Every remembered address with its school, who approved it and when, by address."""
    return [{"email": k.email, "school": k.school, "created_at": k.created_at, "created_by": k.created_by}
            for k in session.scalars(select(KnownSender).order_by(KnownSender.email, KnownSender.school))]


def forget_sender(session: Session, address: str, school: str | None = None) -> list[dict]:
    """Forget an address (for every school, or only `school`); returns what was forgotten.
    Raises UnknownSender when nothing matched."""
    email = address.strip().lower()
    query = select(KnownSender).where(KnownSender.email == email)
    if school:
        query = query.where(KnownSender.school == school)
    gone = [{"email": k.email, "school": k.school, "created_at": k.created_at, "created_by": k.created_by}
            for k in session.scalars(query)]
    if not gone:
        raise UnknownSender(f"{email} is not a remembered sender" + (f" of {school}" if school else ""))
    condition = [KnownSender.email == email] + ([KnownSender.school == school] if school else [])
    session.execute(delete(KnownSender).where(*condition))
    return gone
