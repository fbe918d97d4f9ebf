"""One pass over every mailbox (SPEC 5), then the outbox is sent.

For an IMAP mailbox, on a fresh connection (LOGIN, ID, EXAMINE; see mailbot.transports.imap):

1. `UID SEARCH UID n:*` above the high-water mark kept in `mailbox_state`: one command, however
   big the mailbox, so a poll with nothing new costs a constant handful of commands.
2. UIDs the ledger (`messages`) already settled are dropped; failed ones with attempts left are
   added back (retried up to `limits.max_attempts`, then left for the operator).
3. The rest is described (size, flags, BODYSTRUCTURE, a few headers) in batched FETCHes and
   triaged (`poll_plan.triage`, pure): a Message-ID the ledger already processed is a `duplicate`;
   automatic mail, mail from our own mailboxes, and mail from unknown senders without a
   candidate attachment (or over the size limit) is `ignored`. Both are recorded without
   downloading anything.
4. Everything else is downloaded with batched `BODY.PEEK[]` (nothing is marked read) and fed to
   `Pipeline.process_stream`, which yields each result once it is committed. A message over the
   size limit (by its RFC822.SIZE) is read as its header only (`BODY.PEEK[HEADER]`): the school
   is answered from that, and the body is never downloaded nor archived.
5. The mark advances only over UIDs whose outcome is committed. A crash loses nothing: what was
   not committed is fetched again, and what was is found in the ledger (`duplicate` at worst).

A new UIDVALIDITY (the folder was recreated, the server migrated) starts the mark at 0 again;
step 3 then finds every message already processed by its Message-ID (mail without one is
downloaded and the pipeline matches its bytes): nothing is processed twice or skipped.

Nothing is flagged, moved or deleted, except accepted submissions when `move_processed_to` is
set. A Maildir mailbox is scanned whole (it is a local directory) and filtered by the ledger.

Both kinds are read through one `transports.inbox.Inbox`; downloading and processing
(`download_and_process`) is the same for both. The ledger reads and writes are in `poll_ledger`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterator

from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config, MailboxConfig
from mailbot.errors import ConfigError, TransportError
from mailbot.outbound.disk_alarm import is_disk_full
from mailbot.ingest.baseline import (Arrivals, History, OldMail, Seen, first_contact_imap, has_ledger, history_keys,
                                     log_baseline, maildir_polled, split_first_contact, start_of_date, take_baseline,
                                     tell_operator_of_old_mail, withheld_because_old)
from mailbot.ingest.poll_health import note_poll
from mailbot.ingest.poll_guard import mailbox_lease, poll_lock
from mailbot.ingest.poll_ledger import ledger_at, read_mark, retry_below_mark, save_mark
from mailbot.ingest.poll_plan import advance_mark
from mailbot.ingest.poll_triage import Triager
from mailbot.outbound.sending import SendReport, send_outbox
from mailbot.rules.outcome import Outcome, Result
from mailbot.transports.inbox import Inbox, InboxSession, open_inbox as default_open_inbox
from mailbot.transports.maildir import MaildirInbox

if TYPE_CHECKING:  # the pipeline (and all a message's analysis needs) is imported when mail is downloaded
    from mailbot.ingest.pipeline import Inbound, Pipeline

log = logging.getLogger(__name__)

MARK_SAVE_SECONDS = 1.0

ResultCallback = Callable[[Result], None]
ShouldStop = Callable[[], bool]


def _never() -> bool:
    return False


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
    baseline: int = 0  # recorded as baseline at first contact (not read, not answered)
    old_mail: list[OldMail] = field(default_factory=list)  # processed unanswered: waited too long
    stopped: bool = False  # SIGTERM came: the rest waits for the next poll
    held_elsewhere: bool = False  # another instance holds this mailbox's poll lease (PostgreSQL)


@dataclass
class PollReport:
    mailboxes: list[MailboxPoll]
    sending: SendReport | None = None
    skipped_busy: bool = False  # another poll held the lock

    @property
    def ok(self) -> bool:
        return (not self.skipped_busy and all(m.ok and not m.outcomes.get(Outcome.FAILED) for m in self.mailboxes)
                and (self.sending is None or self.sending.ok))


# -- polling one mailbox -------------------------------------------------------------------------


class _Tally:
    def __init__(self, report: MailboxPoll, on_result: ResultCallback | None):
        self.report, self.on_result = report, on_result

    def __call__(self, result: Result) -> None:
        outcome = result.outcome.value
        self.report.outcomes[outcome] = self.report.outcomes.get(outcome, 0) + 1
        if self.on_result is not None:
            self.on_result(result)


def download_and_process(pipeline: Pipeline, inbox: Inbox, session: InboxSession, mailbox: MailboxConfig,
                         keys: list, label: Callable[[object], str], report: MailboxPoll,
                         fetch_batch_bytes: int, arrivals: Arrivals | None = None,
                         should_stop: ShouldStop = _never) -> Iterator[tuple[object, Result]]:
    """(key, committed result) for each message downloaded: the step IMAP and Maildir share.
    A stop is noticed between messages and while the workers parse: what is decided is committed,
    the rest waits for the next poll.
    Nothing to download: the pipeline is not touched (the daemon's is made on first use)."""
    if not keys:
        return
    from mailbot.ingest.pipeline import Inbound

    in_flight: deque = deque()
    arrivals = arrivals or Arrivals()

    def inbounds() -> Iterator[Inbound]:
        # Over the size limit only the header is read: the pipeline answers it from that (SPEC 4).
        for key, fetched in session.fetch(keys, batch_bytes=fetch_batch_bytes,
                                          max_bytes=pipeline.config.limits.max_message_bytes):
            if should_stop():
                report.stopped = True
                return
            in_flight.append(key)
            report.downloaded += 1
            yield Inbound(raw=fetched.raw, mailbox=mailbox.name, source=inbox.source, folder=session.folder,
                          uidvalidity=session.uidvalidity, uid=str(key), label=label(key),
                          arrived_at=None if key in arrivals.exempt else arrivals.at.get(key),
                          answer=key not in arrivals.unanswered, size=None if fetched.whole else fetched.size)

    for result in pipeline.process_stream(inbounds(), should_stop):
        key = in_flight.popleft()
        _note_old_mail(pipeline, report, result, arrivals.at.get(key), key in arrivals.unanswered | arrivals.exempt)
        yield key, result
    if in_flight:  # a stop came while the workers parsed these: they wait, unsettled, for the next poll
        report.stopped = True


def _note_old_mail(pipeline: Pipeline, report: MailboxPoll, result, arrived_at, on_purpose: bool) -> None:
    """Remember a submission left unanswered because it waited too long (the operator is told)."""
    if on_purpose or arrived_at is None or result.reply is not None:
        return
    if result.outcome not in (Outcome.ACCEPTED, Outcome.REJECTED):
        return
    if withheld_because_old(arrived_at, pipeline.clock(), pipeline.config.replies.reply_max_age_days):
        report.old_mail.append(OldMail(result.sender or "", result.file, str(result.outcome), arrived_at))


def poll_imap(config: Config, mailbox: MailboxConfig, sessions: sessionmaker[Session], pipeline: Pipeline,
              clock: Callable[[], datetime], report: MailboxPoll, on_result: ResultCallback | None = None, *,
              inbox: Inbox, fetch_batch_bytes: int = 8_000_000, history: History | None = None,
              should_stop: ShouldStop = _never) -> None:
    """Poll one IMAP mailbox; raises TransportError when the server fails (what was committed
    before stays, and the mark says so)."""
    folder = mailbox.imap.folder
    tally = _Tally(report, on_result)
    max_attempts = config.limits.max_attempts
    label = f"{mailbox.name}:{folder}/{{}}".format
    with inbox.session() as imap:
        uidvalidity = imap.uidvalidity
        with sessions() as session:
            previous, mark = read_mark(session, mailbox.name, folder, clock())
            first = previous is None and not has_ledger(session, mailbox.name, folder, uidvalidity)
            # The usual poll (the folder as last time): its retries are read in this transaction
            # too, so an empty poll opens one session for its reads, not two.
            retry = (retry_below_mark(session, mailbox.name, folder, uidvalidity, max_attempts)
                     if previous == uidvalidity else None)
            session.commit()
        histories = [history] if history is not None else []
        if previous != uidvalidity:
            if previous is not None:
                log.warning("%s/%s: UIDVALIDITY changed %s -> %s; matching messages by Message-ID",
                            mailbox.name, folder, previous, uidvalidity)
            report.baseline, mark = first_contact_imap(config, mailbox, sessions, clock, imap, uidvalidity, first)
            # Saved only now: a kill during the baseline leaves the next poll at first contact.
            save_mark(sessions, mailbox.name, folder, uidvalidity, mark, clock())
            if first and config.first_poll_since is not None:
                histories.insert(0, History(config.first_poll_since))
        triager = Triager(config, mailbox, sessions, clock, imap, uidvalidity, label, tally)
        arrivals = Arrivals()
        wanted: list[int] = []
        settled: set[int] = set()  # wanted UIDs whose outcome is committed (or that are gone)
        try:
            wanted = imap.uids_after(mark)
            known: set[str] = set()
            if wanted or retry is None:  # an empty usual poll has read all it needs above
                with sessions() as session:
                    if retry is None:  # a new folder: its retries once its baseline is recorded
                        retry = retry_below_mark(session, mailbox.name, folder, uidvalidity, max_attempts)
                    known, failed = ledger_at(session, mailbox.name, folder, uidvalidity, [str(u) for u in wanted],
                                              max_attempts)
                    retry |= failed
            wanted_set = set(wanted)
            settled.update(int(u) for u in known | retry if int(u) in wanted_set)
            unknown = [uid for uid in wanted if uid not in settled]
            report.new = len(unknown) + len(retry)
            fetch, report.decided_unread = triager.new_mail(unknown, arrivals.at, settled)
            retried = imap.describe(sorted(int(u) for u in retry)) if retry else []
            arrivals.at.update({m.uid: m.arrived_at for m in retried})
            to_fetch = sorted(set(fetch) | {int(u) for u in retry})
            for asked in histories:
                imported, unread = triager.history(asked)
                report.decided_unread += unread
                if asked is not history:  # first_poll_since: these are no longer baseline
                    report.baseline -= len(imported) + unread
                (arrivals.exempt if asked.reply else arrivals.unanswered).update(imported)
                to_fetch += sorted(set(imported) - set(to_fetch))
            saved_at = time.monotonic()
            for uid, result in download_and_process(pipeline, inbox, imap, mailbox, to_fetch, label, report,
                                                    fetch_batch_bytes, arrivals, should_stop):
                settled.add(uid)
                if result.outcome == Outcome.ACCEPTED and mailbox.move_processed_to:
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
                 clock: Callable[[], datetime], report: MailboxPoll, on_result: ResultCallback | None = None, *,
                 inbox: Inbox, history: History | None = None, should_stop: ShouldStop = _never) -> None:
    """Scan a Maildir and feed every message the ledger has not settled to the pipeline. The first
    scan records what is there as baseline; a file's time is when it was delivered."""
    tally = _Tally(report, on_result)
    with inbox.session() as maildir:
        keys = maildir.list_keys()
        arrivals = Arrivals(at={key: maildir.delivered_at(key) for key in keys})
        with sessions() as session:
            first = not has_ledger(session, mailbox.name, maildir.folder, maildir.uidvalidity) and not maildir_polled(
                session, mailbox.name, maildir.folder)
        histories = [history] if history is not None else []
        if first:
            report.baseline = take_baseline(
                sessions, mailbox=mailbox.name, folder=maildir.folder, uidvalidity=maildir.uidvalidity, keys=keys,
                seen_of=lambda _session, part: [Seen(key, arrivals.at[key]) for key in part], source="maildir",
                now=clock(), chunk=config.limits.ledger_chunk)
            log_baseline(mailbox.name, maildir.folder, report.baseline)
            if config.first_poll_since is not None:
                histories.insert(0, History(config.first_poll_since))
        with sessions() as session:
            settled, _retry = ledger_at(session, mailbox.name, maildir.folder, maildir.uidvalidity, keys,
                                        config.limits.max_attempts)
        todo = [key for key in keys if key not in settled]
        for asked in histories:
            recent = split_first_contact([Seen(key, arrivals.at.get(key)) for key in keys],
                                         start_of_date(asked.since, config.timezone)).process
            imported = history_keys(sessions, mailbox, maildir.folder, maildir.uidvalidity, [s.uid for s in recent])
            if asked is not history:  # first_poll_since: these are no longer baseline
                report.baseline -= len(imported)
            (arrivals.exempt if asked.reply else arrivals.unanswered).update(imported)
            pending = set(todo)
            todo += [key for key in imported if key not in pending]
        report.new = len(todo)
        label = f"{mailbox.name}:{{}}".format
        for _key, result in download_and_process(pipeline, inbox, maildir, mailbox, todo, label, report, 0,
                                                 arrivals, should_stop):
            tally(result)


