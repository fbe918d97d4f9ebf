"""What the pages show of an email's bytes: its headers, attachments and text, decoded leniently.
Pure functions of the raw message; a malformed message gives what could be read, never an error."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

SHOWN_HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
                 "Auto-Submitted", "Received")
MAX_TEXT = 200_000


def _parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def _header_text(value) -> str:
    try:
        return " ".join(str(value).split())
    except Exception:  # noqa: BLE001 - a broken encoded word: show it undecoded
        return " ".join(repr(value).split())


def headers_of(raw: bytes) -> list[tuple[str, str]]:
    message = _parse(raw)
    out = []
    for name, value in message.raw_items():
        if name.title() in [h.title() for h in SHOWN_HEADERS]:
            try:
                decoded = message.policy.header_factory(name, value)
            except Exception:  # noqa: BLE001
                decoded = value
            out.append((name, _header_text(decoded)))
    return out


def attachments_of(raw: bytes) -> list[dict]:
    found = []
    for part in _parse(raw).walk():
        if part.is_multipart():
            continue
        try:
            name = part.get_filename()
        except Exception:  # noqa: BLE001
            name = None
        if not name and part.get_content_disposition() != "attachment":
            continue
        try:
            size = len(part.get_payload(decode=True) or b"")
        except Exception:  # noqa: BLE001
            size = 0
        found.append({"name": name or "（无文件名）", "type": part.get_content_type(), "size": size})
    return found


def body_of(raw: bytes, subtype: str) -> str | None:
    """The first text/<subtype> part, decoded."""
    for part in _parse(raw).walk():
        if part.get_content_type() == f"text/{subtype}" and part.get_content_disposition() != "attachment":
            try:
                return part.get_content()[:MAX_TEXT]
            except Exception:  # noqa: BLE001
                payload = part.get_payload(decode=True) or b""
                return payload.decode("utf-8", "replace")[:MAX_TEXT]
    return None
