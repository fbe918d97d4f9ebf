"""The database schema (SQLAlchemy 2.0). Alembic migrations in migrations/ must match it
(tests/test_migrations.py checks that)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from mailbot.db.states import OutboxStatus, QuarantineStatus


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out. PostgreSQL keeps them as `timestamp with time
    zone`; SQLite keeps no time zone, so there they are stored as naive UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        utc = value.astimezone(timezone.utc)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# IMAP's UIDVALIDITY and UIDs are 32-bit unsigned, past PostgreSQL's integer; SQLite's INTEGER
# holds 64 bits already (migrations/versions/0008_postgresql_types.py).
UID = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


# The ledger rows a poll may have to try again: being processed (a crash) or failed. Few, in a
# ledger of thousands. The predicate is SQL text, the same in the index and in the poll's query
# (mailbot.ingest.poll_ledger), because SQLite and PostgreSQL use a partial index only for a query
# whose WHERE contains its predicate as written, with the value inline (not a bound parameter).
UNSETTLED = "outcome IS NULL OR outcome = 'failed'"  # 'failed': mailbot.rules.outcome.Outcome.FAILED


class Message(Base):
    """Every message mailbot downloaded or was given, archived before it was interpreted."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "folder", "uidvalidity", "uid", name="uq_messages_mailbox_uid"),
        Index("ix_messages_message_id", "message_id"),
        Index("ix_messages_sha256", "sha256"),
        Index("ix_messages_sender", "sender"),  # a school's messages (web console, `messages list --school`)
        # Every poll asks for its folder's retries; without this it read the folder's whole ledger
        # (100,000 rows after a big first contact: 30 ms of CPU per empty poll instead of 5).
        # Migration 0010 makes it partial on PostgreSQL too; `postgresql_where` here would make
        # every process import SQLAlchemy's PostgreSQL dialect to check the keyword (2.4 MiB).
        Index("ix_messages_unsettled", "mailbox", "folder", "uidvalidity", sqlite_where=text(UNSETTLED)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str | None] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(UID)
    uid: Mapped[str | None] = mapped_column(String(255))  # IMAP UID, or a Maildir key
    source: Mapped[str] = mapped_column(String(16))  # imap | maildir | file | operator
    message_id: Mapped[str | None] = mapped_column(String(998))
    sha256: Mapped[str] = mapped_column(String(64))
    archive_path: Mapped[str] = mapped_column(Text)  # relative to the state directory
    size: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the Date header
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)  # SPEC 3.6: what counts for lateness
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when mailbot read it
    outcome: Mapped[str | None] = mapped_column(String(16))  # None while being processed
    errors: Mapped[list] = mapped_column(JSON, default=list)
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict | None] = mapped_column(JSON)  # the ingest --json object, for replays
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # archive copy of ignored mail deleted


