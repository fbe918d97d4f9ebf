"""Archived copies of ignored mail (it may be a citizen's complaint) are deleted after the
configured number of days (SPEC 5); submissions are kept."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.db.models import Message
from mailbot.ingest.archive import delete_archived
from mailbot.rules.outcome import Outcome

log = logging.getLogger(__name__)


def purge_ignored_archives(session: Session, config: Config, now: datetime) -> int:
    """Delete the archive files of ignored messages older than the retention; return how many.
    A file that another, kept message shares (same bytes) stays. A `duplicate` keeps nothing: it
    repeats an earlier message, which keeps the bytes if they are kept at all (a second copy of a
    complaint, from a Maildir or after a UIDVALIDITY change, kept its file for ever)."""
    cutoff = now - timedelta(days=config.ignored_retention_days)
    old = session.scalars(select(Message).where(Message.outcome == Outcome.IGNORED, Message.read_at < cutoff,
                                                Message.purged_at.is_(None)))
    purged = 0
    for message in old:
        kept_twin = session.scalar(select(Message.id).where(
            Message.sha256 == message.sha256, Message.id != message.id,
            Message.outcome.not_in([Outcome.IGNORED, Outcome.DUPLICATE]) | Message.outcome.is_(None)).limit(1))
        if kept_twin is None:
            delete_archived(session, config.state_dir, message.archive_path)
        message.purged_at = now
        purged += 1
    if purged:
        log.info("deleted the archived copies of %d ignored message(s) older than %d days", purged,
                 config.ignored_retention_days)
    return purged
