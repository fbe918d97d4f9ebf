"""Decode one raw message (bytes as they sit in the mailbox) into a ParsedMessage.

Pure and forgiving: malformed input gives empty values, never an exception (SPEC 3.1, 4, 5).
The stdlib parser (compat32, the most tolerant policy) only finds the structure; header text,
parameters, names and charsets are decoded here, because Chinese clients break the rules the
stdlib relies on (see `mailbot.mail.headers`).
"""

from __future__ import annotations

import binascii
import logging
import quopri
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from mailbot.mail.headers import (
    decode_bytes,
    decode_filename_params,
    decode_header_text,
    decode_raw_header,
    header_bytes,
    split_header_params,
)
from mailbot.mail.links import find_big_attachment_links
from mailbot.mail.tnef import is_tnef, unwrap_tnef
from mailbot.rules.automatic import is_autoreply
from mailbot.rules.model import Attachment, ParsedMessage

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # larger: only the headers are read
MAX_DEPTH = 10  # nesting of multiparts and forwarded messages
MAX_PARTS = 200  # leaf and container parts visited per message
# A message with more header-like lines than this is hostile: the stdlib would build one object
# per part before we could count them.
MAX_PART_HEADERS = 2000

_BODY_TYPES = {"text/plain", "text/html"}
_EML_CONTAINER_TYPES = {"application/octet-stream", "application/x-eml", "application/eml", "message/rfc822"}
_CONTENT_TYPE_LINE = re.compile(rb"^content-type:", re.IGNORECASE | re.MULTILINE)


@dataclass
class _Collected:
    """What the walk over the MIME tree gathers."""

    text_parts: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    link_bodies: list[tuple[str, str]] = field(default_factory=list)  # (html, text) incl. forwarded
    attachments: list[Attachment] = field(default_factory=list)
    is_report: bool = False
    parts_seen: int = 0


def parse_message(raw: bytes, *, default_tz: tzinfo = timezone.utc) -> ParsedMessage:
    """Decode a raw RFC 5322 message (CRLF or LF). Never raises on bad input: what cannot be
    read is left empty. `default_tz` is assumed for a Date without a usable zone."""
    try:
        return _parse(raw, default_tz)
    except Exception:  # last resort: a bug here must not lose the message, only its details
        log.exception("could not parse message of %d bytes", len(raw))
        return _empty_message()


def _parse(raw: bytes, default_tz: tzinfo) -> ParsedMessage:
    headers_only = len(raw) > MAX_MESSAGE_BYTES or _too_many_parts(raw)
    parser = BytesParser(policy=policy.compat32)
    message = parser.parsebytes(raw, headersonly=headers_only)
    headers = _raw_headers(message)

    collected = _Collected()
    if headers_only:
        log.warning("message too large or with too many parts: headers only (%d bytes)", len(raw))
    else:
        _walk(message, depth=0, origin="part", top_level=True, collected=collected)

    from_addresses = _addresses(headers.get("from", []))
    from_name, from_addr = from_addresses[0] if from_addresses else ("", "")
    html_body = "\n".join(collected.html_parts)
    text_body = "\n".join(collected.text_parts)
    links: list[str] = []
    for html, text in [(html_body, text_body), *collected.link_bodies]:
        links += [link for link in find_big_attachment_links(html, text) if link not in links]

    return ParsedMessage(
        message_id=_first_id(_first(headers, "message-id")),
        from_addr=from_addr,
        from_name=from_name,
        to_addrs=[address for _, address in _addresses(headers.get("to", []))],
        subject=decode_header_text(_first(headers, "subject") or ""),
        date=_parse_date(_first(headers, "date"), default_tz),
        received_date=_newest_received_date(headers.get("received", []), default_tz),
        in_reply_to=_ids(" ".join(headers.get("in-reply-to", []))),
        references=_ids(" ".join(headers.get("references", []))),
        text_body=text_body,
        html_body=html_body,
        attachments=collected.attachments,
        auto_submitted=_lowered_token(_first(headers, "auto-submitted")),
        precedence=_lowered_token(_first(headers, "precedence")),
        x_autoreply=is_autoreply(headers),
        list_id="list-id" in headers,
        is_report=collected.is_report or _content_type(message)[0] == "multipart/report",
        auth_failed=_auth_failed(_first(headers, "authentication-results"), from_addr),
        big_attachment_links=links,
        reply_to=[address for _, address in _addresses(headers.get("reply-to", []))],
        mailbot_marker="x-mailbot" in headers,
    )


def _empty_message() -> ParsedMessage:
    return ParsedMessage(
        message_id=None, from_addr="", from_name="", to_addrs=[], subject="", date=None,
        received_date=None, in_reply_to=[], references=[], text_body="", html_body="", attachments=[],
    )  # fmt: skip


def _too_many_parts(raw: bytes) -> bool:
    count = 0
    for _ in _CONTENT_TYPE_LINE.finditer(raw):
        count += 1
        if count > MAX_PART_HEADERS:
            return True
    return False


