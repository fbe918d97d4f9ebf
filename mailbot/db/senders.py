"""The addresses the operator trusted: remembered on approval (`quarantine approve --remember`),
and exempted from sender authentication (`senders trust ADDRESS --unauthenticated`). List and forget.

A remembered address counts as the school's own, as if it were in the roster, until forgotten
(a teacher who left, an address approved by mistake). Forgetting deletes the row; the approval
itself stays in the quarantine record and in the audit trail.

An exempted address is a registered one (the roster's or a remembered one) whose mail counts
without an authenticated From (SPEC 3.4), for a school whose mail server signs nothing: the
operator says so knowingly, per address, and can withdraw it (`senders forget ADDRESS
--unauthenticated`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailbot.db.models import KnownSender, UnauthenticatedSender


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


def _exemption(row: UnauthenticatedSender) -> dict:
    return {"email": row.email, "created_at": row.created_at, "created_by": row.created_by}


def list_unauthenticated(session: Session) -> list[dict]:
    """Every address exempted from sender authentication, by address."""
    return [_exemption(row) for row in session.scalars(select(UnauthenticatedSender)
                                                       .order_by(UnauthenticatedSender.email))]


def unauthenticated_exempt(session: Session) -> Callable[[str], bool]:
    """Whether an address is exempted, answered from one read of the (short) list: the pipeline reads
    it once per transaction instead of once per message."""
    emails = frozenset(session.scalars(select(UnauthenticatedSender.email)))
    return lambda address: (address or "").strip().lower() in emails


def trust_unauthenticated(session: Session, address: str, schools: list[str], now: datetime,
                          by: str | None) -> tuple[dict, bool]:
    """Exempt a registered address (`schools`: those it reports for, empty when it is not
    registered: UnknownSender) from sender authentication; (the exemption, whether it is new)."""
    email = address.strip().lower()
    if not schools:
        raise UnknownSender(f"{email} is not a registered address of any school (the roster or a remembered sender)")
    existing = session.scalar(select(UnauthenticatedSender).where(UnauthenticatedSender.email == email))
    if existing is not None:
        return _exemption(existing), False
    row = UnauthenticatedSender(email=email, created_at=now, created_by=by)
    session.add(row)
    session.flush()
    return _exemption(row), True


def forget_unauthenticated(session: Session, address: str) -> dict:
    """Withdraw an exemption: the address's mail needs an authenticated From again."""
    email = address.strip().lower()
    row = session.scalar(select(UnauthenticatedSender).where(UnauthenticatedSender.email == email))
    if row is None:
        raise UnknownSender(f"{email} is not exempted from sender authentication")
    gone = _exemption(row)
    session.delete(row)
    return gone
