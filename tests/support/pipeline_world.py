"""The pipeline in this process with the inline reader, on the samples' roster and a fixed clock."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Outbox
from mailbot.ingest.isolation import InlineRunner
from mailbot.ingest.pipeline import Inbound, Pipeline
from support.configs import write_config

NOW = datetime(2022, 10, 20, 3, 0, tzinfo=timezone.utc)


class World:
    def __init__(self, tmp_path, extra="", sender_auth: str | None = "evidence"):
        self.config = load_config(write_config(tmp_path, extra, sender_auth=sender_auth))
        self.engine = prepare_database(self.config)
        self.sessions = make_sessionmaker(self.engine)
        self.now = NOW
        self.pipeline = Pipeline(self.config, self.sessions, InlineRunner(self.config.limits), lambda: self.now)

    def ingest(self, raw: bytes, mailbox: str = "chuyoujiao", **kw) -> dict:
        return self.pipeline.process(Inbound(raw=raw, mailbox=mailbox, **kw)).as_json()

    def outbox(self) -> list[Outbox]:
        with self.sessions() as s:
            return list(s.scalars(select(Outbox).order_by(Outbox.id)))