# --- headers -------------------------------------------------------------------------------


def _raw_headers(message: Message) -> dict[str, list[str]]:
    """Header values by lower-case name, in message order (topmost first), still raw."""
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        headers.setdefault(str(name).strip().lower(), []).append(str(value))
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, lower-case address) pairs; "" for what cannot be read."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        text = decode_raw_header(value)
        try:
            parsed = getaddresses([text])
        except Exception:
            parsed = []
        for name, address in parsed:
            address = address.strip().strip("<>").strip().lower()
            if address or name:
                pairs.append((decode_header_text(name), address))
        if not any(address for _, address in pairs):
            # getaddresses gives up on some broken lists: fall back to anything that looks like one.
            found = re.findall(r"[^\s<>\"',;:]+@[^\s<>\"',;]+", text)
            pairs = [("", address.lower()) for address in found] or pairs
    return [(name, address) for name, address in pairs if address]


def _ids(value: str) -> list[str]:
    """Message ids without angle brackets, in order; bare ids accepted when no brackets are used."""
    text = decode_raw_header(value)
    bracketed = re.findall(r"<([^<>]*)>", text)
    ids = bracketed if bracketed else text.replace(",", " ").split()
    return [re.sub(r"\s+", "", found) for found in ids if found.strip()]


def _first_id(value: str | None) -> str | None:
    ids = _ids(value or "")
    return ids[0] if ids else None


def _lowered_token(value: str | None) -> str | None:
    """`Auto-Submitted: Auto-Replied; owner=...` gives "auto-replied"; None when absent or empty."""
    if value is None:
        return None
    token = decode_raw_header(value).split(";", 1)[0].strip().lower()
    return token or None


def _parse_date(value: str | None, default_tz: tzinfo) -> datetime | None:
    if not value:
        return None
    text = decode_raw_header(value).strip()
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        # "-0000" or no zone: RFC 5322 calls -0000 UTC without a known local zone.
        parsed = parsed.replace(tzinfo=default_tz)
    if not 1990 <= parsed.year <= 2200:
        return None
    return parsed


def _newest_received_date(values: list[str], default_tz: tzinfo) -> datetime | None:
    """The time of the topmost `Received:` header that has a readable one (after its last `;`)."""
    for value in values:
        text = decode_raw_header(value)
        if ";" not in text:
            continue
        parsed = _parse_date(text.rsplit(";", 1)[1], default_tz)
        if parsed is not None:
            return parsed
    return None


def _auth_failed(value: str | None, from_addr: str) -> bool:
    """Whether the topmost Authentication-Results (added by our mailbox's own server) records an
    SPF or DKIM failure for the From domain. A failure naming no domain counts."""
    if not value:
        return False
    text = re.sub(r"\([^()]*\)", " ", decode_raw_header(value))  # drop comments
    from_domain = from_addr.rpartition("@")[2]
    results: list[tuple[str, str, dict[str, str]]] = []
    for token in re.split(r"[\s;]+", text)[1:]:  # the first token is the server's id
        key, sep, token_value = token.partition("=")
        if not sep:
            continue
        key, token_value = key.lower(), token_value.strip('"').lower()
        if "." in key:
            if results:
                results[-1][2][key] = token_value
        elif key != "reason":
            results.append((key.split("/")[0], token_value, {}))
    for method, result, properties in results:
        if result != "fail":
            continue
        if method == "spf":
            domain_keys = ("smtp.mailfrom", "smtp.mail", "smtp.helo")
        elif method == "dkim":
            domain_keys = ("header.d", "header.i")
        else:
            continue
        domain = next((properties[key] for key in domain_keys if properties.get(key)), "")
        domain = domain.rpartition("@")[2]
        if not domain or not from_domain or _same_organisation(domain, from_domain):
            return True
    return False


def _same_organisation(domain: str, other: str) -> bool:
    return domain == other or domain.endswith("." + other) or other.endswith("." + domain)


# --- the MIME tree -------------------------------------------------------------------------


def _content_type(part: Message) -> tuple[str, dict[str, str]]:
    value = _raw_header(part, "content-type")
    if value is None:
        return "text/plain", {}
    main, params = split_header_params(_unfold(value))
    if "/" not in main or " " in main:
        main = "text/plain"  # RFC 2045: an invalid type means text/plain
    return main, params


