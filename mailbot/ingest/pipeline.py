"""The ingest pipeline: one message in, one outcome out (SPEC 3-4).

What happens to each message, in this order, and where:

    archive          main process, as the message is read: its raw bytes on disk (`_archive`)
    parse + extract  an isolated worker: MIME parsing and table reading touch the untrusted bytes
                     (`mailbot.ingest.analysis.analyse`; the worker reads the archived file itself)
    gather           main process: the database facts the decision needs (`_context`)
    decide           pure (`mailbot.rules.decide.OUTCOME_RULES`, first match wins): duplicate → automatic
                     mail → size → stranger without attachments → stranger → thanks for our mail →
                     other business → submission; then reply or not, caps included (`with_reply`)
    store + respond  rows recorded, the answer rendered and queued, the result saved (`_store_and_respond`)

The workers run ahead on the next messages while one is decided and stored. Outcomes are decided
in `mailbot.rules.decide` and nowhere else; the decision, the stored rows and the reply it causes
are committed in one transaction.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator

from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config
from mailbot.db import store
from mailbot.db.models import Message
from mailbot.db.senders import unauthenticated_exempt
from mailbot.db.submissions import record_rows
from mailbot.errors import WorkerFailure
from mailbot.ingest.analysis import Analysis, analyse_archived
from mailbot.ingest.archive import Archive, open_archive, sha256_hex
from mailbot.outbound.disk_alarm import DiskFullAlarm
from mailbot.ingest.baseline import BASELINE, withheld_because_old
from mailbot.outbound.responses import Responder
from mailbot.rules.decide import Context, decide, reply_recipient
from mailbot.rules.model import ParsedMessage
from mailbot.rules.outcome import FINAL_OUTCOMES, Decision, Outcome, Result, Twin
from mailbot.rules.reply_policy import ReplyCaps, cap_description
from mailbot.rules.roster import Roster
from mailbot.rules.sender_auth import AuthVerdict, header_fields, judge
from mailbot.timeutil import start_of_day

log = logging.getLogger(__name__)


@dataclass
class MessageRow:
    """The ledger row (`messages`) of the message being processed, as the pipeline writes it: with
    Core statements (an INSERT when it is archived, an UPDATE of its header fields when its analysis
    is back, one of its outcome when it is decided), not as an ORM object flushed at every stage
    (issue 13)."""

    id: int
    sha256: str
    archive_path: str = ""  # as `messages.archive_path` says it
    sender: str = ""  # once parsed


@dataclass
class Inbound:
    """A message as it reached mailbot, with where it came from."""

    raw: bytes
    mailbox: str  # the [[mailbox]] name it was sent to
    source: str = "file"  # imap | maildir | file | operator
    folder: str | None = None
    uidvalidity: int | None = None
    uid: str | None = None
    label: str = ""  # for logs: a file path or "INBOX/123"
    # SPEC 5: when it reached the mailbox (INTERNALDATE, a Maildir file's time), for the reply age
    # limit; None for what the operator hands in (`ingest FILE`): exempt.
    arrived_at: datetime | None = None
    answer: bool = True  # False: history imported on purpose, recorded but answered by nobody
    # Over the size limit only the header section is read (SPEC 4: answered from the headers, the
    # body never downloaded nor archived): `raw` is then that header and `size` the whole message's.
    size: int | None = None

    @property
    def message_bytes(self) -> int:
        """The whole message's size, read or not."""
        return len(self.raw) if self.size is None else self.size


