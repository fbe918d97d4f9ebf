"""First contact is a baseline, not a backlog (SPEC 5).

A 163 mailbox already holds years of mail when mailbot first reads it. Answering that history
would send every school a burst of receipts for tables long dealt with (and 163 flags bursts as
spam), so the first poll of a mailbox, or of a folder whose UIDVALIDITY changed with nothing in it
the ledger knows, only records what is there as `baseline`: not downloaded, not interpreted, not
answered. History comes in only on purpose (`mailbot poll --since DATE`, or `[general]
first_poll_since` for the first poll), recorded and counted but answered only with `--reply`.

Independently, a message that reached the mailbox (IMAP INTERNALDATE, a Maildir file's delivery
time) more than `reply_max_age_days` before it is processed is recorded without an automatic
reply, and the operator is told: after an outage a school should not get a receipt weeks late
without a person deciding. `mailbot ingest FILE`, run on purpose, has no arrival time and is exempt.

The decisions here are pure; `record_baseline` only adds ledger rows in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailbot.db.models import Message

BASELINE = "baseline"  # the ledger outcome of mail that was there before mailbot started


@dataclass(frozen=True)
class Seen:
    """A message in the mailbox, as known without downloading it."""

    uid: str  # IMAP UID, or a Maildir key
    arrived_at: datetime | None  # INTERNALDATE or the Maildir file's delivery time
    size: int = 0
    message_id: str | None = None
    sender: str = ""


@dataclass(frozen=True)
class FirstContact:
    """What the first poll of a folder does with each message already there."""

    baseline: list[Seen]  # recorded as `baseline`, never read
    process: list[Seen]  # imported on purpose (first_poll_since): processed, not answered


def split_first_contact(seen: Iterable[Seen], since: datetime | None) -> FirstContact:
    """Without `since` everything already there is the baseline; with it, what arrived on or after
    `since` is imported (its arrival unknown: baseline, the safe side)."""
    baseline, process = [], []
    for item in seen:
        if since is not None and item.arrived_at is not None and item.arrived_at >= since:
            process.append(item)
        else:
            baseline.append(item)
    return FirstContact(baseline, process)


def start_of_date(day: date, tz: ZoneInfo) -> datetime:
    """`--since 2022-09-01` means from midnight of that day where the bureau is."""
    return datetime.combine(day, time(0), tzinfo=tz)


def parse_since(text: str) -> date:
    """A date typed by the operator or written in the config; ValueError names the form."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date like 2022-09-01 (YYYY-MM-DD)") from exc


def withheld_because_old(arrived_at: datetime | None, now: datetime, max_age_days: float) -> str | None:
    """Why no automatic reply may go to a message that arrived at `arrived_at` (None: it may).
    A message with no arrival time (a file given to `ingest`) is never withheld."""
    if arrived_at is None or max_age_days <= 0:
        return None
    waited = now - arrived_at
    if waited <= timedelta(days=max_age_days):
        return None
    return f"reached the mailbox {waited.days} days before it was processed (reply_max_age_days = {max_age_days:g})"


def is_new_baseline_after_uidvalidity_change(previous_uidvalidity: int | None, uidvalidity: int,
                                             described_ids: list[str | None], known_ids: set[str]) -> bool:
    """A changed UIDVALIDITY with not one message the ledger knows by Message-ID is another
    folder altogether (a migration, a folder recreated with other mail): a new first contact.
    With any match, the folder is the same mail renumbered and is matched message by message."""
    if previous_uidvalidity is None or previous_uidvalidity == uidvalidity:
        return False
    return not any(mid in known_ids for mid in described_ids if mid)


def record_baseline(session: Session, *, mailbox: str, folder: str, uidvalidity: int, items: Iterable[Seen],
                    source: str, now: datetime) -> int:
    """Add a `baseline` ledger row for each message (nothing archived: nothing was read)."""
    count = 0
    for item in items:
        arrived = item.arrived_at or now
        session.add(Message(mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=item.uid, source=source,
                            message_id=item.message_id, sha256="", archive_path="", size=item.size,
                            sender=item.sender, subject="", received_at=arrived, read_at=now, outcome=BASELINE,
                            errors=[], warnings=[], attempts=0, result=None))
        count += 1
    return count