def _unfold(value: str) -> str:
    """Unfold a raw header but keep 8-bit bytes escaped, so parameters can pick their charset."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def _raw_header(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if str(key).strip().lower() == name:
            return str(value)
    return None


def _walk(part: Message, depth: int, origin: str, top_level: bool, collected: _Collected) -> None:
    """Visit `part`: bodies of the outer message go to the text/html lists, leaves to attachments,
    forwarded messages and winmail.dat are opened. `top_level` is False inside forwarded mail."""
    collected.parts_seen += 1
    if collected.parts_seen > MAX_PARTS:
        return
    content_type, type_params = _content_type(part)
    if content_type == "multipart/report":
        collected.is_report = True
    payload = part.get_payload()

    if isinstance(payload, list):
        if content_type in ("message/rfc822", "message/global"):
            for inner in payload[:1]:
                _walk_forwarded(inner, part, depth, collected)
            return
        if content_type.startswith("message/"):  # e.g. delivery-status: header blocks, keep as data
            data = b"".join(_serialise(block) for block in payload if isinstance(block, Message))
            collected.attachments.append(Attachment(None, content_type, data, _disposition(part)[0], origin))
            return
        if depth >= MAX_DEPTH:
            log.info("multipart nested deeper than %d: rest ignored", MAX_DEPTH)
            return
        for child in payload:
            if isinstance(child, Message):
                _walk(child, depth + 1, origin, top_level, collected)
        return

    disposition, disposition_params = _disposition(part)
    filename = decode_filename_params(disposition_params, type_params)
    data = _decoded_payload(part)

    if content_type in _BODY_TYPES and filename is None and disposition != "attachment":
        text = decode_bytes(data, type_params.get("charset"))[0].replace("\r\n", "\n")
        if top_level:
            (collected.text_parts if content_type == "text/plain" else collected.html_parts).append(text)
        else:
            collected.link_bodies.append((text, "") if content_type == "text/html" else ("", text))
        return

    if is_tnef(content_type, filename):
        unwrapped = unwrap_tnef(data)
        if unwrapped:
            collected.attachments.extend(unwrapped)
            return

    if _looks_like_eml(content_type, filename) and depth < MAX_DEPTH:
        inner = _parse_embedded(data)
        if inner is not None:
            _walk(inner, depth + 1, "rfc822", False, collected)
            return

    collected.attachments.append(Attachment(filename, content_type, data, disposition, origin))


def _walk_forwarded(inner: object, part: Message, depth: int, collected: _Collected) -> None:
    """A message/rfc822 part: open the forwarded message (its headers are not ours)."""
    if not isinstance(inner, Message) or depth >= MAX_DEPTH:
        return
    encoding = (_raw_header(part, "content-transfer-encoding") or "").strip().lower()
    if encoding in ("base64", "quoted-printable") and not inner.keys():
        # Illegal but seen: an encoded message/rfc822. The stdlib parsed the encoded text as a
        # headerless message; decode it and parse again.
        reparsed = _parse_embedded(_decode_transfer(header_bytes(str(inner.get_payload())), encoding))
        if reparsed is None:
            return
        inner = reparsed
    _walk(inner, depth + 1, "rfc822", False, collected)


def _looks_like_eml(content_type: str, filename: str | None) -> bool:
    if content_type == "message/rfc822":  # a leaf message/rfc822: the parser did not open it
        return True
    return content_type in _EML_CONTAINER_TYPES and (filename or "").lower().endswith(".eml")


def _parse_embedded(data: bytes) -> Message | None:
    """Parse bytes as a message; None unless it has at least one header (it was not mail)."""
    try:
        if _too_many_parts(data):
            return None
        message = BytesParser(policy=policy.compat32).parsebytes(data)
    except Exception:
        return None
    return message if message.keys() else None


def _disposition(part: Message) -> tuple[str, dict[str, str]]:
    value = _raw_header(part, "content-disposition")
    if value is None:
        return "inline", {}
    main, params = split_header_params(_unfold(value))
    return ("attachment" if main == "attachment" else "inline"), params


def _decoded_payload(part: Message) -> bytes:
    # The raw payload, not get_payload(): compat32 replaces 8-bit bytes it cannot decode with the
    # declared charset (an 8bit GBK body labelled us-ascii would be lost).
    payload = getattr(part, "_payload", None)
    if not isinstance(payload, str):
        return b""
    encoding = (_raw_header(part, "content-transfer-encoding") or "").strip().lower()
    return _decode_transfer(header_bytes(payload), encoding)


def _decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo base64, quoted-printable or uuencode; anything else (7bit, 8bit, binary) as is."""
    if encoding == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        try:
            return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
        except binascii.Error:
            return b""
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    if encoding in ("x-uuencode", "uuencode", "uue", "x-uue"):
        return _decode_uu(data)
    return data


def _decode_uu(data: bytes) -> bytes:
    decoded: list[bytes] = []
    inside = False
    for line in data.splitlines():
        if not inside:
            inside = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`"):
            break
        try:
            decoded.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Some encoders pad lines wrongly; decode as many bytes as the length char says.
            try:
                count = ((line[0] - 32) & 63) * 4 + 5
                decoded.append(binascii.a2b_uu(line[: count // 3]))
            except (binascii.Error, IndexError):
                continue
    return b"".join(decoded) if inside else data


def _serialise(message: Message) -> bytes:
    try:
        return message.as_bytes()
    except Exception:
        return b""
