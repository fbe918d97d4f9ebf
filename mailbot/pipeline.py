"""The ingest pipeline: one message in, one outcome out (SPEC 3-4).

    archive → parse → classify → extract → interpret → identify → date → decide → store + respond

Each stage is a small function below or in its own module; `STAGES` names them in order for
readers of the code and the logs. Outcomes are decided here and nowhere else, and the decision,
the stored rows and the reply it causes are committed in one transaction.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from mailbot import classify, store
from mailbot.archive import archive_raw, sha256_hex
from mailbot.config import Config
from mailbot.db.models import Message
from mailbot.errors import WorkerFailure
from mailbot.identify import drop_repeated_rows, identify_rows
from mailbot.isolation import Extracted
from mailbot.mail.parse import parse_message
from mailbot.model import Attachment, ParsedMessage, RawTable, RowResult
from mailbot.months import month_of
from mailbot.responses import Responder
from mailbot.rows import interpret_row
from mailbot.schools import Roster
from mailbot.submissions import record_rows

log = logging.getLogger(__name__)

STAGES = ("archive", "parse", "classify", "extract", "interpret", "identify", "date", "decide", "store+respond")

# Attachment kinds that are not an attempt at sending the table (a signature logo, a photo).
NOT_TABLE_KINDS = {"image", "pdf", "unknown", "empty", "rtf"}
MAX_ATTACHMENTS = 20


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
    def __init__(self, config: Config, sessions: sessionmaker[Session], reader, clock):
        self.config = config
        self.sessions = sessions
        self.reader = reader  # TableReaderPool or InlineReader
        self.clock = clock  # () -> aware datetime
        self.responder = Responder(config)
        self.own_addresses = {mb.address for mb in config.mailboxes}

    # -- the one entry point -------------------------------------------------------------------
    def process(self, inbound: Inbound, trusted_schools: list[str] | None = None) -> dict:
        """Process one message and return its `ingest --json` object. Never raises for bad input;
        a bug or a timeout gives the outcome `failed` (retried a bounded number of times)."""
        now = self.clock()
        record_pk, duplicate_of = self._archive(inbound, now)
        if duplicate_of is not None:
            return duplicate_of
        try:
            return self._interpret(inbound, record_pk, now, trusted_schools)
        except Exception as exc:  # noqa: BLE001 - the one place a broken message is caught
            return self._fail(inbound, record_pk, exc)

    def reprocess(self, inbound: Inbound, record_pk: int, trusted_schools: list[str]) -> dict:
        """Run an archived message again as if these schools had sent it (an approved quarantine)."""
        try:
            return self._interpret(inbound, record_pk, self.clock(), trusted_schools)
        except Exception as exc:  # noqa: BLE001
            return self._fail(inbound, record_pk, exc)

    # -- stage: archive ------------------------------------------------------------------------
    def _archive(self, inbound: Inbound, now: datetime) -> tuple[int, dict | None]:
        digest = sha256_hex(inbound.raw)
        _, relative = archive_raw(self.config.archive_dir, inbound.raw, digest)
        with self.sessions.begin() as session:
            record = store.find_by_location(session, inbound.mailbox, inbound.folder, inbound.uidvalidity,
                                            inbound.uid)
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

    # -- stages: parse … decide ----------------------------------------------------------------
    def _interpret(self, inbound: Inbound, record_pk: int, now: datetime, trusted_schools: list[str] | None) -> dict:
        too_big = len(inbound.raw) > self.config.limits.max_message_bytes
        # An oversized message is answered from its headers alone: its body is never parsed.
        msg = parse_message(_headers_only(inbound.raw) if too_big else inbound.raw,
                            default_tz=self.config.timezone)
        received_at = msg.date or msg.received_date or now
        with self.sessions.begin() as session:
            record = session.get(Message, record_pk)
            record.message_id, record.sender, record.subject = msg.message_id, msg.from_addr, msg.subject[:2000]
            record.date, record.received_at = msg.date, received_at
            twin = store.find_processed_twin(session, msg.message_id, record.sha256, record.id)
            if twin is not None and trusted_schools is None:
                record.outcome = "duplicate"
                record.result = self._duplicate_result(inbound, twin)
                return record.result
            roster = Roster(self.config.schools, store.known_senders(session))
            our_ids = store.our_message_ids(session, msg.in_reply_to + msg.references)

        if too_big:
            decision = self._oversized(inbound, msg, roster, trusted_schools)
        else:
            decision = self._decide(inbound, msg, roster, received_at, our_ids, trusted_schools)
        with self.sessions.begin() as session:
            record = session.get(Message, record_pk)
            result = self._store_and_respond(session, inbound, record, msg, decision, roster, received_at, now)
        log.info("%s mailbox=%s message=%s sender=%s schools=%s rows=%d %s", result["outcome"], inbound.mailbox,
                 msg.message_id, msg.from_addr, ",".join(sorted({r.school for r in decision.rows if r.school})) or "-",
                 len(decision.rows), decision.reason)
        return result

    def _decide(self, inbound: Inbound, msg: ParsedMessage, roster: Roster, received_at: datetime,
                our_ids: set[str], trusted_schools: list[str] | None) -> Decision:
        reason = classify.automatic_reason(msg) or classify.own_mail_reason(msg, self.own_addresses)
        if reason:
            return Decision("ignored", reason=reason)

        sender_schools = trusted_schools if trusted_schools is not None else roster.schools_of_sender(msg.from_addr)
        trusted = bool(sender_schools) and (trusted_schools is not None or not msg.auth_failed)
        if not trusted and not msg.attachments:
            return Decision("ignored", reason="unknown sender, nothing attached")

        extracted, problems = self._extract(msg.attachments)
        tables = [t for ex in extracted for t in ex.tables]
        rows = self._rows(tables, msg, received_at, roster, sender_schools)

        if not trusted:
            candidates = sorted({r.school for r in rows if r.school})
            if not any(t.rows for t in tables):
                return Decision("ignored", reason="unknown sender, no table")
            why = "forged sender (SPF/DKIM fail)" if msg.auth_failed and sender_schools else "sender not in the roster"
            return Decision("quarantined", rows=rows, reason=why, sender_schools=candidates)

        attempt = (any(t.rows for t in tables) or classify.mentions_submission(msg)
                   or classify.replies_to_us(msg, our_ids) or any(ex.tables for ex in extracted))
        if not attempt:
            return Decision("ignored", reason="registered sender, not about the report")

        rows = drop_repeated_rows(rows)
        if any(r.ok for r in rows):
            return Decision("accepted", rows=rows, errors=problems, reason="", sender_schools=sender_schools)
        errors = list(problems)
        if not rows:
            errors += self._why_nothing(msg, extracted, tables)
        return Decision("rejected", rows=rows, errors=errors, sender_schools=sender_schools,
                        reason="nothing valid to record")

    def _oversized(self, inbound: Inbound, msg: ParsedMessage, roster: Roster,
                   trusted_schools: list[str] | None) -> Decision:
        reason = classify.automatic_reason(msg) or classify.own_mail_reason(msg, self.own_addresses)
        schools = trusted_schools or roster.schools_of_sender(msg.from_addr)
        if reason or not schools or msg.auth_failed:
            return Decision("ignored", reason=reason or "oversized message from an unknown sender")
        size_mb = len(inbound.raw) / 1024 / 1024
        limit_mb = self.config.limits.max_message_bytes / 1024 / 1024
        return Decision("rejected", sender_schools=schools, reason="message over the size limit", errors=[
            f"邮件大小约 {size_mb:.0f} MB，超过系统可接收的 {limit_mb:.0f} MB。汇总表文件通常只有几十 KB，"
            "请只附上填写好的表格文件（不要附照片或扫描件）后重新发送。"])

    def _extract(self, attachments: list[Attachment]) -> tuple[list[Extracted], list[str]]:
        """Read every attachment that might hold a table, in the isolated readers."""
        candidates = [a for a in attachments if not _is_picture(a)][:MAX_ATTACHMENTS]
        pictures = [a for a in attachments if _is_picture(a)]
        results = self.reader.extract_many(candidates) if candidates else []
        extracted, problems = [], []
        for att, result in zip(candidates, results):
            if isinstance(result, WorkerFailure):
                raise result  # mailbot broke or timed out: `failed`, retried
            extracted.append(result)
            if result.unreadable is not None and result.unreadable.kind not in NOT_TABLE_KINDS:
                problems.append(result.unreadable.message)
        extracted += [Extracted(a.filename, [], None) for a in pictures]
        return extracted, problems

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

    def _why_nothing(self, msg: ParsedMessage, extracted: list[Extracted], tables: list[RawTable]) -> list[str]:
        """The plain-Chinese reasons a submission attempt had nothing to record."""
        if tables:
            return ["表格中没有找到填写了数据的学校行（表头下方为空）。请在表头下方逐行填写本校数据后重新发送。"]
        if msg.big_attachment_links:
            return ["邮件中的表格是以“超大附件”（下载链接）方式发送的，系统无法自动下载。"
                    "请将表格文件直接作为普通附件添加到邮件中重新发送。"]
        unreadable = [ex.unreadable for ex in extracted if ex.unreadable is not None]
        pictures = [ex for ex in extracted if ex.unreadable is None and not ex.tables]
        reasons = [u.message for u in unreadable if u.kind not in NOT_TABLE_KINDS]
        if reasons:
            return reasons
        if unreadable or pictures:
            names = "、".join(f"《{ex.attachment_name}》" for ex in extracted if ex.attachment_name) or "附件"
            return [f"附件{names}不是可读取的表格文件（可能是照片、扫描件或 PDF）。"
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

    def _fail(self, inbound: Inbound, record_pk: int, exc: Exception) -> dict:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.error("failed mailbox=%s message=%s: %s\n%s", inbound.mailbox, inbound.label, detail,
                  traceback.format_exc(limit=6))
        with self.sessions.begin() as session:
            record = session.get(Message, record_pk)
            record.outcome = "failed"
            record.last_error = detail
            if record.attempts >= self.config.limits.max_attempts:
                self.responder.notify_failure(session, inbound, record)
            message_id, sender = record.message_id, record.sender
        return {"file": inbound.label, "message_id": message_id, "mailbox": inbound.mailbox, "sender": sender,
                "outcome": "failed", "month": None, "rows": [], "errors": [detail], "warnings": [], "reply": None}


def _headers_only(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    return raw[: end if end >= 0 else 65536] + b"\r\n\r\n"


def _is_picture(att: Attachment) -> bool:
    name = (att.filename or "").lower()
    return att.content_type.startswith("image/") or name.endswith((".jpg", ".jpeg", ".png", ".gif", ".bmp", ".heic"))


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