# -- the pass ------------------------------------------------------------------------------------


class PipelineWhenNeeded:
    """What a poll needs of a pipeline before it downloads anything; the pipeline itself (and its
    imports: the rules, the MIME parser, the table sniffers, a few MB) is made by `make` when the
    first message is to be processed. An empty poll, or a first contact with 100,000 messages
    that only records them, never makes one."""

    def __init__(self, config: Config, clock: Callable[[], datetime], make: Callable[[], "Pipeline"]):
        self.config, self.clock, self._make, self._pipeline = config, clock, make, None

    def _made(self) -> "Pipeline":
        if self._pipeline is None:
            self._pipeline = self._make()
        return self._pipeline

    def process_stream(self, inbounds, should_stop=None):
        return self._made().process_stream(inbounds, should_stop)

    @property
    def disk_full(self):
        """The pipeline's once-per-period disk-full alarm (a full disk is met by the archive)."""
        return self._made().disk_full


def _own_pipeline(config: Config, sessions, clock, stack: contextlib.ExitStack) -> "Pipeline":
    """A pipeline and its workers for one `mailbot poll`, closed with `stack`."""
    from mailbot.ingest.isolation import WorkerPool
    from mailbot.ingest.pipeline import Pipeline
    runner = stack.enter_context(WorkerPool(config.limits))
    return stack.enter_context(Pipeline(config, sessions, runner, clock))



