"""Rules that decide what kind of mail a message is (SPEC 4). Each is a pure function of the
parsed message and says why it fired."""

from __future__ import annotations

import re

from mailbot.rules.model import ParsedMessage

_AUTOMATIC_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|noreply|bounce[s]?)([+@-]|$)", re.I)
SUBMISSION_WORDS = ("课后服务", "汇总表", "2+N", "2+n", "２+N", "2＋N")


def automatic_reason(msg: ParsedMessage) -> str | None:
    """Why this message is automatic mail (auto-reply, bounce, list), or None. RFC 3834: never
    answer it, never take it as a submission."""
    if msg.auto_submitted and msg.auto_submitted.strip().lower() != "no":
        return f"Auto-Submitted: {msg.auto_submitted}"
    if msg.precedence and msg.precedence.strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {msg.precedence}"
    if msg.x_autoreply:
        return "X-Autoreply header"
    if msg.list_id:
        return "List-Id header"
    if msg.is_report:
        return "multipart/report (a bounce or receipt)"
    if _AUTOMATIC_SENDERS.match(msg.from_addr or ""):
        return f"sender {msg.from_addr} is a mail system"
    if not msg.from_addr:
        return "no From address"
    return None


def own_mail_reason(msg: ParsedMessage, own_addresses: set[str]) -> str | None:
    """Mail from mailbot itself (or one of the bureau's own mailboxes) is never processed."""
    if msg.mailbot_marker:
        return "sent by mailbot (X-Mailbot header)"
    if msg.from_addr in own_addresses:
        return f"from our own mailbox {msg.from_addr}"
    return None


def mentions_submission(msg: ParsedMessage) -> bool:
    """Subject, body or an attachment name speaks of the report."""
    texts = [msg.subject, msg.text_body, msg.html_body] + [a.filename or "" for a in msg.attachments]
    return any(word in text for text in texts for word in SUBMISSION_WORDS)


def replies_to_us(msg: ParsedMessage, our_message_ids: set[str]) -> bool:
    return any(mid in our_message_ids for mid in [*msg.in_reply_to, *msg.references])
