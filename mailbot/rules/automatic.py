"""The automatic-mail rule (SPEC 4, RFC 3834): auto-replies, bounces, lists and mail systems.

Such mail is never answered and never taken as a submission. One rule serves both places that
judge it: IMAP triage, from the few headers fetched before download (`HEADERS`), and the pipeline,
from the parsed message. Both hand over the same facts (`AutomaticFacts`); what triage cannot see
(a multipart/report body) it leaves to the pipeline, which then decides the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoreply-from")
# Every header the rule reads, lower-case: what IMAP triage fetches before deciding.
HEADERS = ("auto-submitted", "precedence", *AUTOREPLY_HEADERS, "x-auto-response-suppress", "list-id")
AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_MAIL_SYSTEM_SENDER = re.compile(r"^(mailer-daemon|postmaster|no-?reply|noreply|bounce[s]?)([+@-]|$)", re.I)


class AutomaticFacts(Protocol):
    """What the rule looks at, as ParsedMessage and RemoteMessage both carry it."""

    auto_submitted: str | None  # first token of Auto-Submitted, lower-case (`header_token`)
    precedence: str | None  # likewise for Precedence
    x_autoreply: bool  # `is_autoreply(headers)`
    list_id: bool  # a List-Id header is present
    is_report: bool  # multipart/report: a bounce or a read receipt
    from_addr: str  # lower-case address, "" when absent


def header_token(value: str | None) -> str | None:
    """`Auto-Replied; owner=...` gives "auto-replied"; None when absent or empty."""
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def is_autoreply(headers: Mapping[str, Sequence[str]]) -> bool:
    """An auto-responder's own header, or Exchange's X-Auto-Response-Suppress: All.
    `headers` maps lower-case names to their values."""
    if any(name in headers for name in AUTOREPLY_HEADERS):
        return True
    return any("all" in value.lower() for value in headers.get("x-auto-response-suppress", []))


def automatic_reason(mail: AutomaticFacts) -> str | None:
    """Why this message is automatic mail, or None."""
    if mail.auto_submitted and mail.auto_submitted.strip().lower() != "no":
        return f"Auto-Submitted: {mail.auto_submitted}"
    if mail.precedence and mail.precedence.strip().lower() in AUTOMATIC_PRECEDENCE:
        return f"Precedence: {mail.precedence}"
    if mail.x_autoreply:
        return "X-Autoreply header"
    if mail.list_id:
        return "List-Id header"
    if mail.is_report:
        return "multipart/report (a bounce or receipt)"
    if _MAIL_SYSTEM_SENDER.match(mail.from_addr or ""):
        return f"sender {mail.from_addr} is a mail system"
    if not mail.from_addr:
        return "no From address"
    return None