def poll_mailboxes(config: Config, sessions: sessionmaker[Session], pipeline: Pipeline,
                   clock: Callable[[], datetime], on_result: ResultCallback | None = None, *,
                   open_inbox: Callable[[MailboxConfig], Inbox] = default_open_inbox,
                   fetch_batch_bytes: int = 8_000_000, history: History | None = None,
                   should_stop: ShouldStop = _never) -> list[MailboxPoll]:
    """Poll every mailbox once. A mailbox that fails is reported and alarmed; the others go on.
    A stop is noticed between messages and between mailboxes."""
    reports = []
    for mailbox in config.mailboxes:
        if should_stop():
            break
        report = MailboxPoll(mailbox.name)
        folder = mailbox.imap.folder if mailbox.imap is not None else MaildirInbox.folder
        lease = mailbox_lease(config, sessions, mailbox)
        if lease is not None and not lease.acquire():
            log.info("%s: another instance is polling it (lease %s)", mailbox.name, lease.name)
            report.ok = report.held_elsewhere = True
            reports.append(report)
            continue
        stop = should_stop if lease is None else (lambda: should_stop() or lease.lost)
        try:
            inbox = open_inbox(mailbox)
            if mailbox.imap is not None:
                poll_imap(config, mailbox, sessions, pipeline, clock, report, on_result, inbox=inbox,
                          fetch_batch_bytes=fetch_batch_bytes, history=history, should_stop=stop)
            else:
                poll_maildir(config, mailbox, sessions, pipeline, clock, report, on_result, inbox=inbox,
                             history=history, should_stop=stop)
            report.ok = True
        except (TransportError, ConfigError) as exc:
            report.error = str(exc)
            log.error("polling %s failed: %s", mailbox.name, exc)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            # Nothing of the message was recorded, so it stays unread and is read again later; the
            # operator is told once per period, by mail sent from memory (the disk is full).
            report.error = f"disk full: {exc}"
            log.error("polling %s stopped: disk full (%s); its mail is read again once there is space",
                      mailbox.name, exc)
            pipeline.disk_full.alarm(exc, mailbox=mailbox.name, directory=str(config.archive_dir), now=clock())
        finally:
            if lease is not None:
                lease.release()
        if report.old_mail:
            log.warning("%s: %d message(s) waited more than %g days: recorded, not answered; the operator is told",
                        mailbox.name, len(report.old_mail), config.replies.reply_max_age_days)
            tell_operator_of_old_mail(sessions, config, mailbox, report.old_mail, clock())
        note_poll(sessions, config, mailbox, folder, report.ok, report.error, clock())
        reports.append(report)
    return reports


