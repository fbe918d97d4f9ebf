"""Everything done to a message's untrusted bytes: MIME parsing and table extraction.

Runs in a worker process (mailbot.ingest.isolation) so that hostile input costs a worker, not the
daemon; the result is plain data for the pipeline's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from mailbot.config import Limits
from mailbot.ingest.isolation import Extracted, extract_attachment
from mailbot.mail.parse import parse_message
from mailbot.rules.model import Attachment, ParsedMessage

MAX_ATTACHMENTS = 20


@dataclass
class Analysis:
    message: ParsedMessage  # attachments without their bytes (they are not needed any more)
    extracted: list[Extracted]  # one per attachment that was read, in order
    pictures: list[str | None]  # names of photos and scans (never a table)
    oversized: bool = False  # only the headers were parsed


def is_picture(att: Attachment) -> bool:
    name = (att.filename or "").lower()
    return att.content_type.startswith("image/") or name.endswith((".jpg", ".jpeg", ".png", ".gif", ".bmp", ".heic"))


def headers_only(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    return raw[: end if 0 <= end < 1_000_000 else 65536] + b"\r\n\r\n"


def analyse(raw: bytes, limits: Limits, tz_name: str) -> Analysis:
    """Parse the message and read every attachment that may hold a table. An oversized message is
    parsed from its headers alone."""
    tz = ZoneInfo(tz_name)
    if len(raw) > limits.max_message_bytes:
        return Analysis(parse_message(headers_only(raw), default_tz=tz), [], [], oversized=True)
    message = parse_message(raw, default_tz=tz)
    candidates = [a for a in message.attachments if not is_picture(a)][:MAX_ATTACHMENTS]
    pictures = [a.filename for a in message.attachments if is_picture(a)]
    extracted = [extract_attachment(att, limits) for att in candidates]
    message.attachments = [replace(a, data=b"") for a in message.attachments]
    return Analysis(message, extracted, pictures)
