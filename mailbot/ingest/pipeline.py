"""The ingest pipeline: one message in, one outcome out (SPEC 3-4).

    archive → parse → classify → extract → interpret → identify → date → decide → store + respond

Each stage is a small function below or in its own module; `STAGES` names them in order. Parsing
and extraction touch the untrusted bytes, so they run in the isolated workers
(`mailbot.ingest.analysis.analyse`); everything after them is decided here from plain data. Outcomes are
decided here and nowhere else, and the decision, the stored rows and the reply it causes are
committed in one transaction.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator

from sqlalchemy.orm import Session, sessionmaker

from mailbot.rules import classify
from mailbot.rules.automatic import automatic_reason
from mailbot.db import store
from mailbot.ingest.analysis import Analysis, analyse
from mailbot.ingest.archive import Archive, sha256_hex
from mailbot.config import Config
from mailbot.db.models import Message
from mailbot.errors import WorkerFailure
from mailbot.rules.identify import drop_repeated_rows, identify_rows
from mailbot.rules.model import ParsedMessage, RawTable, RowResult
from mailbot.rules.month import month_of
from mailbot.outbound.responses import Responder
from mailbot.rules.rows import interpret_row
from mailbot.rules.roster import Roster
from mailbot.db.submissions import record_rows

log = logging.getLogger(__name__)

STAGES = ("archive", "parse", "classify", "extract", "interpret", "identify", "date", "decide", "store+respond")

# Attachment kinds that are not an attempt at sending the table (a signature logo, a photo).
NOT_TABLE_KINDS = {"image", "pdf", "unknown", "empty", "rtf"}


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


@dataclass
class Decision:
    outcome: str
    rows: list[RowResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # message-level problems, Chinese
    warnings: list[str] = field(default_factory=list)
    reason: str = ""  # English, for the log
    sender_schools: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(self, config: Config, sessions: sessionmaker[Session], runner, clock):
        self.config = config
        self.sessions = sessions
        self.runner = runner  # WorkerPool, or InlineRunner in unit tests
        self.clock = clock  # () -> aware datetime
        self.responder = Responder(config)
        self.own_addresses = {mb.address for mb in config.mailboxes}
        self._roster: tuple[dict, Roster] | None = None
        self._roster_stale = True
        self.archive = Archive(config.archive_dir)
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
    def process(self, inbound: Inbound, trusted_schools: list[str] | None = None) -> dict:
        """Process one message and return its `ingest --json` object. Never raises for bad input;
        a bug or a timeout gives the outcome `failed` (retried a bounded number of times)."""
        return next(self.process_stream([inbound], trusted_schools))

    def process_stream(self, inbounds: Iterable[Inbound], trusted_schools: list[str] | None = None
                       ) -> Iterator[dict]:
        """Process messages in order, one result each. Each is archived before the workers parse
        it; the workers run ahead on the next messages while this one is stored.

        Results are yielded only once committed. Commits are grouped (up to `batch_size` messages
        or `batch_seconds`): a crash before a commit loses nothing, since an uncommitted message
        is simply processed again, and each message has its own savepoint so one that breaks
        cannot undo the others."""
        archived: deque[tuple[Inbound, int, dict | None, datetime]] = deque()
        session = self.sessions()

        def jobs():
            for inbound in inbounds:
                now = self.clock()
                record_pk, duplicate = self._archive(session, inbound, now)
                archived.append((inbound, record_pk, duplicate, now))
                yield None if duplicate else (inbound.raw, self.config.limits, self.config.timezone.key)

        done: list[dict] = []
        last_commit = time.monotonic()
        try:
            for analysis in self.runner.map_ordered(analyse, jobs()):
                inbound, record_pk, duplicate, now = archived.popleft()
                if duplicate is not None:
                    done.append(duplicate)
                elif isinstance(analysis, WorkerFailure):
                    done.append(self._fail(session, inbound, record_pk, analysis))
                else:
                    try:
                        with session.begin_nested():
                            done.append(self._conclude(session, inbound, record_pk, analysis, now,
                                                       trusted_schools))
                    except Exception as exc:  # noqa: BLE001 - the one place a broken message is caught
                        done.append(self._fail(session, inbound, record_pk, exc))
                if len(done) >= self.batch_size or time.monotonic() - last_commit >= self.batch_seconds:
                    self.archive.sync()
                    session.commit()
                    self._roster_stale = True
                    last_commit = time.monotonic()
                    yield from done
                    done.clear()
            self.archive.sync()
            session.commit()
            self._roster_stale = True
            yield from done
        finally:
            session.close()

    def reprocess(self, inbound: Inbound, record_pk: int, trusted_schools: list[str]) -> dict:
        """Run an archived message again as if these schools had sent it (an approved quarantine)."""
        (analysis,) = self.runner.map_ordered(analyse, [(inbound.raw, self.config.limits, self.config.timezone.key)])
        with self.sessions() as session:
            if isinstance(analysis, WorkerFailure):
                result = self._fail(session, inbound, record_pk, analysis)
            else:
                try:
                    with session.begin_nested():
                        result = self._conclude(session, inbound, record_pk, analysis, self.clock(),
                                                trusted_schools)
                except Exception as exc:  # noqa: BLE001
                    result = self._fail(session, inbound, record_pk, exc)
            self.archive.sync()
            session.commit()
        return result

    # -- stage: archive ------------------------------------------------------------------------
    def _archive(self, session: Session, inbound: Inbound, now: datetime) -> tuple[int, dict | None]:
        digest = sha256_hex(inbound.raw)
        _, relative = self.archive.store(inbound.raw, digest)
        record = store.find_by_location(session, inbound.mailbox, inbound.folder, inbound.uidvalidity, inbound.uid)
        if record is not None and record.outcome in store.FINAL_OUTCOMES:
            return record.id, self._duplicate_result(inbound, record)
        if record is None:
            record = Message(mailbox=inbound.mailbox, folder=inbound.folder, uidvalidity=inbound.uidvalidity,
                             uid=inbound.uid, source=inbound.source, sha256=digest, archive_path=relative,
                             size=len(inbound.raw), received_at=now, read_at=now, attempts=0,
                             errors=[], warnings=[])
            session.add(record)
        record.attempts += 1
        session.flush()
        return record.id, None

    def _duplicate_result(self, inbound: Inbound, twin: Message) -> dict:
        log.info("duplicate mailbox=%s message=%s of message #%d", inbound.mailbox, twin.message_id, twin.id)
        return {"file": inbound.label, "message_id": twin.message_id, "mailbox": inbound.mailbox,
                "sender": twin.sender, "outcome": "duplicate", "month": None, "rows": [], "errors": [],
                "warnings": [], "reply": None}

    def _roster_for(self, session: Session) -> Roster:
        """The roster plus the senders the operator approved: read once per transaction, rebuilt
        only when those change."""
        if self._roster is None or self._roster_stale:
            extra = store.known_senders(session)
            if self._roster is None or self._roster[0] != extra:
                self._roster = (extra, Roster(self.config.schools, extra))
            self._roster_stale = False
        return self._roster[1]

    # -- stages: classify … store + respond, one transaction ----------------------------------------
    def _conclude(self, session: Session, inbound: Inbound, record_pk: int, analysis: Analysis, now: datetime,
                  trusted_schools: list[str] | None) -> dict:
        msg = analysis.message
        received_at = msg.date or msg.received_date or now
        record = session.get(Message, record_pk)
        record.message_id, record.sender, record.subject = msg.message_id, msg.from_addr, msg.subject[:2000]
        record.date, record.received_at = msg.date, received_at
        twin = store.find_processed_twin(session, msg.message_id, record.sha256, record.id)
        if twin is not None and trusted_schools is None:
            record.outcome = "duplicate"
            record.result = self._duplicate_result(inbound, twin)
            return record.result
        roster = self._roster_for(session)
        automatic = automatic_reason(msg) or classify.own_mail_reason(msg, self.own_addresses)
        if automatic:
            decision = Decision("ignored", reason=automatic)
        elif analysis.oversized:
            decision = self._oversized(inbound, msg, roster, trusted_schools)
        else:
            our_ids = store.our_message_ids(session, msg.in_reply_to + msg.references)
            decision = self._decide(msg, analysis, roster, received_at, our_ids, trusted_schools)
        result = self._store_and_respond(session, inbound, record, msg, decision, roster, received_at, now)
        log.info("%s mailbox=%s message=%s sender=%s schools=%s rows=%d %s", result["outcome"], inbound.mailbox,
                 msg.message_id, msg.from_addr, ",".join(sorted({r.school for r in decision.rows if r.school})) or "-",
                 len(decision.rows), decision.reason)
        return result

    def _decide(self, msg: ParsedMessage, analysis: Analysis, roster: Roster, received_at: datetime,
                our_ids: set[str], trusted_schools: list[str] | None) -> Decision:
        sender_schools = trusted_schools if trusted_schools is not None else roster.schools_of_sender(msg.from_addr)
        trusted = bool(sender_schools) and (trusted_schools is not None or not msg.auth_failed)
        if not trusted and not msg.attachments:
            return Decision("ignored", reason="unknown sender, nothing attached")

        extracted = analysis.extracted
        problems = [ex.unreadable.message for ex in extracted
                    if ex.unreadable is not None and ex.unreadable.kind not in NOT_TABLE_KINDS]
        tables = [t for ex in extracted for t in ex.tables]
        rows = self._rows(tables, msg, received_at, roster, sender_schools)

        if not trusted:
            candidates = sorted({r.school for r in rows if r.school})
            if not any(t.rows for t in tables):
                return Decision("ignored", reason="unknown sender, no table")
            why = "forged sender (SPF/DKIM fail)" if msg.auth_failed and sender_schools else "sender not in the roster"
            return Decision("quarantined", rows=rows, reason=why, sender_schools=candidates)

        attempt = (bool(tables) or classify.mentions_submission(msg) or classify.replies_to_us(msg, our_ids))
        if not attempt:
            return Decision("ignored", reason="registered sender, not about the report")

        rows = drop_repeated_rows(rows)
        if any(r.ok for r in rows):
            return Decision("accepted", rows=rows, errors=problems, sender_schools=sender_schools)
        errors = list(problems)
        if not rows:
            errors += self._why_nothing(msg, analysis, tables)
        return Decision("rejected", rows=rows, errors=errors, sender_schools=sender_schools,
                        reason="nothing valid to record")

    def _oversized(self, inbound: Inbound, msg: ParsedMessage, roster: Roster,
                   trusted_schools: list[str] | None) -> Decision:
        """Answered from the headers alone: the body of an oversized message is never parsed."""
        schools = trusted_schools or roster.schools_of_sender(msg.from_addr)
        if not schools or msg.auth_failed:
            return Decision("ignored", reason="oversized message from an unknown sender")
        size_mb = len(inbound.raw) / 1024 / 1024
        limit_mb = self.config.limits.max_message_bytes / 1024 / 1024
        return Decision("rejected", sender_schools=schools, reason="message over the size limit", errors=[
            f"邮件大小约 {size_mb:.0f} MB，超过系统可接收的 {limit_mb:.0f} MB。汇总表文件通常只有几十 KB，"
            "请只附上填写好的表格文件（不要附照片或扫描件）后重新发送。"])

    def _rows(self, tables: list[RawTable], msg: ParsedMessage, received_at: datetime, roster: Roster,
              sender_schools: list[str]) -> list[RowResult]:
        local_sent = received_at.astimezone(self.config.timezone)
        rows: list[RowResult] = []
        for table in tables:
            month = month_of([table.title_text, msg.subject, table.file], local_sent)
            table_rows = [interpret_row(raw, table.layout) for raw in table.rows]
            for row in table_rows:
                row.month = month
            identify_rows(table_rows, sender_schools, roster, len(table.rows))
            rows.extend(table_rows)
        return rows

    def _why_nothing(self, msg: ParsedMessage, analysis: Analysis, tables: list[RawTable]) -> list[str]:
        """The plain-Chinese reasons a submission attempt had nothing to record."""
        if tables:
            return ["表格中没有找到填写了数据的学校行（表头下方为空）。请在表头下方逐行填写本校数据后重新发送。"]
        if msg.big_attachment_links:
            return ["邮件中的表格是以“超大附件”（下载链接）方式发送的，系统无法自动下载。"
                    "请将表格文件直接作为普通附件添加到邮件中重新发送。"]
        unreadable = [ex.unreadable for ex in analysis.extracted if ex.unreadable is not None]
        reasons = [u.message for u in unreadable if u.kind not in NOT_TABLE_KINDS]
        if reasons:
            return reasons
        if unreadable or analysis.pictures:
            names = [ex.attachment_name for ex in analysis.extracted] + analysis.pictures
            shown = "、".join(f"《{n}》" for n in names if n) or ""
            return [f"附件{shown}不是可读取的表格文件（可能是照片、扫描件或 PDF）。"
                    "请发送填写好的电子表格本身（.xlsx、.xls 或 .docx），盖章扫描件可另行附上。"]
        if msg.attachments:
            return ["附件中没有找到《城区义务教育阶段学校课后服务开展情况汇总表》的表头"
                    "（需包含“学校名称”“在校学生数”“参与课后服务学生数”等列）。请使用附带的模板填写后重新发送。"]
        return ["邮件中没有附件。请将填写好的汇总表（.xlsx、.xls 或 .docx）作为附件重新发送。"]

    # -- stage: store + respond (one transaction) ------------------------------------------------
    def _store_and_respond(self, session: Session, inbound: Inbound, record: Message, msg: ParsedMessage,
                           decision: Decision, roster: Roster, received_at: datetime, now: datetime) -> dict:
        recorded = []
        if decision.outcome == "accepted":
            recorded = record_rows(session, self.config, record, [r for r in decision.rows if r.ok],
                                   received_at, now)
        reply = self.responder.respond(session, inbound, record, msg, decision, roster, recorded, received_at, now)
        record.outcome = decision.outcome
        record.errors = decision.errors + [e for r in decision.rows for e in r.errors]
        record.warnings = decision.warnings + [w for r in decision.rows for w in r.warnings]
        record.last_error = None
        record.result = _result_json(inbound, msg, decision, reply)
        return record.result

    def _fail(self, session: Session, inbound: Inbound, record_pk: int, exc: Exception) -> dict:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        trace = "".join(traceback.format_exception(exc, limit=6)) if exc.__traceback__ else ""
        log.error("failed mailbox=%s message=%s: %s\n%s", inbound.mailbox, inbound.label, detail, trace)
        record = session.get(Message, record_pk)
        record.outcome = "failed"
        record.last_error = detail
        if record.attempts >= self.config.limits.max_attempts:
            self.responder.notify_failure(session, inbound, record)
        return {"file": inbound.label, "message_id": record.message_id, "mailbox": inbound.mailbox,
                "sender": record.sender, "outcome": "failed", "month": None, "rows": [], "errors": [detail],
                "warnings": [], "reply": None}


def row_json(row: RowResult) -> dict:
    return {"school": row.school or row.school_as_written, "schools_count": row.schools_count,
            "enrolled": row.enrolled, "participating": row.participating, "two_plus_n": row.two_plus_n,
            "services": row.services, "n": row.n, "month": row.month, "ok": row.ok, "errors": row.errors,
            "warnings": row.warnings}


def _result_json(inbound: Inbound, msg: ParsedMessage, decision: Decision, reply: dict | None) -> dict:
    rows = decision.rows if decision.outcome in ("accepted", "rejected", "quarantined") else []
    ok_rows = [r for r in rows if r.ok]
    return {"file": inbound.label, "message_id": msg.message_id, "mailbox": inbound.mailbox,
            "sender": msg.from_addr, "outcome": decision.outcome,
            "month": ok_rows[0].month if ok_rows and decision.outcome == "accepted" else None,
            "rows": [row_json(r) for r in rows], "errors": decision.errors, "warnings": decision.warnings,
            "reply": reply}