class Pipeline:
    def __init__(self, config: Config, sessions: sessionmaker[Session], runner, clock,
                 txt_lookup: Callable[[str], str | None] | None = None):
        """`txt_lookup`: DNS TXT answers for mailbot's own DKIM check (tests inject them); the
        system resolver by default."""
        self.config = config
        self.txt_lookup = txt_lookup
        self.sessions = sessions
        self.runner = runner  # WorkerPool, or InlineRunner in unit tests
        self.clock = clock  # () -> aware datetime
        self.responder = Responder(config)
        self.own_addresses = frozenset(mb.address for mb in config.mailboxes)
        self.reply_caps = ReplyCaps(per_sender=config.replies.max_per_sender_per_day,
                                    per_mailbox=config.replies.max_per_mailbox_per_day)
        levels = {school.level for school in config.schools} | {lvl for mb in config.mailboxes for lvl in mb.levels}
        self.address_for_level = {level: config.mailbox_for_level(level).address for level in levels}
        self._roster: tuple[dict, Roster] | None = None
        self._roster_stale = True
        # Read once per transaction, not once per message (reset by `_commit`): today's replies for
        # the caps, kept up to date as replies are queued, and the exempted senders.
        self._replies: store.RepliesToday | None = None
        self._exempt: Callable[[str], bool] | None = None
        self.archive = open_archive(config)
        self.disk_full = DiskFullAlarm(config, sessions)  # lives as long as the pipeline: the daemon's
        self.batch_size = 50
        self.batch_seconds = 1.0

    def close(self) -> None:
        """Release what the pipeline owns (the archive's fsync thread). The runner is the caller's:
        it is passed in, so whoever made it closes it. Idempotent."""
        self.archive.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- entry points ----------------------------------------------------------------------------
    def process(self, inbound: Inbound) -> Result:
        """Process one message and return its result. Never raises for bad input; a bug or a
        timeout gives the outcome `failed` (retried a bounded number of times)."""
        return next(self.process_stream([inbound]))

    def process_stream(self, inbounds: Iterable[Inbound], should_stop: Callable[[], bool] | None = None
                       ) -> Iterator[Result]:
        """Process messages in order, one result each. Each is archived before the workers parse
        it; the workers run ahead on the next messages while this one is stored. Results are
        yielded only once committed. Commits are grouped (up to `batch_size` messages
        or `batch_seconds`): a crash before a commit loses nothing, since an uncommitted message
        is simply processed again, and each message has its own savepoint so one that breaks
        cannot undo the others. A stop (`should_stop`) ends the stream at once, even mid-parse: what
        is decided is committed, the rest stays archived and unsettled for the next poll."""
        archived: deque[tuple[Inbound, MessageRow, Result | None, datetime]] = deque()
        session = self.sessions()
        self._forget_transaction()

        def jobs():
            for inbound in inbounds:
                now = self.clock()
                record, duplicate = self._archive(session, inbound, now)
                archived.append((inbound, record, duplicate, now))
                yield None if duplicate else self._job(inbound, record.archive_path)

        done: list[Result] = []
        last_commit = time.monotonic()
        try:
            for analysis in self.runner.map_ordered(analyse_archived, jobs(), should_stop=should_stop):
                inbound, record, duplicate, now = archived.popleft()
                if duplicate is not None:
                    done.append(duplicate)
                elif isinstance(analysis, WorkerFailure):
                    done.append(self._fail(session, inbound, record.id, analysis))
                else:
                    try:
                        store.take_write_lock(session)
                        with session.begin_nested():
                            done.append(self._conclude(session, inbound, record, analysis, now))
                    except Exception as exc:  # noqa: BLE001 - the one place a broken message is caught
                        done.append(self._fail(session, inbound, record.id, exc))
                if len(done) >= self.batch_size or time.monotonic() - last_commit >= self.batch_seconds:
                    self._commit(session)
                    last_commit = time.monotonic()
                    yield from done
                    done.clear()
            store.uncount_attempts(session, [row.id for _i, row, twin, _t in archived if twin is None])  # a stop
            self._commit(session)
            yield from done
        finally:
            session.close()

    def reprocess(self, inbound: Inbound, record_pk: int, trusted_schools: list[str],
                  within: Callable[[Session], None], concluded: Callable[[Session, Result], None]) -> Result:
        """Run an archived message again as if these schools had sent it (an approved quarantine).

        `within(session)` (the approval) before the processing and `concluded(session, result)` (its
        audit entry) after it share its transaction: when the worker fails or the processing breaks,
        or either raises (that propagates), nothing is committed and the message stays as it was."""
        (analysis,) = self.runner.map_ordered(analyse_archived, [self._job(inbound)])
        self._forget_transaction()
        with self.sessions() as session:
            if not isinstance(analysis, WorkerFailure):
                within(session)
                try:
                    store.take_write_lock(session)
                    with session.begin_nested():
                        record = MessageRow(record_pk, store.message_sha256(session, record_pk))
                        result = self._conclude(session, inbound, record, analysis, self.clock(),
                                                trusted_schools)
                except Exception as exc:  # noqa: BLE001 - reported, and nothing is kept
                    analysis = exc
                else:
                    concluded(session, result)
                    self._commit(session)
                    return result
            session.rollback()
            result = self._failure(inbound, session.get(Message, record_pk), analysis)
            log.warning("%s: nothing committed, the message stays as it was", inbound.label)
            return result

    def _job(self, inbound: Inbound, archive_path: str = "") -> tuple:
        """What the worker is sent: a file's path (the worker reads it), or bytes (a database archive)."""
        source = inbound.raw
        if archive_path and isinstance(self.archive, Archive):
            source = str(self.config.state_dir / archive_path)
        return (source, self.config.limits, self.config.timezone.key, inbound.size)

    def _commit(self, session: Session) -> None:
        self.archive.sync()  # the archive is at least as durable as what refers to it
        session.commit()
        self._forget_transaction()

    def _forget_transaction(self) -> None:
        """What was read for one transaction is read again in the next."""
        self._roster_stale = True
        self._replies = self._exempt = None

    def _replies_since(self, session: Session, since: datetime) -> store.RepliesToday:
        if self._replies is None or self._replies.since != since:
            self._replies = store.replies_since(session, since)
        return self._replies

    # -- stage: archive ------------------------------------------------------------------------
    def _archive(self, session: Session, inbound: Inbound, now: datetime) -> tuple[MessageRow, Result | None]:
        digest = sha256_hex(inbound.raw)
        _, relative = self.archive.store(inbound.raw, digest, session=session)
        found = store.find_by_location(session, inbound.mailbox, inbound.folder, inbound.uidvalidity, inbound.uid)
        if found is not None and found.outcome in FINAL_OUTCOMES:
            twin = Twin(found.id, found.message_id, found.sender)
            return MessageRow(found.id, digest), self._duplicate_result(inbound, twin)
        if found is None:
            pk = store.insert_message(
                session, mailbox=inbound.mailbox, folder=inbound.folder, uidvalidity=inbound.uidvalidity,
                uid=inbound.uid, source=inbound.source, sha256=digest, archive_path=relative,
                size=inbound.message_bytes, sender="", subject="", received_at=now, read_at=now, attempts=1,
                errors=[], warnings=[])
            return MessageRow(pk, digest, relative), None
        if found.outcome == BASELINE:  # imported on purpose: now it is read
            store.count_attempt(session, found.id, source=inbound.source, sha256=digest, archive_path=relative,
                                size=inbound.message_bytes, read_at=now, outcome=None)
        else:
            store.count_attempt(session, found.id)
        return MessageRow(found.id, digest, relative), None

    def _duplicate_result(self, inbound: Inbound, twin: Twin) -> Result:
        log.info("duplicate mailbox=%s message=%s of message #%d", inbound.mailbox, twin.message_id, twin.id)
        decision = Decision(Outcome.DUPLICATE, twin=twin)
        return Result.of(inbound.label, inbound.mailbox, twin.message_id, twin.sender, decision, None)

    def _roster_for(self, session: Session) -> Roster:
        """The roster plus the senders the operator approved: read once per transaction, rebuilt
        only when those change."""
        if self._roster is None or self._roster_stale:
            extra = store.known_senders(session)
            if self._roster is None or self._roster[0] != extra:
                self._roster = (extra, Roster(self.config.schools, extra))
            self._roster_stale = False
        return self._roster[1]

    # -- stages: gather, decide, store + respond: one transaction ----------------------------------
    def _conclude(self, session: Session, inbound: Inbound, record: MessageRow, analysis: Analysis, now: datetime,
                  trusted_schools: list[str] | None = None) -> Result:
        """Decide, store and respond; the message's row gets its header fields and its outcome last,
        in one UPDATE. The caller holds the write lock (`store.take_write_lock`): on SQLite the
        savepoint reads before it writes."""
        msg = analysis.message
        received_at = msg.date or msg.received_date or now
        record.sender = msg.from_addr
        headers = dict(message_id=msg.message_id, sender=msg.from_addr, subject=msg.subject[:2000], date=msg.date,
                       received_at=received_at)
        roster = self._roster_for(session)
        context = self._context(session, inbound, record, msg, received_at, now, trusted_schools)
        decision = decide(msg, analysis, roster, context)
        if decision.outcome == Outcome.DUPLICATE:
            result = self._duplicate_result(inbound, decision.twin)
            store.update_message(session, record.id, **headers, outcome=decision.outcome, result=result.as_json())
            return result
        result = self._store_and_respond(session, inbound, record, msg, decision, roster, received_at, now)
        store.update_message(
            session, record.id, **headers, outcome=decision.outcome, last_error=None, result=result.as_json(),
            errors=decision.errors + [e for r in decision.rows for e in r.errors],
            warnings=decision.warnings + [w for r in decision.rows for w in r.warnings])
        log.info("%s mailbox=%s message=%s sender=%s schools=%s rows=%d %s", result.outcome, inbound.mailbox,
                 msg.message_id, msg.from_addr, ",".join(sorted({r.school for r in decision.rows if r.school})) or "-",
                 len(decision.rows), decision.reason)
        return result

    def _context(self, session: Session, inbound: Inbound, record: MessageRow, msg: ParsedMessage,
                 received_at: datetime, now: datetime, trusted_schools: list[str] | None) -> Context:
        """Everything the decision needs from the database and the configuration."""
        twin = store.find_processed_twin(session, msg.message_id, record.sha256, record.id)
        since = start_of_day(now, self.config.timezone)
        roster = self._roster_for(session)
        schools = list(trusted_schools) if trusted_schools is not None else roster.schools_of_sender(msg.from_addr)
        recipient = reply_recipient(msg, self.own_addresses, roster, schools)
        replies = self._replies_since(session, since)
        return Context(
            received_at=received_at, timezone=self.config.timezone,
            mailbox_levels=tuple(self.config.mailbox(inbound.mailbox).levels),
            address_for_level=self.address_for_level, own_addresses=self.own_addresses,
            message_bytes=inbound.message_bytes, max_message_bytes=self.config.limits.max_message_bytes,
            reply_cap=self.reply_caps.per_sender,
            replies_today=replies.by_recipient[recipient],
            replies_for_sender=replies.by_sender[(msg.from_addr or "").lower()],
            replies_from_mailbox=replies.by_mailbox[inbound.mailbox],
            reply_cap_per_mailbox=self.reply_caps.per_mailbox,
            sender_auth=self._authenticate(session, inbound, msg) if schools and trusted_schools is None else None,
            our_message_ids=frozenset(store.our_message_ids(session, msg.in_reply_to + msg.references)),
            replied_kinds=frozenset(store.our_mail_kinds(session, msg.in_reply_to + msg.references)),
            twin=Twin(*twin) if twin is not None else None,
            trusted_schools=tuple(trusted_schools) if trusted_schools is not None else None)

    def _authenticate(self, session: Session, inbound: Inbound, msg: ParsedMessage) -> AuthVerdict:
        """Whether the registered sender's From is authentic, as this mailbox's mode asks (SPEC 3.4),
        unless the operator exempted the address knowingly (`senders trust --unauthenticated`)."""
        security = self.config.security
        mode = security.mode_for(self.config.mailbox(inbound.mailbox), inbound.source)
        if mode != "off" and self._exempt is None:
            self._exempt = unauthenticated_exempt(session)
        if mode != "off" and self._exempt(msg.from_addr):
            log.info("sender %s is exempted from sender authentication (message %s)", msg.from_addr, msg.message_id)
            return AuthVerdict(True, "exempted by the operator (senders trust --unauthenticated)")

        def own_dkim():
            from mailbot.mail.dkim_check import check_dkim
            lookup = self.txt_lookup
            if lookup is None:
                from mailbot.transports.dns_txt import system_txt_lookup
                lookup = lambda name: system_txt_lookup(name, security.dns_timeout_seconds)  # noqa: E731
            return check_dkim(inbound.raw, lookup)

        # A message read by its header only (over the size limit) has no body to check a DKIM
        # signature's body hash against: mailbot's own check would call the school's mail forged.
        verdict = judge(header_fields(inbound.raw), msg.from_addr, mode=mode, authserv_ids=security.authserv_ids,
                        own_dkim=own_dkim if inbound.size is None else None)
        if not verdict.verified:
            log.warning("unverified sender mailbox=%s message=%s sender=%s mode=%s: %s", inbound.mailbox,
                        msg.message_id, msg.from_addr, mode, verdict.check)
        return verdict

    def _store_and_respond(self, session: Session, inbound: Inbound, record: MessageRow, msg: ParsedMessage,
                           decision: Decision, roster: Roster, received_at: datetime, now: datetime) -> Result:
        mailbox = self.config.mailbox(inbound.mailbox)
        recorded = []
        if decision.recorded_rows:
            recorded = record_rows(session, self.config, record, decision.recorded_rows, received_at, now)
        if decision.outcome == Outcome.QUARANTINED:
            held = store.hold(session, record.id, decision.reason, decision.sender_schools, now)
            if inbound.answer:  # imported history: held in `quarantine list`, no notice for each one
                self.responder.tell_operator_of_quarantine(session, mailbox, record, msg, decision, held,
                                                           received_at, now)
        if decision.reply_cap is not None:
            cap = cap_description(decision.reply_cap, self.reply_caps, mailbox.name)
            log.warning("%s: no reply to message %s from %s", cap, msg.message_id, msg.from_addr)
        reply = None
        withheld = self._reply_withheld(inbound, now) if decision.reply is not None else None
        if withheld:
            log.info("no reply to message %s from %s: %s", msg.message_id, msg.from_addr, withheld)
        elif decision.reply is not None:
            reply, queued = self.responder.reply(session, mailbox, record, msg, decision, roster, recorded,
                                                 received_at, now)
            if queued is not None:
                self._replies_since(session, start_of_day(now, self.config.timezone)).add(
                    queued.kind, queued.recipient, record.sender, queued.mailbox, queued.created_at)
        return Result.of(inbound.label, inbound.mailbox, msg.message_id, msg.from_addr, decision, reply)

    def _reply_withheld(self, inbound: Inbound, now: datetime) -> str | None:
        """Why a message gets no automatic reply although its outcome has one (SPEC 5)."""
        if not inbound.answer:
            return "history imported on purpose (poll --since without --reply, or first_poll_since)"
        return withheld_because_old(inbound.arrived_at, now, self.config.replies.reply_max_age_days)

    # -- failures --------------------------------------------------------------------------------
    def _fail(self, session: Session, inbound: Inbound, record_pk: int, exc: Exception) -> Result:
        """Record the failure: the message is retried until `max_attempts`, then the operator is told."""
        record = session.get(Message, record_pk)
        result = self._failure(inbound, record, exc)
        record.outcome = Outcome.FAILED
        record.last_error = result.errors[0]
        if record.attempts >= self.config.limits.max_attempts:
            self.responder.notify_failure(session, inbound, record)
        return result

    @staticmethod
    def _failure(inbound: Inbound, record: Message, exc: Exception) -> Result:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        trace = "".join(traceback.format_exception(exc, limit=6)) if exc.__traceback__ else ""
        log.error("failed mailbox=%s message=%s: %s\n%s", inbound.mailbox, inbound.label, detail, trace)
        return Result(inbound.label, Outcome.FAILED, record.message_id, inbound.mailbox, record.sender,
                      errors=[detail])
