"""Database reads and writes for the pipeline. Thin: no decisions here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import TextClause, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from mailbot.db.models import KnownSender, Message, Outbox, Quarantine, Submission
from mailbot.db.states import QuarantineStatus
from mailbot.rules.outcome import PROCESSED_OUTCOMES

REPLY_KINDS = ("receipt", "rejection")


# The pipeline writes its messages and submissions rows with Core statements, one INSERT and one
# UPDATE each, instead of ORM objects flushed four or five times a message, and the statements it
# runs for every message are built once, here, and run on the session's connection (issue 13).
MESSAGES = Message.__table__
SUBMISSIONS = Submission.__table__
_INSERT_MESSAGE = insert(MESSAGES)
_UPDATE_MESSAGE = update(MESSAGES).where(MESSAGES.c.id == bindparam("row_pk"))  # SET: the other parameters
_INSERT_SUBMISSION = insert(SUBMISSIONS)
_IN_FORCE = (select(SUBMISSIONS.c.id, SUBMISSIONS.c.received_at)
             .where(SUBMISSIONS.c.school == bindparam("school"), SUBMISSIONS.c.month == bindparam("month"),
                    SUBMISSIONS.c.replaced_by.is_(None), SUBMISSIONS.c.voided_at.is_(None))
             .order_by(SUBMISSIONS.c.id.desc()).limit(1))


def _one_of(column, values) -> TextClause:
    """`column IN ('a', 'b')` with our own constants written into the SQL: an IN of bound values
    is rendered again at every execution (an "expanding" parameter), 23 µs a statement (issue 13)."""
    return text(str(column.in_(values).compile(compile_kwargs={"literal_binds": True})))


def _twin_by(column):
    return (select(MESSAGES.c.id, MESSAGES.c.message_id, MESSAGES.c.sender)
            .where(column == bindparam("key"), MESSAGES.c.id != bindparam("exclude_pk"),
                   _one_of(MESSAGES.c.outcome, sorted(PROCESSED_OUTCOMES)))
            .order_by(MESSAGES.c.id).limit(1))


_TWIN_BY_MESSAGE_ID, _TWIN_BY_SHA256 = _twin_by(MESSAGES.c.message_id), _twin_by(MESSAGES.c.sha256)


def take_write_lock(session: Session) -> None:
    """SQLite: begin the session's transaction with `BEGIN IMMEDIATE` unless one is open already, so
    the write lock is taken (waiting up to the busy timeout) before a savepoint reads. A savepoint
    would otherwise begin a deferred transaction, whose first write fails at once with "database is
    locked" when another process wrote after its first read (WAL snapshots; mailbot.db.engine).
    Taken as late as that, not at each commit: the results of a commit group are handed on (the
    messages moved on the IMAP server) without the lock. PostgreSQL locks rows: nothing to do."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def find_by_location(session: Session, mailbox: str, folder: str | None, uidvalidity: int | None,
                     uid: str | None):
    """The ledger row (id, outcome, message_id, sender) of the message at this place, if any."""
    if uid is None:
        return None
    return session.execute(select(MESSAGES.c.id, MESSAGES.c.outcome, MESSAGES.c.message_id, MESSAGES.c.sender)
                           .where(MESSAGES.c.mailbox == mailbox, MESSAGES.c.folder == folder,
                                  MESSAGES.c.uidvalidity == uidvalidity, MESSAGES.c.uid == uid)).first()


def insert_message(session: Session, **values) -> int:
    return session.connection().execute(_INSERT_MESSAGE, values).inserted_primary_key[0]


def update_message(session: Session, pk: int, **values) -> None:
    session.connection().execute(_UPDATE_MESSAGE, {"row_pk": pk, **values})


def count_attempt(session: Session, pk: int, **values) -> None:
    """One more attempt at a message already in the ledger (and whatever else changes with it)."""
    session.execute(update(MESSAGES).where(MESSAGES.c.id == pk).values(attempts=MESSAGES.c.attempts + 1, **values))


def uncount_attempts(session: Session, pks: list[int]) -> None:
    """Take back the attempt counted for messages whose processing was abandoned at a stop: a stop
    is not an attempt (a crash is: a message that kills the process must not loop for ever)."""
    if pks:
        session.execute(update(MESSAGES).where(MESSAGES.c.id.in_(pks)).values(attempts=MESSAGES.c.attempts - 1))


