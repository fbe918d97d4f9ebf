"""An outbox world for the sender's tests: a migrated database whose mailboxes send through an
aiosmtpd server (tests/support/smtp_server.py), and a clock the test moves."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone

from sqlalchemy import select

from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Outbox
from mailbot.outbound.compose import Composed
from mailbot.outbound.outbox import queue_mail
from mailbot.outbound.sending import send_outbox
from support.configs import ACCOUNTS, write_config

NOW = datetime(2022, 10, 20, 3, 0, tzinfo=timezone.utc)
SCHOOL = "beimenxx@163.com"


class World:
    """A database with an outbox, both mailboxes sending through the aiosmtpd fixture."""

    def __init__(self, tmp_path, smtp, extra: str = ""):
        sending = "[sending]\nthrottle_seconds = 0\nretry_base_seconds = 0\nmax_attempts = 3\n"
        self.config = load_config(write_config(tmp_path, extra or sending))
        for mb in self.config.mailboxes:
            mb.smtp = smtp.smtp_config(ACCOUNTS[mb.name], "ssl") if smtp is not None else None
        self.smtp = smtp
        self.engine = prepare_database(self.config)
        self.sessions = make_sessionmaker(self.engine)
        self.now = NOW

    def clock(self) -> datetime:
        return self.now

    def queue(self, n: int = 1, mailbox: str = "chuyoujiao", to: str = SCHOOL) -> list[int]:
        ids = []
        with self.sessions() as session:
            for _ in range(n):
                number = session.query(Outbox).count() + 1
                row = queue_mail(session, key=f"test:{number}", kind="receipt", mailbox=self.config.mailbox(mailbox),
                                 to=[to], composed=Composed(f"回执 {number}", "您好！\n", "<p>您好！</p>"),
                                 now=self.now)
                ids.append(row.id)
            session.commit()
        return ids

    def send(self, **kwargs):
        return send_outbox(self.config, self.sessions, self.clock, **kwargs)

    def rows(self) -> list[Outbox]:
        with self.sessions() as session:
            return list(session.scalars(select(Outbox).order_by(Outbox.id)))

    def received_subjects(self) -> list[str]:
        return [str(email.message_from_bytes(m.data, policy=email.policy.default)["Subject"])
                for m in self.smtp.received]
