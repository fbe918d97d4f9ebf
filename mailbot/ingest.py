"""`mailbot ingest`: local files through the same pipeline the mailboxes use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from mailbot.config import Config
from mailbot.isolation import TableReaderPool
from mailbot.pipeline import Inbound, Pipeline

log = logging.getLogger(__name__)


def ingest_files(config: Config, sessions, clock, mailbox: str, paths: list[Path], labels: list[str],
                 school: str | None = None, month: str | None = None) -> Iterator[dict]:
    with TableReaderPool(config.limits) as reader:
        if school is not None:
            from mailbot.manual import enter_table
            for path, label in zip(paths, labels):
                yield enter_table(config, sessions, reader, clock, path, label, school, month)
            return
        pipeline = Pipeline(config, sessions, reader, clock)
        for path, label in zip(paths, labels):
            try:
                raw = path.read_bytes()
            except OSError as exc:
                log.error("cannot read %s: %s", path, exc.strerror)
                yield {"file": label, "message_id": None, "mailbox": mailbox, "sender": "", "outcome": "failed",
                       "month": None, "rows": [], "errors": [f"cannot read: {exc.strerror}"], "warnings": [],
                       "reply": None}
                continue
            yield pipeline.process(Inbound(raw=raw, mailbox=mailbox, source="file", label=label))
