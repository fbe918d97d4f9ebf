"""One pass over every mailbox (SPEC 5), then the outbox is sent.

For an IMAP mailbox, on a fresh connection (LOGIN, ID, EXAMINE; see mailbot.transports.imap):

1. `UID SEARCH UID n:*` above the high-water mark kept in `mailbox_state`: one command, however
   big the mailbox, so a poll with nothing new costs a constant handful of commands.
2. UIDs the ledger (`messages`) already settled are dropped; failed ones with attempts left are
   added back (retried up to `limits.max_attempts`, then left for the operator).
3. The rest is described (size, flags, BODYSTRUCTURE, a few headers) in batched FETCHes and
   triaged (`triage`, pure): a Message-ID the ledger already processed is a `duplicate`;
   automatic mail, mail from our own mailboxes, and mail from unknown senders without a
   candidate attachment (or over the size limit) is `ignored`. Both are recorded without
   downloading anything.
4. Everything else is downloaded with batched `BODY.PEEK[]` (nothing is marked read) and fed to
   `Pipeline.process_stream`, which yields each result once it is committed.
5. The mark advances only over UIDs whose outcome is committed. A crash loses nothing: what was
   not committed is fetched again, and what was is found in the ledger (`duplicate` at worst).

A new UIDVALIDITY (the folder was recreated, the server migrated) starts the mark at 0 again;
step 3 then finds every message already processed by its Message-ID (mail without one is
downloaded and the pipeline matches its bytes): nothing is processed twice or skipped.

Nothing is flagged, moved or deleted, except accepted submissions when `move_processed_to` is
set. A Maildir mailbox is scanned whole (it is a local directory) and filtered by the ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from mailbot.outbound import alarms
from mailbot.db import store
from mailbot.config import Config, MailboxConfig
from mailbot.db.models import MailboxState, Message
from mailbot.errors import ConfigError, TransportError
from mailbot.ingest.pipeline import Inbound, Pipeline
from mailbot.rules.roster import Roster
from mailbot.outbound.sending import SendReport, send_outbox
from mailbot.rules.classify import own_mail_reason
from mailbot.transports.imap import ImapInbox
from mailbot.transports.imap_responses import RemoteMessage

log = logging.getLogger(__name__)

MAILDIR_FOLDER = "Maildir"  # the ledger's `folder` for Maildir mailboxes (keys have no UIDVALIDITY)
PROCESSED = ("accepted", "rejected", "quarantined", "ignored")  # what a Message-ID twin must have
MARK_SAVE_SECONDS = 1.0
SQL_CHUNK = 500

ResultCallback = Callable[[dict], None]


@dataclass
class MailboxPoll:
    """How polling one mailbox went."""

    mailbox: str
    ok: bool = False
    error: str | None = None
    new: int = 0  # messages mailbot had not settled yet
    downloaded: int = 0
    decided_unread: int = 0  # ignored or duplicate without downloading
    outcomes: dict[str, int] = field(default_factory=dict)
    imap_commands: int | None = None


@dataclass
class PollReport:
    mailboxes: list[MailboxPoll]
    sending: SendReport | None = None
    skipped_busy: bool = False  # another poll held the lock

    @property
    def ok(self) -> bool:
        return (not self.skipped_busy and all(m.ok and not m.outcomes.get("failed") for m in self.mailboxes)
                and (self.sending is None or self.sending.ok))


# -- pure decisions ------------------------------------------------------------------------------


@dataclass
class Triage:
    """What to do with each described message."""

    ignore: list[tuple[RemoteMessage, str]] = field(default_factory=list)  # (message, why)
    duplicate: list[RemoteMessage] = field(default_factory=list)
    fetch: list[int] = field(default_factory=list)


def triage(described: Iterable[RemoteMessage], *, is_known_sender: Callable[[str], bool], own_addresses: set[str],
           processed_message_ids: set[str], max_message_bytes: int) -> Triage:
    """Decide from the description alone (SPEC 4-5) what needs downloading; the same rules as
    the pipeline, applied early, so the outcome is the same either way."""
    out = Triage()
    for message in described:
        if message.message_id and message.message_id in processed_message_ids:
            out.duplicate.append(message)
        elif message.automatic:
            out.ignore.append((message, f"automatic mail: {message.automatic}"))
        elif own_mail_reason(message, own_addresses):
            out.ignore.append((message, own_mail_reason(message, own_addresses)))
        elif not is_known_sender(message.from_addr) and not message.has_candidate:
            out.ignore.append((message, "unknown sender, no table-like attachment"))
        elif not is_known_sender(message.from_addr) and message.size > max_message_bytes:
            out.ignore.append((message, "oversized message from an unknown sender"))
        else:
            out.fetch.append(message.uid)
    return out


def advance_mark(mark: int, wanted: Iterable[int], settled: set[int]) -> int:
    """The new high-water mark: past every wanted UID, in order, up to the first unsettled one."""
    for uid in sorted(wanted):
        if uid <= mark:
            continue
        if uid not in settled:
            break
        mark = uid
    return mark


def unread_result(label: str, mailbox: str, message: RemoteMessage, outcome: str) -> dict:
    """The `ingest --json` object of a message decided without downloading it."""
    return {"file": label, "message_id": message.message_id, "mailbox": mailbox, "sender": message.from_addr,
            "outcome": outcome, "month": None, "rows": [], "errors": [], "warnings": [], "reply": None}


# -- ledger and state ----------------------------------------------------------------------------


def _chunks(items: list, size: int = SQL_CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def ledger_at(session: Session, mailbox: str, folder: str, uidvalidity: int, uids: list[str],
              max_attempts: int) -> tuple[set[str], set[str]]:
    """Of these UIDs: (settled: a final outcome, or failed too often; retry: failed with attempts left)."""
    settled, retry = set(), set()
    for chunk in _chunks(uids):
        rows = session.execute(select(Message.uid, Message.outcome, Message.attempts).where(
            Message.mailbox == mailbox, Message.folder == folder, Message.uidvalidity == uidvalidity,
            Message.uid.in_(chunk)))
        for uid, outcome, attempts in rows:
            (retry if outcome in (None, "failed") and attempts < max_attempts else settled).add(uid)
    return settled, retry


def retry_below_mark(session: Session, mailbox: str, folder: str, uidvalidity: int, max_attempts: int) -> set[str]:
    return set(session.scalars(select(Message.uid).where(
        Message.mailbox == mailbox, Message.folder == folder, Message.uidvalidity == uidvalidity,
        or_(Message.outcome.is_(None), Message.outcome == "failed"), Message.attempts < max_attempts)))


def processed_ids(session: Session, message_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(message_ids))):
        found.update(session.scalars(select(Message.message_id).where(
            Message.message_id.in_(chunk), Message.outcome.in_(PROCESSED))))
    return found


def load_state(session: Session, mailbox: str, folder: str, now: datetime) -> MailboxState:
    state = session.scalar(select(MailboxState).where(MailboxState.mailbox == mailbox,
                                                      MailboxState.folder == folder))
    if state is None:
        state = MailboxState(mailbox=mailbox, folder=folder, uidvalidity=None, last_uid=0, created_at=now)
        session.add(state)
        session.flush()
    return state


def save_mark(sessions: sessionmaker[Session], mailbox: str, folder: str, uidvalidity: int, mark: int,
              now: datetime) -> None:
    with sessions() as session:
        state = load_state(session, mailbox, folder, now)
        state.uidvalidity, state.last_uid = uidvalidity, mark
        session.commit()


def record_unread(session: Session, mailbox: str, folder: str, uidvalidity: int, message: RemoteMessage,
                  outcome: str, label: str, now: datetime) -> dict:
    """Put a message decided without downloading into the ledger (no archive copy: not read)."""
    result = unread_result(label, mailbox, message, outcome)
    session.add(Message(mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=str(message.uid),
                        source="imap", message_id=message.message_id, sha256="", archive_path="",
                        size=message.size, sender=message.from_addr, subject="", received_at=now, read_at=now,
                        outcome=outcome, errors=[], warnings=[], attempts=1, result=result))
    return result


# -- polling one mailbox -------------------------------------------------------------------------


class _Tally:
    def __init__(self, report: MailboxPoll, on_result: ResultCallback | None):
        self.report, self.on_result = report, on_result

    def __call__(self, result: dict) -> None:
        self.report.outcomes[result["outcome"]] = self.report.outcomes.get(result["outcome"], 0) + 1
        if self.on_result is not None:
            self.on_result(result)


def poll_imap(config: Config, mailbox: MailboxConfig, sessions: sessionmaker[Session], pipeline: Pipeline,
              clock: Callable[[], datetime], report: MailboxPoll, on_result: ResultCallback | None = None, *,
              open_inbox: Callable[[MailboxConfig], ImapInbox] = ImapInbox,
              fetch_batch_bytes: int = 8_000_000) -> None:
    """Poll one IMAP mailbox; raises TransportError when the server fails (what was committed
    before stays, and the mark says so)."""
    folder = mailbox.imap.folder
    tally = _Tally(report, on_result)
    max_attempts = config.limits.max_attempts
    label = f"{mailbox.name}:{folder}/{{}}".format
    with open_inbox(mailbox).session() as imap:
        uidvalidity = imap.uidvalidity
        with sessions() as session:
            state = load_state(session, mailbox.name, folder, clock())
            if state.uidvalidity != uidvalidity:
                if state.uidvalidity is not None:
                    log.warning("%s/%s: UIDVALIDITY changed %s -> %s; matching messages by Message-ID",
                                mailbox.name, folder, state.uidvalidity, uidvalidity)
                state.uidvalidity, state.last_uid = uidvalidity, 0
            mark = state.last_uid
            session.commit()
        wanted: list[int] = []
        settled: set[int] = set()  # wanted UIDs whose outcome is committed (or that are gone)
        try:
            wanted = imap.uids_after(mark)
            with sessions() as session:
                known, retry = ledger_at(session, mailbox.name, folder, uidvalidity, [str(u) for u in wanted],
                                         max_attempts)
                retry |= retry_below_mark(session, mailbox.name, folder, uidvalidity, max_attempts)
                wanted_set = set(wanted)
                settled.update(int(u) for u in known | retry if int(u) in wanted_set)
            unknown = [uid for uid in wanted if uid not in settled]
            report.new = len(unknown) + len(retry)
            described = imap.describe(unknown)
            settled.update(set(unknown) - {m.uid for m in described})  # expunged meanwhile
            with sessions() as session:
                roster = Roster(config.schools, store.known_senders(session))
                plan = triage(described, is_known_sender=lambda a: bool(roster.schools_of_sender(a)),
                              own_addresses={mb.address for mb in config.mailboxes},
                              processed_message_ids=processed_ids(session, [m.message_id for m in described
                                                                            if m.message_id]),
                              max_message_bytes=config.limits.max_message_bytes)
                now = clock()
                unread = [record_unread(session, mailbox.name, folder, uidvalidity, m, outcome, label(m.uid), now)
                          for m, outcome in [(m, "duplicate") for m in plan.duplicate]
                          + [(m, "ignored") for m, _why in plan.ignore]]
                session.commit()
            for message, why in plan.ignore:
                log.info("ignored unread mailbox=%s uid=%s sender=%s: %s", mailbox.name, message.uid,
                         message.from_addr, why)
            settled.update(m.uid for m in plan.duplicate)
            settled.update(m.uid for m, _ in plan.ignore)
            report.decided_unread = len(unread)
            for result in unread:
                tally(result)

            to_fetch = sorted(set(plan.fetch) | {int(u) for u in retry})
            in_flight: deque[int] = deque()

            def inbounds() -> Iterator[Inbound]:
                for uid, raw in imap.fetch_raw(to_fetch, batch_bytes=fetch_batch_bytes):
                    in_flight.append(uid)
                    report.downloaded += 1
                    yield Inbound(raw=raw, mailbox=mailbox.name, source="imap", folder=folder,
                                  uidvalidity=uidvalidity, uid=str(uid), label=label(uid))

            saved_at = time.monotonic()
            for result in pipeline.process_stream(inbounds()):
                uid = in_flight.popleft()
                settled.add(uid)
                if result["outcome"] == "accepted" and mailbox.move_processed_to:
                    imap.move(uid, mailbox.move_processed_to)
                tally(result)
                if time.monotonic() - saved_at >= MARK_SAVE_SECONDS:
                    mark = _save(sessions, mailbox, folder, uidvalidity, mark, wanted, settled, clock)
                    saved_at = time.monotonic()
        finally:
            report.imap_commands = imap.commands_sent
            _save(sessions, mailbox, folder, uidvalidity, mark, wanted, settled, clock)


def _save(sessions, mailbox: MailboxConfig, folder: str, uidvalidity: int, mark: int, wanted: list[int],
          settled: set[int], clock) -> int:
    new_mark = advance_mark(mark, wanted, settled)
    if new_mark != mark:
        save_mark(sessions, mailbox.name, folder, uidvalidity, new_mark, clock())
    return new_mark


def poll_maildir(config: Config, mailbox: MailboxConfig, sessions: sessionmaker[Session], pipeline: Pipeline,
                 clock: Callable[[], datetime], report: MailboxPoll, on_result: ResultCallback | None = None) -> None:
    """Scan a Maildir and feed every message the ledger has not settled to the pipeline."""
    from mailbot.transports.maildir import MaildirInbox

    tally = _Tally(report, on_result)
    inbox = MaildirInbox(mailbox.maildir)
    keys = inbox.list_keys()
    with sessions() as session:
        settled, _retry = ledger_at(session, mailbox.name, MAILDIR_FOLDER, 0, keys, config.limits.max_attempts)
    todo = [key for key in keys if key not in settled]
    report.new = len(todo)

    def inbounds() -> Iterator[Inbound]:
        for key in todo:
            try:
                raw = inbox.read(key)
            except TransportError as exc:  # removed by staff meanwhile: nothing left to read
                log.info("maildir %s: %s", mailbox.name, exc)
                continue
            report.downloaded += 1
            yield Inbound(raw=raw, mailbox=mailbox.name, source="maildir", folder=MAILDIR_FOLDER, uidvalidity=0,
                          uid=key, label=f"{mailbox.name}:{key}")

    for result in pipeline.process_stream(inbounds()):
        tally(result)


# -- the pass ------------------------------------------------------------------------------------


def note_poll(sessions: sessionmaker[Session], config: Config, mailbox: MailboxConfig, folder: str, ok: bool,
              error: str | None, now: datetime) -> None:
    """Remember the attempt; raise the "no successful poll" alarm once when it is due."""
    with sessions() as session:
        state = load_state(session, mailbox.name, folder, now)
        state.last_attempt_at = now
        if ok:
            state.last_success_at, state.last_error, state.alarm_sent_at = now, None, None
        else:
            state.last_error = (error or "")[:4000]
            if alarms.poll_alarm_due(created_at=state.created_at, last_success_at=state.last_success_at,
                                     alarm_sent_at=state.alarm_sent_at, now=now,
                                     after_minutes=config.alarm_after_minutes):
                alarms.poll_stalled(session, config, mailbox, since=state.last_success_at or state.created_at,
                                    error=state.last_error, now=now)
                state.alarm_sent_at = now
        session.commit()


def poll_mailboxes(config: Config, sessions: sessionmaker[Session], pipeline: Pipeline,
                   clock: Callable[[], datetime], on_result: ResultCallback | None = None, *,
                   open_inbox: Callable[[MailboxConfig], ImapInbox] = ImapInbox,
                   fetch_batch_bytes: int = 8_000_000) -> list[MailboxPoll]:
    """Poll every mailbox once. A mailbox that fails is reported and alarmed; the others go on."""
    reports = []
    for mailbox in config.mailboxes:
        report = MailboxPoll(mailbox.name)
        folder = mailbox.imap.folder if mailbox.imap is not None else MAILDIR_FOLDER
        try:
            if mailbox.imap is not None:
                poll_imap(config, mailbox, sessions, pipeline, clock, report, on_result, open_inbox=open_inbox,
                          fetch_batch_bytes=fetch_batch_bytes)
            else:
                poll_maildir(config, mailbox, sessions, pipeline, clock, report, on_result)
            report.ok = True
        except (TransportError, ConfigError) as exc:
            report.error = str(exc)
            log.error("polling %s failed: %s", mailbox.name, exc)
        note_poll(sessions, config, mailbox, folder, report.ok, report.error, clock())
        reports.append(report)
    return reports


@contextlib.contextmanager
def poll_lock(config: Config) -> Iterator[bool]:
    """True when this process may poll: two polls at once would fetch the same mail twice."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.state_dir / "poll.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def poll_and_send(config: Config, sessions: sessionmaker[Session], clock: Callable[[], datetime],
                  on_result: ResultCallback | None = None, *, pipeline: Pipeline | None = None,
                  send: bool = True, open_inbox: Callable[[MailboxConfig], ImapInbox] = ImapInbox) -> PollReport:
    """`mailbot poll`: one pass over every mailbox, then the outbox is sent (it is sent even when
    another poll holds the lock: claims keep sending safe).

    `pipeline` is the caller's to close (the daemon keeps one for its life); without it, a
    pipeline and its workers are made for this pass and closed after it."""
    from mailbot.ingest.isolation import WorkerPool

    report = PollReport(mailboxes=[])
    with poll_lock(config) as mine:
        if not mine:
            log.warning("another poll is running: not polling now")
            report.skipped_busy = True
        else:
            with contextlib.ExitStack() as stack:
                if pipeline is None:
                    runner = stack.enter_context(WorkerPool(config.limits))
                    pipeline = stack.enter_context(Pipeline(config, sessions, runner, clock))
                report.mailboxes = poll_mailboxes(config, sessions, pipeline, clock, on_result,
                                                  open_inbox=open_inbox)
    if send:
        report.sending = send_outbox(config, sessions, clock)
    return report