class Submission(Base):
    """One accepted table for one school and month. A later one replaces it; history is kept."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_school_month", "school", "month"),
                      Index("ix_submissions_month", "month"))  # a month's rows in force (overview, summary)

    id: Mapped[int] = mapped_column(primary_key=True)
    school: Mapped[str] = mapped_column(String(255))  # the roster name
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    sender: Mapped[str] = mapped_column(String(320), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(Text)
    entered_by: Mapped[str | None] = mapped_column(String(255))  # set when an operator entered it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the row as recorded
    schools_count: Mapped[int] = mapped_column(Integer)
    enrolled: Mapped[int] = mapped_column(Integer)
    participating: Mapped[int] = mapped_column(Integer)
    two_plus_n: Mapped[bool] = mapped_column(Boolean)
    services: Mapped[list] = mapped_column(JSON, default=list)
    n: Mapped[int | None] = mapped_column(Integer)
    sheet: Mapped[str] = mapped_column(String(255), default="")
    row_number: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list] = mapped_column(JSON, default=list)


class Outbox(Base):
    """Every email mailbot sends. The unique key is the claim: it can be queued only once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status", "status", "next_attempt_at"),
                      Index("ix_outbox_recipient", "recipient", "created_at"),
                      Index("ix_outbox_message_pk", "message_pk"))  # the replies a message caused

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # receipt, rejection, operator_*, reminder_*, summary
    mailbox: Mapped[str] = mapped_column(String(64))  # sent through this mailbox's account
    from_addr: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))  # first recipient, for the daily reply cap
    to_addrs: Mapped[list] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), index=True)  # ours, without <>
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # what caused it
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.QUEUED)  # mailbot.db.states
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who is sending it right now (status "sending"): "host:pid:run:birth" (mailbot.db.leases
    # .claim_token), and since when. A row left in "sending" by a process that died is recognised
    # by them and queued again (mailbot.outbound.sending).
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Quarantine(Base):
    """A message from an unregistered (or forged) sender that carries a table: the operator decides."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    candidate_schools: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=QuarantineStatus.PENDING)  # mailbot.db.states
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)


class KnownSender(Base):
    """An address the operator approved for a school (`quarantine approve --remember`)."""

    __tablename__ = "known_senders"
    __table_args__ = (UniqueConstraint("email", "school", name="uq_known_senders"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    school: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(255))


class UnauthenticatedSender(Base):
    """A registered address the operator exempted, knowingly, from sender authentication (SPEC 3.4:
    `senders trust ADDRESS --unauthenticated`), for a school whose mail server signs nothing."""

    __tablename__ = "unauthenticated_senders"
    __table_args__ = (UniqueConstraint("email", name="uq_unauthenticated_senders"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(255))


class MailboxState(Base):
    """Where polling stands for one mailbox folder (SPEC 5).

    `last_uid` is the high-water mark: every UID up to it, under `uidvalidity`, has a committed
    outcome in the ledger (messages), so a poll only asks the server for UIDs above it. A new
    UIDVALIDITY starts again at 0 (mailbot.ingest.poll then matches messages by Message-ID). The times
    feed the operator alarm "no successful poll for a while".
    """

    __tablename__ = "mailbox_state"
    __table_args__ = (UniqueConstraint("mailbox", "folder", name="uq_mailbox_state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(UID)
    last_uid: Mapped[int] = mapped_column(UID, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # first poll attempt
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    alarm_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # cleared by the next success


# -- the operator's campaign decisions (migrations/versions/0003_campaign.py) ---------------------
class Excuse(Base):
    """A school the operator excused for a month: not reminded, not counted missing, shown as
    excused. Withdrawing keeps the row (who/when) and clears it for a later excuse."""

    __tablename__ = "excuses"
    __table_args__ = (UniqueConstraint("school", "month", name="uq_excuses_school_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school: Mapped[str] = mapped_column(String(255))  # the roster name
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(255))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VoidLog(Base):
    """Who withdrew which submission, when and why, and which one is in force again because of it
    (Submission.voided_at/void_reason say that it was voided; this says by whom)."""

    __tablename__ = "void_log"
    __table_args__ = (Index("ix_void_log_school_month", "school", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    school: Mapped[str] = mapped_column(String(255))
    month: Mapped[str] = mapped_column(String(7))
    reason: Mapped[str] = mapped_column(Text, default="")
    voided_by: Mapped[str] = mapped_column(String(255))
    voided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    restored_id: Mapped[int | None] = mapped_column(Integer)  # the submission in force again, if any


# -- the web console (migrations/versions/0004_web_console.py) ------------------------------------
WEB_ROLES = ("clerk", "viewer")  # a clerk may act; a viewer (a leader) only looks


class WebUser(Base):
    """An account of the clerks' web console (`mailbot web user ...`)."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string format
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One operator action (mailbot.db.audit): who, when, what, on what."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(255))  # "web:wang" or the Unix user of a CLI command
    action: Mapped[str] = mapped_column(String(64))  # excuse, void, quarantine_approve, outbox_retry ...
    target: Mapped[str] = mapped_column(Text, default="")  # what it acted on, e.g. "submission 12"
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Installation(Base):
    """One row: this database's installation id, a random token made with the database
    (mailbot.db.installation). Every Message-ID mailbot makes carries it, so none repeats across
    installations or after a database is made anew."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- several instances on one database (migrations/versions/0009_instances.py) --------------------
class Lease(Base):
    """Who may do one thing now, until when (mailbot.db.leases): e.g. "poll:chuyoujiao", held by
    one instance at a time and renewed while it works; an instance that dies loses it at expiry."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))  # host:pid:run:birth (mailbot.db.leases.claim_token)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RawMessage(Base):
    """A raw message kept in the database, by SHA-256 (the archive when several instances share a
    PostgreSQL database and nothing else; mailbot.ingest.archive). Messages refer to it with
    archive_path "db:<sha256>"."""

    __tablename__ = "raw_messages"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)
