"""Turn a composed email into the exact bytes mailbot sends (SPEC 4, 5).

The MIME tree is written by hand rather than by the stdlib generator because the stdlib encodes
non-ASCII attachment names per RFC 2231 (`filename*=utf-8''...`), which QQ Mail shows as
`tcmime.*.bin`. Every Chinese mail client (and 163, QQ, Foxmail themselves) writes and reads an RFC
2047 encoded word inside the quoted parameter, so that is what we write. Writing it by hand also makes
the output deterministic (boundaries derive from the Message-ID), so a re-queued message is identical.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.utils import format_datetime

from mailbot.mail.headers import is_usable_address
from mailbot.outbound.compose import Composed

CRLF = "\r\n"
AUTO_SUBMITTED_VALUES = ("auto-replied", "auto-generated", "no")

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_MSG_ID = re.compile(r"^[!-;=?-~]{1,250}$")  # printable ASCII without < > and spaces
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_PLAIN_PHRASE = re.compile(r"^[A-Za-z0-9 !#$%&'*+/^_`{|}~-]*$")  # atext and spaces: no quoting needed
_PLAIN_FILENAME = re.compile(r"^[A-Za-z0-9 !#$%&'()+,.;=@\[\]^_`{}~-]+$")
_UNSAFE_IN_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')

# An RFC 2047 word is at most 75 characters: "=?utf-8?b?" + 60 base64 characters + "?=".
_WORD_BYTES = 45
_MAX_FILENAME_CHARS = 150  # keeps a single encoded word well under the 998-character line limit
_MAX_REFERENCES = 20
_INSTALLATION = re.compile(r"[0-9a-z]{1,32}")


def make_message_id(domain: str, key: str, installation: str = "") -> str:
    """A Message-ID (without angle brackets) that depends only on `key`, e.g. the outbox row's
    unique key, and on the installation's id (mailbot.db.installation): a message queued again
    after a crash keeps its id, and two installations (or a database made anew) never share one."""
    domain = (domain or "").strip().lower()
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a mail domain: {domain!r}")
    token = (installation or "").strip().lower()
    if token and not _INSTALLATION.fullmatch(token):
        raise ValueError(f"not an installation id: {installation!r}")
    seed = f"{token}:{key}" if token else key
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"mailbot.{token}.{digest}@{domain}" if token else f"mailbot.{digest}@{domain}"


def _encoded_words(text: str) -> list[str]:
    """Split `text` into RFC 2047 base64 words of at most 75 characters, never inside a character."""
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8", "replace")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    if chunk or not words:
        words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words]


def _single_line(text: str) -> str:
    # No header injection through line breaks, and no control characters in a header at all.
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", str(text)).split())


def _unstructured(text: str) -> str:
    """A Subject-like header value: plain when ASCII, else encoded words folded one per line."""
    text = _single_line(text)
    if text.isascii() and "=?" not in text and len(text) <= 900:
        return text
    return (CRLF + " ").join(_encoded_words(text))


def _checked_address(address: str) -> str:
    address = (address or "").strip()
    if not is_usable_address(address):
        raise ValueError(f"not a usable email address: {address!r}")
    return address


def _mailbox(name: str, address: str) -> str:
    """`From:`-style "display name <address>", the name RFC 2047-encoded when not plain ASCII."""
    address, name = _checked_address(address), _single_line(name or "")
    if not name:
        return address
    if _PLAIN_PHRASE.match(name):
        return f"{name} <{address}>"
    if name.isascii() and "=?" not in name:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return (CRLF + " ").join(_encoded_words(name)) + f" <{address}>"


def _msg_id(value: str | None) -> str | None:
    """`<id>` for a Message-ID given with or without brackets; None when it is not one."""
    value = (value or "").strip().strip("<>").strip()
    return f"<{value}>" if _MSG_ID.match(value) else None


def _references(references: Iterable[str], in_reply_to: str | None) -> list[str]:
    ids: list[str] = []
    for ref in [*references, in_reply_to]:
        checked = _msg_id(ref)
        if checked and checked not in ids:
            ids.append(checked)
    if len(ids) > _MAX_REFERENCES:  # RFC 5322 3.6.4: keep the first and the most recent ones
        ids = ids[:1] + ids[-(_MAX_REFERENCES - 1):]
    return ids


def safe_filename(name: str) -> str:
    """An attachment name without path separators or control characters, of bounded length."""
    cleaned = _single_line(_UNSAFE_IN_FILENAME.sub("", name or "")) or "attachment"
    if len(cleaned) > _MAX_FILENAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        ext = f".{ext}" if dot and len(ext) <= 8 else ""
        cleaned = cleaned[: _MAX_FILENAME_CHARS - len(ext)] + ext
    return cleaned


def _filename_value(name: str) -> str:
    """The quoted parameter value: plain ASCII as is, anything else as one RFC 2047 word."""
    name = safe_filename(name)
    if _PLAIN_FILENAME.match(name):
        return f'"{name}"'
    return f'"=?utf-8?b?{base64.b64encode(name.encode("utf-8", "replace")).decode("ascii")}?="'


def _base64_body(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return CRLF.join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


def _text_part(subtype: str, text: str) -> str:
    # Text is canonically CRLF inside the encoding (RFC 2046 4.1.1).
    body = re.sub(r"\r\n|\r|\n", CRLF, text).encode("utf-8", "replace")
    return (f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{_base64_body(body)}")


def _attachment_part(filename: str, data: bytes, content_type: str) -> str:
    content_type = (content_type or "").strip().lower()
    if not _CONTENT_TYPE.match(content_type):
        content_type = "application/octet-stream"
    value = _filename_value(filename)
    return (f"Content-Type: {content_type};{CRLF}\tname={value}{CRLF}"
            f"Content-Transfer-Encoding: base64{CRLF}"
            f"Content-Disposition: attachment;{CRLF}\tfilename={value}{CRLF}{CRLF}"
            f"{_base64_body(data)}")


def _multipart(subtype: str, boundary: str, parts: Sequence[str]) -> str:
    body = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts) + f"--{boundary}--{CRLF}"
    return f'Content-Type: multipart/{subtype};{CRLF}\tboundary="{boundary}"{CRLF}{CRLF}{body}'


def _boundary(message_id: str, role: str) -> str:
    # "=_" never occurs in base64 text, so the boundary cannot collide with any part's content.
    return f"=_mailbot_{role}_{hashlib.sha256((role + message_id).encode()).hexdigest()[:24]}"


def build_email(*, from_addr: str, from_name: str, to: list[str], composed: Composed,
                attachments: Sequence[tuple[str, bytes, str]] = (), in_reply_to: str | None = None,
                references: Sequence[str] = (), auto_submitted: str = "auto-replied",
                reply_to: str | None = None, message_id: str, date: datetime) -> bytes:
    """A complete RFC 5322 message with CRLF line ends, ready for SMTP or a Maildir outbox.

    text + html as multipart/alternative, wrapped in multipart/mixed when there are attachments
    (name, data, content type). `in_reply_to` and `references` are taken with or without angle
    brackets; malformed ones (they come from the school's mail) are dropped, and `in_reply_to` is
    appended to References. Raises ValueError for an unusable address, Message-ID, naive date or
    unknown Auto-Submitted value: those are the caller's bugs, not the school's.
    """
    own_id = _msg_id(message_id)
    if own_id is None:
        raise ValueError(f"not a usable Message-ID: {message_id!r}")
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("the Date of an outgoing message must be timezone-aware")
    if auto_submitted not in AUTO_SUBMITTED_VALUES:
        raise ValueError(f"Auto-Submitted must be one of {', '.join(AUTO_SUBMITTED_VALUES)}, not {auto_submitted!r}")
    recipients = list(dict.fromkeys(_checked_address(a) for a in to))
    if not recipients:
        raise ValueError("an outgoing message needs at least one recipient")

    headers = [
        ("Date", format_datetime(date)),
        ("From", _mailbox(from_name, from_addr)),
        ("To", ("," + CRLF + " ").join(recipients)),
        ("Subject", _unstructured(composed.subject)),
        ("Message-ID", own_id),
    ]
    parent = _msg_id(in_reply_to)
    if parent:
        headers.append(("In-Reply-To", parent))
    thread = _references(references, in_reply_to)
    if thread:
        headers.append(("References", (CRLF + " ").join(thread)))
    if reply_to:
        headers.append(("Reply-To", _checked_address(reply_to)))
    headers += [
        ("Auto-Submitted", auto_submitted),  # RFC 3834: other robots must not answer us
        ("X-Auto-Response-Suppress", "All"),  # the same request in Exchange/Outlook's dialect
        ("X-Mailbot", "1"),  # how mailbot recognises its own mail coming back
        ("MIME-Version", "1.0"),
    ]

    body = _multipart("alternative", _boundary(own_id, "alt"),
                      [_text_part("plain", composed.text), _text_part("html", composed.html)])
    if attachments:
        files = [_attachment_part(name, data, content_type) for name, data, content_type in attachments]
        body = _multipart("mixed", _boundary(own_id, "mix"), [body, *files])
    head = "".join(f"{name}: {value}{CRLF}" for name, value in headers)
    return (head + body).encode("ascii")
