"""The operator's decisions on quarantined messages (SPEC 3.4)."""

from __future__ import annotations

import contextlib

from sqlalchemy import select, update

from mailbot.config import Config
from mailbot.db import audit
from mailbot.db.models import KnownSender, Message, Quarantine
from mailbot.db.states import QuarantineStatus
from mailbot.errors import MailbotError
from mailbot.ingest.archive import read_archived
from mailbot.ingest.isolation import WorkerPool
from mailbot.ingest.pipeline import Inbound, Pipeline
from mailbot.rules.outcome import Result
from mailbot.rules.roster import Roster


def _decide(session, quarantine_id: int, **decision) -> Message:
    """Mark the entry decided, only if it is still pending: one UPDATE that a second decision made
    meanwhile (the web console and the CLI at once) finds nothing to match, on SQLite (the write
    lock) as on PostgreSQL (the row lock, the condition read again). Returns its message."""
    decided = session.execute(update(Quarantine).where(Quarantine.id == quarantine_id,
                                                       Quarantine.status == QuarantineStatus.PENDING)
                              .values(**decision)).rowcount
    if decided != 1:
        _pending(session, quarantine_id)  # says why: not found, or decided by someone else
        raise MailbotError(f"quarantine {quarantine_id} could not be marked decided")
    return session.get(Message, session.get(Quarantine, quarantine_id).message_pk)


def _pending(session, quarantine_id: int) -> tuple[Quarantine, Message]:
    q = session.get(Quarantine, quarantine_id)
    if q is None:
        raise MailbotError(f"no quarantined message with id {quarantine_id} (see `mailbot quarantine list`)")
    if q.status != QuarantineStatus.PENDING:
        raise MailbotError(f"quarantine {quarantine_id} was already {q.status}")
    return q, session.get(Message, q.message_pk)


def approve(config: Config, sessions, clock, quarantine_id: int, schools: list[str], remember: bool,
            operator: str, *, actor: str | None = None, runner=None) -> Result:
    """Process the message as if the school had sent it: rows recorded, receipt to the sender.

    The approval, the remembered sender, the processing and its audit entry (under `actor`, the
    door's name for the operator; `operator` when not given) are one transaction: if the worker
    fails or processing breaks, the message is still pending in quarantine and can be approved
    again (the result is `failed`, and the attempt alone is in the audit trail)."""
    roster = Roster(config.schools)
    with sessions() as session:  # read only: check before the workers start
        q, message = _pending(session, quarantine_id)
        chosen = schools or list(q.candidate_schools)
        unknown = [s for s in chosen if s not in roster.by_name]
        if not chosen or unknown:
            raise MailbotError(f"name the school with --school (unknown: {', '.join(unknown) or 'none given'})")
        raw = read_archived(session, config.state_dir, message.archive_path)
        # An oversized message was archived by its header only: its size is the whole message's.
        header_only = message.size is not None and message.size > len(raw)
        inbound = Inbound(raw=raw, mailbox=message.mailbox, source="operator", folder=message.folder,
                          uidvalidity=message.uidvalidity, uid=message.uid, label=f"quarantine:{quarantine_id}",
                          size=message.size if header_only else None)
        message_pk = message.id

    def record_approval(session) -> None:
        message = _decide(session, quarantine_id, status=QuarantineStatus.APPROVED, decided_at=clock(),
                          decided_by=operator)
        if remember:
            existing = {(k.email, k.school) for k in session.scalars(select(KnownSender))}
            for school in chosen:
                if (message.sender, school) not in existing:
                    session.add(KnownSender(email=message.sender, school=school, created_at=clock(),
                                            created_by=operator))

    audited = []

    def record_in_trail(session, result: Result) -> None:
        # The schools named, else those the table's recorded rows are for.
        named = schools or [row.school for row in result.rows if row.ok and row.school]
        audit.quarantine_approved(session, actor=actor or operator, quarantine_id=quarantine_id, schools=named,
                                  remember=remember, outcome=result.outcome.value, now=clock())
        audited.append(result)

    with contextlib.ExitStack() as stack:
        if runner is None:
            runner = stack.enter_context(WorkerPool(config.limits))
        pipeline = stack.enter_context(Pipeline(config, sessions, runner, clock))
        result = pipeline.reprocess(inbound, message_pk, chosen, within=record_approval, concluded=record_in_trail)
    if not audited:  # nothing was committed: the failed attempt alone is recorded
        with sessions.begin() as session:
            record_in_trail(session, result)
    return result


def reject(sessions, clock, quarantine_id: int, reason: str, operator: str, *, actor: str | None = None) -> None:
    """Reject the message: nothing recorded, nobody answered; the decision and its audit entry
    are one transaction."""
    with sessions.begin() as session:
        _decide(session, quarantine_id, status=QuarantineStatus.REJECTED, decided_at=clock(), decided_by=operator,
                note=reason or None)
        audit.quarantine_rejected(session, actor=actor or operator, quarantine_id=quarantine_id, reason=reason,
                                  now=clock())
