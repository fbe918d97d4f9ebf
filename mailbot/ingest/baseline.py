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

A mailbox may hold 100,000 messages, so the baseline is described, recorded and committed a chunk
of `[limits] ledger_chunk` messages at a time (flat memory, one statement per chunk). A kill
loses at most the chunk under way: the folder's new UIDVALIDITY is saved only once the baseline is
complete, so the next poll is still at first contact and resumes after what was committed. Mail
imported on purpose (`first_poll_since`, `--since`) is recorded as baseline first and imported
from there like any history, so a kill during the import leaves it baseline: never answered by
accident, importable with `poll --since`.

The decisions are pure functions; below them, the ledger reads and writes `mailbot.ingest.poll`
calls (`first_contact_imap`, `take_baseline`, `history_keys`) and the one notice to the operator
about mail that waited too long (`tell_operator_of_old_mail`).
"""

from __future__ import annotations

import logging

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, insert, not_, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.db.models import MailboxState, Message
from mailbot.ingest.poll_ledger import BASELINE, processed_ids

log = logging.getLogger(__name__)

SQL_CHUNK = 500


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


def split_first_contact(seen: Iterable, since: datetime | None) -> FirstContact:
    """Without `since` everything already there is the baseline; with it, what arrived on or after
    `since` is imported (its arrival unknown: baseline, the safe side). Items are `Seen` or
    anything else with an `arrived_at` (a described IMAP message)."""
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


def record_baseline(session: Session, *, mailbox: str, folder: str, uidvalidity: int, items: Iterable[Seen],
                    source: str, now: datetime) -> int:
    """Add a `baseline` ledger row for each message (nothing archived: nothing was read), in one
    statement."""
    rows = [{"mailbox": mailbox, "folder": folder, "uidvalidity": uidvalidity, "uid": item.uid, "source": source,
             "message_id": item.message_id, "sha256": "", "archive_path": "", "size": item.size,
             "sender": item.sender, "subject": "", "received_at": item.arrived_at or now, "read_at": now,
             "outcome": BASELINE, "errors": [], "warnings": [], "attempts": 0, "result": None} for item in items]
    if rows:
        session.execute(insert(Message.__table__), rows)
    return len(rows)


@dataclass(frozen=True)
class History:
    """`mailbot poll --since DAY [--reply]`: also import the mail since DAY that a first contact left
    as baseline; answered only with `reply`."""

    since: date
    reply: bool = False


@dataclass
class Arrivals:
    """How each downloaded message is to be answered: when it reached the mailbox (for the reply
    age limit; None: exempt) and whether it may be answered at all (imported history is not)."""

    at: dict = field(default_factory=dict)  # key -> datetime
    unanswered: set = field(default_factory=set)  # keys imported on purpose, answered by nobody
    exempt: set = field(default_factory=set)  # keys the operator asked to answer whatever their age


# -- the ledger ------------------------------------------------------------------------------------


def _chunks(items: list, size: int = SQL_CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def has_ledger(session: Session, mailbox: str, folder: str, uidvalidity: int | None) -> bool:
    """Whether mailbot has recorded anything from this mailbox folder (an installation that polled
    it before baselines existed is not at first contact), besides the baseline under `uidvalidity`
    of a first contact that was interrupted: that one is resumed."""
    resumed = and_(Message.uidvalidity == uidvalidity, Message.outcome == BASELINE)
    return session.scalar(select(Message.id).where(
        Message.mailbox == mailbox, Message.folder == folder,
        Message.uidvalidity.is_(None) | Message.outcome.is_(None) | not_(resumed)).limit(1)) is not None


def known_message_ids(session: Session, message_ids: list[str], besides: tuple[str, str, int]) -> set[str]:
    """Which of these Message-IDs the ledger has, whatever became of them, but for the rows at
    `besides` (mailbox, folder, UIDVALIDITY): what this first contact itself recorded."""
    mailbox, folder, uidvalidity = besides
    own = and_(Message.mailbox == mailbox, Message.folder == folder, Message.uidvalidity == uidvalidity)
    found: set[str] = set()
    for chunk in _chunks(sorted(set(message_ids))):
        found.update(session.scalars(select(Message.message_id).where(Message.message_id.in_(chunk), not_(own))))
    return found


def recorded_keys(session: Session, mailbox: str, folder: str, uidvalidity: int, keys: list[str],
                  outcome: str | None = None) -> set[str]:
    """Of these UIDs or Maildir keys, those the ledger has at this UIDVALIDITY (with `outcome`:
    those recorded with it)."""
    found: set[str] = set()
    for chunk in _chunks(keys):
        query = select(Message.uid).where(Message.mailbox == mailbox, Message.folder == folder,
                                          Message.uidvalidity == uidvalidity, Message.uid.in_(chunk))
        found.update(session.scalars(query if outcome is None else query.where(Message.outcome == outcome)))
    return found


def take_baseline(sessions: sessionmaker[Session], *, mailbox: str, folder: str, uidvalidity: int, keys: list,
                  seen_of: Callable[[Session, list], list[Seen]], source: str, now: datetime, chunk: int) -> int:
    """Record what is already in the folder as `baseline`, `chunk` keys per transaction: a kill
    loses at most the chunk under way, and the next poll resumes after what was committed (keys
    already in the ledger are skipped). `seen_of(session, keys)` describes the keys to record
    (an IMAP FETCH; it may leave some out). How many were recorded now."""
    count = 0
    for start in range(0, len(keys), max(chunk, 1)):
        part = keys[start:start + max(chunk, 1)]
        with sessions() as session:
            done = recorded_keys(session, mailbox, folder, uidvalidity, [str(k) for k in part])
            todo = [k for k in part if str(k) not in done]
            if todo:
                count += record_baseline(session, mailbox=mailbox, folder=folder, uidvalidity=uidvalidity,
                                         items=seen_of(session, todo), source=source, now=now)
                session.commit()
    return count


def first_contact_imap(config, mailbox, sessions: sessionmaker[Session], clock, imap, uidvalidity: int,
                       first: bool) -> tuple[int, int]:
    """The first poll of an IMAP folder, or a new UIDVALIDITY: record what is there as baseline, in
    chunks of `limits.ledger_chunk` UIDs (described, recorded, committed); return (how many
    became baseline, the new mark: every UID up to it is settled).

    When the folder holds mail the ledger knew under another UIDVALIDITY (the same mail
    renumbered), it is matched message by message: only what was baseline before is baseline
    again, the rest (processed before, or new) is left above the mark for the usual path."""
    uids = imap.uids_after(0)
    chunk = config.limits.ledger_chunk
    here = (mailbox.name, imap.folder, uidvalidity)
    renumbered = not first and _holds_known_mail(sessions, imap, uids, here, chunk)
    left: list[int] = []  # the lowest UID left for the usual path, once there is one

    def seen_of(session: Session, part: list) -> list[Seen]:
        described = imap.describe(part, for_download=False)
        if renumbered:
            known = known_message_ids(session, [m.message_id for m in described if m.message_id], besides=here)
            again = known - processed_ids(session, sorted(known))
            rest = [m.uid for m in described if m.message_id not in again]
            left[:] = [min(left + rest)] if left or rest else []
            described = [m for m in described if m.message_id in again]
        return [Seen(str(m.uid), m.arrived_at, m.size, m.message_id, m.from_addr) for m in described]

    count = take_baseline(sessions, mailbox=mailbox.name, folder=imap.folder, uidvalidity=uidvalidity, keys=uids,
                          seen_of=seen_of, source="imap", now=clock(), chunk=chunk)
    log_baseline(mailbox.name, imap.folder, count)
    return count, (left[0] - 1 if left else (uids[-1] if uids else 0))


def _holds_known_mail(sessions: sessionmaker[Session], imap, uids: list[int], here: tuple, chunk: int) -> bool:
    """Whether any message in the folder is in the ledger from elsewhere or another UIDVALIDITY;
    described a chunk at a time, stopping at the first chunk that shows one (a renumbered folder
    shows one in its first)."""
    for start in range(0, len(uids), max(chunk, 1)):
        part = uids[start:start + max(chunk, 1)]
        ids = [m.message_id for m in imap.describe(part, for_download=False) if m.message_id]
        with sessions() as session:
            if known_message_ids(session, ids, besides=here):
                return True
    return False


def log_baseline(mailbox: str, folder: str, count: int) -> None:
    log.log(logging.WARNING if count else logging.INFO,
            "%s/%s: first contact: %d message(s) already there recorded as baseline (not read, not "
            "answered); `mailbot poll --since YYYY-MM-DD` imports them on purpose", mailbox, folder, count)


def history_keys(sessions: sessionmaker[Session], mailbox, folder: str, uidvalidity: int,
                 keys: list) -> list:
    """Of the keys found since the day asked, those a first contact left as baseline."""
    with sessions() as session:
        found = recorded_keys(session, mailbox.name, folder, uidvalidity, [str(k) for k in keys], outcome=BASELINE)
    return [k for k in keys if str(k) in found]


def maildir_polled(session: Session, mailbox: str, folder: str) -> bool:
    """Whether a poll of this Maildir ever succeeded (an empty one leaves no ledger row)."""
    state = session.scalar(select(MailboxState).where(MailboxState.mailbox == mailbox,
                                                      MailboxState.folder == folder))
    return state is not None and state.last_success_at is not None


# -- telling the operator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OldMail:
    """A message processed without its automatic reply because it waited too long."""

    sender: str
    where: str  # the message's place, e.g. "chuyoujiao:INBOX/17"
    outcome: str
    arrived_at: datetime


OUTCOME_LABELS = {"accepted": "已登记", "rejected": "未能登记（未回复学校）"}


def tell_operator_of_old_mail(sessions: sessionmaker[Session], config, mailbox, items: list[OldMail],
                              now: datetime) -> None:
    """One notice per poll and mailbox listing the messages answered by nobody because they
    waited longer than `reply_max_age_days` (the outbox key makes it once for these messages)."""
    if not items or not config.operator_email:
        return
    import hashlib

    from mailbot.outbound.compose import compose
    from mailbot.outbound.outbox import queue_mail
    from mailbot.timeutil import label_datetime

    digest = hashlib.sha256("|".join(f"{i.sender}/{i.arrived_at.isoformat()}/{i.where}" for i in items)
                            .encode("utf-8", "surrogatepass")).hexdigest()[:16]
    composed = compose("operator_stale", {
        "mailbox": mailbox.address, "max_age_days": f"{config.replies.reply_max_age_days:g}",
        "messages": [{"received_label": label_datetime(i.arrived_at, config.timezone), "sender": i.sender,
                      "where": i.where, "outcome_label": OUTCOME_LABELS.get(i.outcome, i.outcome)}
                     for i in items]})
    with sessions() as session:
        queue_mail(session, key=f"operator-stale:{mailbox.name}:{digest}", kind="operator_stale", mailbox=mailbox,
                   to=[config.operator_email], composed=composed, now=now, auto_submitted="auto-generated",
                   from_name="mailbot")
        session.commit()
