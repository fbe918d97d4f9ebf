"""What mailbot answers (SPEC 4): receipts and rejections to schools, notices to the operator.

Renders only: whether to answer, to whom, and every warning are in the `Decision`
(mailbot.rules.decide). Builds the template contexts from it and queues the mail in the caller's
transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from mailbot.outbound.compose import compose
from mailbot.config import Config, MailboxConfig
from mailbot.db.models import Message, Outbox, Quarantine
from mailbot.rules.labels import SECTION_LABELS
from mailbot.rules.month import month_label
from mailbot.outbound.outbox import queue_mail
from mailbot.rules.outcome import Decision, Hold, HoldCause
from mailbot.rules.roster import Roster
from mailbot.timeutil import deadline_of, label_date, label_datetime

log = logging.getLogger(__name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def section_label(mailbox: MailboxConfig) -> str:
    return "、".join(SECTION_LABELS[level] for level in mailbox.levels)


# What the operator's notice says for each cause of a quarantine.
HOLD_WORDS = {
    HoldCause.UNKNOWN_SENDER: "发件邮箱不在学校名册中（可能是学校老师的个人邮箱，也可能不是学校）。",
    HoldCause.FORGED: "发件人未通过邮件服务器的身份验证（SPF/DKIM），可能是冒用学校邮箱发送的。",
    HoldCause.UNVERIFIED: "发件邮箱虽在学校名册中，但未能确认邮件确实来自该邮箱（可能是冒用学校邮箱发送的）。",
}
OVERSIZED_NOTE = "该邮件超过系统可接收的大小，只读取了邮件头；批准后，学校会收到超过大小限制的退回说明。"


def quarantine_reason(hold: Hold) -> str:
    """The notice's words for why the message is held; an unverified sender names the failed check."""
    words = HOLD_WORDS[hold.cause]
    if hold.cause == HoldCause.UNVERIFIED:
        words += f"未通过的验证：{hold.check}。"
    return words + OVERSIZED_NOTE if hold.oversized else words


