"""Rules that decide what kind of mail a message is (SPEC 4). Each is a pure function of the
parsed message and says why it fired. Automatic mail has its own module, `rules.automatic`."""

from __future__ import annotations

from typing import Protocol

from mailbot.rules.model import ParsedMessage

SUBMISSION_WORDS = ("课后服务", "汇总表", "2+N", "2+n", "２+N", "2＋N")


class OwnMailFacts(Protocol):
    """What `own_mail_reason` looks at, as ParsedMessage and RemoteMessage both carry it."""

    mailbot_marker: bool
    from_addr: str


def own_mail_reason(msg: OwnMailFacts, own_addresses: set[str]) -> str | None:
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
