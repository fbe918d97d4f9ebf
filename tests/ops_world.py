"""What an operator or a school would look at after a command: the ledger, the outbox, the
submissions, read straight from the database the CLI wrote (for tests of issue 9)."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import AuditEntry, Message, Outbox, Submission


class Database:
    """The state of one configuration, read after the CLI ran."""

    def __init__(self, config_path: Path):
        self.config = load_config(config_path)
        self.engine = prepare_database(self.config)
        self.sessions = make_sessionmaker(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def outbox(self) -> list[Outbox]:
        with self.sessions() as session:
            return list(session.scalars(select(Outbox).order_by(Outbox.id)))

    def ledger(self) -> list[Message]:
        with self.sessions() as session:
            return list(session.scalars(select(Message).order_by(Message.id)))

    def outcomes(self) -> Counter:
        return Counter(m.outcome for m in self.ledger())

    def submissions(self) -> list[Submission]:
        with self.sessions() as session:
            return list(session.scalars(select(Submission).order_by(Submission.id)))

    def audit_trail(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def archive_files(config_path: Path) -> list[Path]:
    archive = load_config(config_path).archive_dir
    return [p for p in archive.rglob("*") if p.is_file()] if archive.exists() else []