class Responder:
    def __init__(self, config: Config):
        self.config = config
        self._templates: dict[tuple, bytes] = {}

    def template(self, school: str | None, level: str | None, month: str | None) -> tuple[str, bytes, str]:
        from mailbot.outbound.prefilled import build_template, template_filename  # openpyxl: only when needed

        key = (school, level, month)
        if key not in self._templates:  # deterministic output: cache it, rejections are frequent
            mailbox = self.config.mailbox_for_level(level) if level else self.config.mailboxes[0]
            self._templates[key] = build_template(school, level, month,
                                                  deadline_day=self.config.schedule.deadline_day,
                                                  mailbox_address=mailbox.address)
        return template_filename(school, month), self._templates[key], XLSX_TYPE

    def reply(self, session: Session, mailbox: MailboxConfig, record: Message, msg, decision: Decision,
              roster: Roster, recorded, received_at: datetime, now: datetime) -> tuple[dict, Outbox | None]:
        """Render the answer the decision asks for and queue it; return the result's `reply` object
        and the outbox row (None when one with its key was queued before)."""
        kind, to = decision.reply.kind, decision.reply.to
        if kind == "receipt":
            context, attachments = self._receipt_context(mailbox, decision, recorded, received_at), []
        else:
            context, attachments = self._rejection(mailbox, decision, roster, received_at)
        composed = compose(kind, context)
        queued = queue_mail(session, key=f"reply:{record.id}", kind=kind, mailbox=mailbox, to=to, composed=composed,
                   now=now, attachments=attachments, in_reply_to=msg.message_id,
                   references=[*msg.references, msg.message_id] if msg.message_id else msg.references,
                   message_pk=record.id, from_name=f"安溪县教育局{section_label(mailbox)}")
        return {"to": to, "subject": composed.subject}, queued

    # -- contexts --------------------------------------------------------------------------------
    def _common(self, mailbox: MailboxConfig, month: str | None) -> dict:
        deadline = deadline_of(month, self.config.schedule.deadline_day, self.config.timezone) if month else None
        return {"mailbox_label": section_label(mailbox), "month_label": month_label(month) if month else "",
                "deadline_label": label_date(deadline) if deadline else f"每月{self.config.schedule.deadline_day}日"}

    def _receipt_context(self, mailbox: MailboxConfig, decision: Decision, recorded, received_at) -> dict:
        months = sorted({r.row.month for r in recorded})
        ctx = self._common(mailbox, months[0])
        if len(months) > 1:
            ctx["month_label"] = "、".join(month_label(m) for m in months)
        ctx.update({
            "school_names": sorted({r.row.school for r in recorded}, key=[r.row.school for r in recorded].index),
            "rows": [{"school": r.row.school, "schools_count": r.row.schools_count, "enrolled": r.row.enrolled,
                      "participating": r.row.participating, "two_plus_n": bool(r.row.two_plus_n),
                      "services": r.row.services, "n": r.row.n, "sheet": r.row.sheet,
                      "row_number": r.row.row_number, "month_label": month_label(r.row.month)} for r in recorded],
            "rejected_rows": [{"school_as_written": r.school_as_written, "sheet": r.sheet,
                               "row_number": r.row_number, "errors": r.errors} for r in decision.rows if not r.ok],
            "warnings": list(decision.errors) + [w for r in decision.rows if r.ok for w in r.warnings],
            "late": any(r.late for r in recorded),
            "received_label": label_datetime(received_at, self.config.timezone),
            "replaces": [{"school": r.row.school,
                          "received_label": label_datetime(r.replaced.received_at, self.config.timezone)}
                         for r in recorded if r.replaced is not None],
            "wrong_mailbox_note": decision.wrong_mailbox_note,
        })
        return ctx

    def _rejection(self, mailbox: MailboxConfig, decision: Decision, roster: Roster,
                   received_at: datetime) -> tuple[dict, list]:
        months = [r.month for r in decision.rows if r.month]
        local = received_at.astimezone(self.config.timezone)
        month = months[0] if months else f"{local.year:04d}-{local.month:02d}"
        ctx = self._common(mailbox, month)
        problems = list(decision.errors) + [e for r in decision.rows for e in r.errors]
        schools = decision.sender_schools[:5]
        ctx.update({"school_names": schools, "problems": problems or ["表格中没有可登记的数据。"]})
        attachments = [self.template(name, roster.by_name[name].level, month) for name in schools
                       if name in roster.by_name] or [self.template(None, mailbox.levels[0], month)]
        return ctx, attachments

    # -- operator notices --------------------------------------------------------------------------
    def tell_operator_of_quarantine(self, session: Session, mailbox: MailboxConfig, record: Message, msg,
                                    decision: Decision, q: Quarantine, received_at: datetime, now: datetime) -> None:
        if not self.config.operator_email:
            log.warning("quarantined message %s from %s: no [operator] email to tell", msg.message_id, msg.from_addr)
            return
        composed = compose("operator_quarantine", {
            "sender": msg.from_addr, "subject": msg.subject, "quarantine_id": q.id,
            "reason": quarantine_reason(decision.hold),
            "received_label": label_datetime(received_at, self.config.timezone),
            "candidate_schools": decision.sender_schools})
        queue_mail(session, key=f"operator-quarantine:{record.id}", kind="operator_quarantine", mailbox=mailbox,
                   to=[self.config.operator_email], composed=composed, now=now, auto_submitted="auto-generated",
                   message_pk=record.id, from_name="mailbot")

    def notify_failure(self, session: Session, inbound, record: Message) -> None:
        if not self.config.operator_email:
            return
        mailbox = self.config.mailbox(inbound.mailbox)
        composed = compose("operator_failure", {
            "mailbox": inbound.mailbox, "message_id": record.message_id or "", "sender": record.sender,
            "subject": record.subject, "error": record.last_error or "", "attempts": record.attempts})
        queue_mail(session, key=f"operator-failure:{record.id}", kind="operator_failure", mailbox=mailbox,
                   to=[self.config.operator_email], composed=composed, now=record.read_at,
                   auto_submitted="auto-generated", message_pk=record.id, from_name="mailbot")
