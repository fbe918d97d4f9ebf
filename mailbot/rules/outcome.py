"""What the pipeline concludes about one message, as plain data (SPEC 3-4, 8).

`Decision` is what `mailbot.rules.decide.decide` returns: the outcome, the rows, every problem and
warning, and whether and how to answer. `Result` is the `ingest --json` object (SPEC 8), built
here and nowhere else. `Outcome` values are the strings stored in `messages.outcome` and printed
in the JSON, so a member compares equal to the plain string read back from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from mailbot.rules.model import RowResult


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # rows recorded, receipt sent
    REJECTED = "rejected"  # a submission attempt with nothing valid, rejection sent
    QUARANTINED = "quarantined"  # a table from a sender not in the roster, held for the operator
    IGNORED = "ignored"  # not a submission (automatic mail, other business, strangers)
    DUPLICATE = "duplicate"  # the same message processed before
    FAILED = "failed"  # a bug or a worker failure: retried a bounded number of times


# A message with one of these is settled: it is never processed again.
FINAL_OUTCOMES = frozenset({Outcome.ACCEPTED, Outcome.REJECTED, Outcome.QUARANTINED, Outcome.IGNORED,
                            Outcome.DUPLICATE})
# What an earlier copy must have reached for a new one to be its duplicate.
PROCESSED_OUTCOMES = FINAL_OUTCOMES - {Outcome.DUPLICATE}
# The outcomes whose result lists the rows that were read.
ROWS_SHOWN = frozenset({Outcome.ACCEPTED, Outcome.REJECTED, Outcome.QUARANTINED})


class HoldCause(StrEnum):
    """Why a message waits for the operator (SPEC 3.4). The operator's notice words each one; the
    decision's `reason` says the same in English for the log and the quarantine list."""

    UNKNOWN_SENDER = "unknown_sender"  # the From is in no school's roster entry
    FORGED = "forged"  # the receiving server recorded spf=fail or dkim=fail for the From
    UNVERIFIED = "unverified"  # registered, but no aligned pass (`sender_auth = "dmarc"`)


@dataclass(frozen=True)
class Hold:
    """A quarantine's cause, as the notice needs it."""

    cause: HoldCause
    check: str = ""  # UNVERIFIED: which check failed (mailbot.rules.sender_auth)
    oversized: bool = False  # read by its header only: approving it gives the size rejection


class Twin(NamedTuple):
    """An earlier message, already processed, that this one repeats."""

    id: int
    message_id: str | None
    sender: str


@dataclass(frozen=True)
class Reply:
    """The answer to send: a receipt or a rejection, to these addresses."""

    kind: str  # "receipt" | "rejection" (the template's name)
    to: list[str]


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    rows: list[RowResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # message-level problems, Chinese
    warnings: list[str] = field(default_factory=list)
    reason: str = ""  # English, for the log
    sender_schools: list[str] = field(default_factory=list)  # for a quarantine: the candidates
    reply: Reply | None = None  # None: nobody is answered
    reply_cap: str | None = None  # a reply was due but this daily cap is reached: "recipient" | "sender" | "mailbox"
    wrong_mailbox_note: str = ""  # also among `warnings`; the receipt shows it on its own
    twin: Twin | None = None  # for DUPLICATE: the message it repeats
    hold: Hold | None = None  # for QUARANTINED: why

    @property
    def recorded_rows(self) -> list[RowResult]:
        """The rows to record: the valid ones of an accepted message."""
        return [r for r in self.rows if r.ok] if self.outcome == Outcome.ACCEPTED else []


def row_json(row: RowResult) -> dict:
    return {"school": row.school or row.school_as_written, "schools_count": row.schools_count,
            "enrolled": row.enrolled, "participating": row.participating, "two_plus_n": row.two_plus_n,
            "services": row.services, "n": row.n, "month": row.month, "ok": row.ok, "errors": row.errors,
            "warnings": row.warnings}


@dataclass(frozen=True)
class Result:
    """One `ingest --json` object (SPEC 8): what happened to one message or file."""

    file: str  # where it came from, for the operator: a path, "zjg:INBOX/123", "quarantine:3"
    outcome: Outcome
    message_id: str | None = None
    mailbox: str | None = None
    sender: str = ""
    month: str | None = None
    rows: list[RowResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reply: dict | None = None  # {"to": [...], "subject": ...} of the answer queued

    def __post_init__(self):
        object.__setattr__(self, "outcome", Outcome(self.outcome))  # a stored string, or a typo, is checked

    @classmethod
    def of(cls, file: str, mailbox: str, message_id: str | None, sender: str, decision: Decision,
           reply: dict | None) -> Result:
        """The result of a decided message (for a duplicate: as the earlier copy was)."""
        if decision.outcome == Outcome.DUPLICATE:
            return cls(file, Outcome.DUPLICATE, decision.twin.message_id, mailbox, decision.twin.sender)
        rows = decision.rows if decision.outcome in ROWS_SHOWN else []
        recorded = decision.recorded_rows
        return cls(file, decision.outcome, message_id, mailbox, sender,
                   month=recorded[0].month if recorded else None, rows=rows, errors=decision.errors,
                   warnings=decision.warnings, reply=reply)

    def as_json(self) -> dict:
        return {"file": self.file, "message_id": self.message_id, "mailbox": self.mailbox,
                "sender": self.sender, "outcome": self.outcome.value, "month": self.month,
                "rows": [row_json(r) for r in self.rows], "errors": list(self.errors),
                "warnings": list(self.warnings), "reply": self.reply}