def poll_and_send(config: Config, sessions: sessionmaker[Session], clock: Callable[[], datetime],
                  on_result: ResultCallback | None = None, *, pipeline: Pipeline | None = None,
                  send: bool = True, open_inbox: Callable[[MailboxConfig], Inbox] = default_open_inbox,
                  history: History | None = None, should_stop: ShouldStop = _never) -> PollReport:
    """`mailbot poll`: one pass over every mailbox, then the outbox is sent (it is sent even when
    another poll holds the lock: claims keep sending safe).

    `pipeline` is the caller's to close (the daemon keeps one for its life); without it, a
    pipeline and its workers are made for this pass and closed after it."""
    report = PollReport(mailboxes=[])
    with poll_lock(config) as mine:
        if not mine:
            log.warning("another poll is running: not polling now")
            report.skipped_busy = True
        else:
            with contextlib.ExitStack() as stack:
                if pipeline is None:
                    pipeline = PipelineWhenNeeded(config, clock, lambda: _own_pipeline(config, sessions, clock, stack))
                report.mailboxes = poll_mailboxes(config, sessions, pipeline, clock, on_result,
                                                  open_inbox=open_inbox, history=history, should_stop=should_stop)
    if send and not should_stop():
        report.sending = send_outbox(config, sessions, clock, should_stop=should_stop)
    return report