def message_sha256(session: Session, pk: int) -> str:
    return session.scalar(select(MESSAGES.c.sha256).where(MESSAGES.c.id == pk))


def find_processed_twin(session: Session, message_id: str | None, sha256: str, exclude_pk: int):
    """An earlier message with the same Message-ID (or, without one, the same bytes) that reached a
    final outcome other than duplicate."""
    statement, key = (_TWIN_BY_MESSAGE_ID, message_id) if message_id else (_TWIN_BY_SHA256, sha256)
    return session.connection().execute(statement, {"key": key, "exclude_pk": exclude_pk}).first()


def submission_in_force(session: Session, school: str, month: str):
    """The (id, received_at) of the school's row in force for the month, if any."""
    return session.connection().execute(_IN_FORCE, {"school": school, "month": month}).first()


def first_on_time_exists(session: Session, school: str, month: str) -> bool:
    return session.scalar(select(func.count()).select_from(SUBMISSIONS).where(
        SUBMISSIONS.c.school == school, SUBMISSIONS.c.month == month, SUBMISSIONS.c.voided_at.is_(None),
        SUBMISSIONS.c.late.is_(False))) > 0


def insert_submission(session: Session, **values) -> int:
    return session.connection().execute(_INSERT_SUBMISSION, values).inserted_primary_key[0]


def replace_submission(session: Session, old_pk: int, new_pk: int) -> None:
    session.execute(update(SUBMISSIONS).where(SUBMISSIONS.c.id == old_pk).values(replaced_by=new_pk))


def our_mail_kinds(session: Session, ids: list[str]) -> set[str]:
    """The kinds (receipt, rejection, reminder_due, summary ...) of our emails among these Message-IDs."""
    if not ids:
        return set()
    return set(session.scalars(select(Outbox.kind).where(Outbox.message_id.in_(ids))))


@dataclass
class RepliesToday:
    """The automatic replies (receipts, rejections) queued since `since`, counted the three ways the
    daily caps count them (SPEC 4, issue 11): by first recipient, by the From address of the mail
    answered (lower case), by the mailbox they go out through. Read once per transaction
    (`replies_since`) and kept up to date by the pipeline as it queues more (`add`), instead of three
    COUNT queries per message."""

    since: datetime
    by_recipient: Counter = field(default_factory=Counter)
    by_sender: Counter = field(default_factory=Counter)
    by_mailbox: Counter = field(default_factory=Counter)

    def add(self, kind: str, recipient: str, sender: str | None, mailbox: str, created_at: datetime) -> None:
        if kind in REPLY_KINDS and created_at >= self.since:
            self.by_recipient[recipient] += 1
            if sender is not None:  # None: a reply no message caused
                self.by_sender[sender.lower()] += 1
            self.by_mailbox[mailbox] += 1


def replies_since(session: Session, since: datetime) -> RepliesToday:
    counts = RepliesToday(since)
    rows = session.execute(select(Outbox.kind, Outbox.recipient, Message.sender, Outbox.mailbox, Outbox.created_at)
                           .outerjoin(Message, Outbox.message_pk == Message.id)
                           .where(Outbox.kind.in_(REPLY_KINDS), Outbox.created_at >= since))
    for row in rows:
        counts.add(*row)
    return counts


def our_message_ids(session: Session, ids: list[str]) -> set[str]:
    """Which of these Message-IDs are of mail we sent (so a school's reply to it is an attempt)."""
    if not ids:
        return set()
    return set(session.scalars(select(Outbox.message_id).where(Outbox.message_id.in_(ids))))


def known_senders(session: Session) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ks in session.scalars(select(KnownSender)):
        out.setdefault(ks.email, set()).add(ks.school)
    return out


def pending_quarantine(session: Session) -> list[tuple[Quarantine, Message]]:
    rows = session.execute(select(Quarantine, Message).join(Message, Quarantine.message_pk == Message.id)
                           .where(Quarantine.status == QuarantineStatus.PENDING)
                           .order_by(Quarantine.id))
    return [(held, message) for held, message in rows]


def hold(session: Session, message_pk: int, reason: str, candidate_schools: list[str], now: datetime) -> Quarantine:
    """Put a message in quarantine, pending the operator's decision."""
    held = Quarantine(message_pk=message_pk, reason=reason, candidate_schools=candidate_schools,
                      status=QuarantineStatus.PENDING, created_at=now)
    session.add(held)
    session.flush()
    return held
