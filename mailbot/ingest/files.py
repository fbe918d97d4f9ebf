"""`mailbot ingest`: local files through the same pipeline the mailboxes use."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Iterator

from mailbot.config import Config
from mailbot.ingest.isolation import WorkerPool
from mailbot.ingest.pipeline import Inbound, Pipeline
from mailbot.rules.outcome import Result
from mailbot.transports.fetched import Fetched, read_message_file

log = logging.getLogger(__name__)


def ingest_files(config: Config, sessions, clock, mailbox: str, paths: list[Path], labels: list[str],
                 school: str | None = None, month: str | None = None,
                 received_at: datetime | None = None) -> Iterator[Result]:
    with WorkerPool(config.limits) as runner:
        if school is not None:
            from mailbot.ingest.manual import enter_table
            for path, label in zip(paths, labels):
                yield enter_table(config, sessions, runner, clock, path, label, school, month, received_at)
            return
        with Pipeline(config, sessions, runner, clock) as pipeline:
            # Files are read as the workers free up, so memory holds only the messages in flight;
            # each is measured first, and one over the size limit is read as its header only.
            limit = config.limits.max_message_bytes
            inbounds = (_inbound(read_message_file(path, limit), mailbox, label) for path, label in zip(paths, labels))
            yield from pipeline.process_stream(inbounds)


def _inbound(fetched: Fetched, mailbox: str, label: str) -> Inbound:
    return Inbound(raw=fetched.raw, mailbox=mailbox, source="file", label=label,
                   size=None if fetched.whole else fetched.size)
