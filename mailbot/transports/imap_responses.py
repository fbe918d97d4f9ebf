"""Pure reading of IMAP replies (SPEC 5): what a FETCH says about a message before download.

Nothing here talks to a server: `mailbot.transports.imap` sends the commands and hands the
replies (as imapclient parses them) to these functions, which are tolerant of odd servers. The
automatic-mail facts are read with the same rule the pipeline applies (`rules.automatic`).
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from mailbot.mail import bodystructure
from mailbot.mail.parse import sender_address
from mailbot.mail.structure import MAX_HEADER_BYTES
from mailbot.rules.automatic import HEADERS as AUTOMATIC_HEADERS
from mailbot.rules.automatic import automatic_reason, header_token, is_autoreply

# The headers a description fetches: who, which message, and what the automatic and own-mail
# rules read ("X-Mailbot" marks mail mailbot sent itself).
HEADER_FIELDS = " ".join(("FROM", "MESSAGE-ID", "X-MAILBOT", *(h.upper() for h in AUTOMATIC_HEADERS))).encode()
DESCRIBE_ITEMS = [b"UID", b"RFC822.SIZE", b"FLAGS", b"INTERNALDATE", b"BODYSTRUCTURE",
                  b"BODY.PEEK[HEADER.FIELDS (" + HEADER_FIELDS + b")]"]

# What is read of a message over the size limit: its header section, at most MAX_HEADER_BYTES of it
# (and the empty line that ends it), so a hostile "header" cannot be a download of its own.
HEADER_ITEM = b"BODY.PEEK[HEADER]<0.%d>" % (MAX_HEADER_BYTES + 4)


@dataclass
class RemoteMessage:
    """One message as seen before download."""

    uid: int
    size: int  # RFC822.SIZE
    message_id: str | None  # from the header, without <>
    from_addr: str  # lower-case address from the header, "" when absent
    auto_submitted: str | None  # first token of Auto-Submitted, lower-case (`rules.automatic`)
    has_candidate: bool  # BODYSTRUCTURE shows a part that may hold a table
    flags: tuple[str, ...]  # e.g. ("\\Seen", "$MailbotDone"), as the server reported them
    part_names: tuple[str, ...] = ()  # decoded attachment names, for logs
    precedence: str | None = None
    x_autoreply: bool = False
    list_id: bool = False
    is_report: bool = False  # not judged before download: the pipeline sees the body
    mailbot_marker: bool = False  # carries our own X-Mailbot header
    arrived_at: datetime | None = None  # INTERNALDATE: when it reached the mailbox (SPEC 5: reply age)

    @property
    def automatic(self) -> str | None:
        """Why this is automatic mail (`rules.automatic.automatic_reason`), or None."""
        return automatic_reason(self)


def remote_message(uid: int, item: dict) -> RemoteMessage:
    """Build a RemoteMessage from one imapclient FETCH item (pure; tolerant of odd servers)."""
    header_bytes = b""
    for key, value in item.items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            header_bytes = value
    headers = parse_header_block(header_bytes)
    structure = item.get(b"BODYSTRUCTURE")
    flags = item.get(b"FLAGS")
    return RemoteMessage(
        uid=uid,
        size=int_or(item.get(b"RFC822.SIZE"), 0),
        message_id=message_id_from(_first(headers, "message-id")),
        from_addr=address_from(_first(headers, "from")),
        auto_submitted=header_token(_first(headers, "auto-submitted")),
        has_candidate=bodystructure.has_candidate(structure),
        flags=tuple(text_of(flag) for flag in flags) if isinstance(flags, (tuple, list)) else (),
        part_names=tuple(bodystructure.part_names(structure)),
        precedence=header_token(_first(headers, "precedence")),
        x_autoreply=is_autoreply(headers),
        list_id="list-id" in headers,
        mailbot_marker="x-mailbot" in headers,
        arrived_at=internal_date(item.get(b"INTERNALDATE")),
    )


def header_of(item: dict | None) -> bytes | None:
    """The header section in a FETCH of HEADER_ITEM (the server names it "BODY[HEADER]<0>")."""
    for key, value in (item or {}).items():
        if isinstance(key, bytes) and key.upper().startswith(b"BODY[HEADER]") and isinstance(value, bytes):
            return value
    return None


def internal_date(value: Any) -> datetime | None:
    """INTERNALDATE as an aware datetime. imapclient gives it naive in the machine's local time
    (its normalise_times default), or aware; anything else (an odd server) is unknown."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.astimezone()


def parse_header_block(raw: bytes) -> dict[str, list[str]]:
    """Every value of each header in a header block, keys lower-case, values unfolded."""
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        text = value if isinstance(value, str) else str(value)
        headers.setdefault(name.lower(), []).append(" ".join(text.split()))
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    return (headers.get(name) or [None])[0]


def address_from(value: str | None) -> str:
    """The From address, by the pipeline's own rule (mailbot.mail.parse.sender_address)."""
    return sender_address([value])[1] if value else ""


def message_id_from(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if "<" in value and ">" in value.split("<", 1)[1]:
        value = value.split("<", 1)[1].split(">", 1)[0]
    value = value.strip().strip("<>").strip()
    return value or None


def plan_batches(uids: list[int], sizes: dict[int, int], batch_bytes: int, max_count: int) -> list[list[int]]:
    """Group UIDs, in order, into batches of at most `batch_bytes` (by RFC822.SIZE) and `max_count`."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid in uids:
        size = max(sizes.get(uid, 0), 0)
        if current and (total + size > batch_bytes or len(current) >= max_count):
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches


def is_exists(response: Any) -> bool:
    """An untagged `* n EXISTS` (new mail) among IDLE responses."""
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


def at(value: Any, index: int) -> Any:
    return value[index] if isinstance(value, (tuple, list)) and len(value) > index else None


def int_or(value: Any, default: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def text_of(value: Any) -> str:
    """Text of a reply item or of an imaplib error (whose argument is often bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, BaseException) and value.args:
        return text_of(value.args[0])
    return str(value)


def unique(uids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(uid) for uid in uids))


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
