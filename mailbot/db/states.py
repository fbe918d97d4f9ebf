"""The states a stored row moves through. Str-valued: a member equals the string in the column.

Messages' outcomes are `mailbot.rules.outcome.Outcome` (they are decided by the rules).
"""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    """An outgoing mail (mailbot.outbound.sending): queued → sending (claimed) → sent; a send
    that fails for good is failed; a claim left by a dead process goes back to queued."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class QuarantineStatus(StrEnum):
    """A message held for the operator (SPEC 3.4): pending until approved or rejected."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
