"""The MIME tree of a parsed message: bodies, attachments, forwarded mail and winmail.dat.

The stdlib parser (compat32, the most tolerant policy) has found the structure; this walk decides
what each part is and decodes its payload itself, because Chinese clients break the rules the
stdlib relies on (8-bit bodies labelled us-ascii, encoded message/rfc822 parts, uuencode). A part
that cannot be decoded costs that part only, never its siblings or the message.
"""

from __future__ import annotations

import binascii
import logging
import quopri
import re
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser

from mailbot.mail.headers import decode_bytes, decode_filename_params, header_bytes, split_header_params
from mailbot.mail.structure import measure
from mailbot.mail.tnef import is_tnef, unwrap_tnef
from mailbot.rules.model import Attachment

log = logging.getLogger(__name__)

MAX_DEPTH = 10  # nesting of multiparts and forwarded messages
MAX_PARTS = 200  # leaf and container parts visited per message

_BODY_TYPES = {"text/plain", "text/html"}
_EML_CONTAINER_TYPES = {"application/octet-stream", "application/x-eml", "application/eml", "message/rfc822"}


@dataclass
class Collected:
    """What the walk over the MIME tree gathers."""

    text_parts: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    link_bodies: list[tuple[str, str]] = field(default_factory=list)  # (html, text) incl. forwarded
    attachments: list[Attachment] = field(default_factory=list)
    is_report: bool = False
    parts_seen: int = 0
    unread_parts: int = 0  # parts whose decoding raised (MemoryError included): counted, not lost


def parse_structure(raw: bytes) -> Message:
    """The stdlib's tree of `raw` (already measured by mailbot.mail.structure)."""
    return BytesParser(policy=policy.compat32).parsebytes(raw)


def collect(message: Message) -> Collected:
    """Walk a whole message."""
    collected = Collected()
    walk(message, depth=0, origin="part", top_level=True, collected=collected)
    return collected


def content_type_of(part: Message) -> tuple[str, dict[str, str]]:
    value = raw_header(part, "content-type")
    if value is None:
        return "text/plain", {}
    main, params = split_header_params(_unfold(value))
    if "/" not in main or " " in main:
        main = "text/plain"  # RFC 2045: an invalid type means text/plain
    return main, params


def _unfold(value: str) -> str:
    """Unfold a raw header but keep 8-bit bytes escaped, so parameters can pick their charset."""
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def raw_header(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if str(key).strip().lower() == name:
            return str(value)
    return None


def walk(part: Message, depth: int, origin: str, top_level: bool, collected: Collected) -> None:
    """Visit `part`: bodies of the outer message go to the text/html lists, leaves to attachments,
    forwarded messages and winmail.dat are opened. `top_level` is False inside forwarded mail."""
    collected.parts_seen += 1
    if collected.parts_seen > MAX_PARTS:
        return
    content_type, type_params = content_type_of(part)
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
                _walk_child(child, depth + 1, origin, top_level, collected)
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
            _walk_child(inner, depth + 1, "rfc822", False, collected)
            return

    collected.attachments.append(Attachment(filename, content_type, data, disposition, origin))


def _walk_child(part: Message, depth: int, origin: str, top_level: bool, collected: Collected) -> None:
    try:
        walk(part, depth, origin, top_level, collected)
    except Exception:  # noqa: BLE001 - a bug on one part must cost that part, not the message
        # MemoryError included (a 15 MB base64 part of "=" signs in the worker's memory limit): the
        # part is counted, so the decision says a file could not be read instead of "nothing sent".
        collected.unread_parts += 1
        log.warning("could not read a MIME part at depth %d: skipped", depth, exc_info=True)


def _walk_forwarded(inner: object, part: Message, depth: int, collected: Collected) -> None:
    """A message/rfc822 part: open the forwarded message (its headers are not ours)."""
    if not isinstance(inner, Message) or depth >= MAX_DEPTH:
        return
    encoding = (raw_header(part, "content-transfer-encoding") or "").strip().lower()
    if encoding in ("base64", "quoted-printable") and not inner.keys():
        # Illegal but seen: an encoded message/rfc822. The stdlib parsed the encoded text as a
        # headerless message; decode it and parse again.
        reparsed = _parse_embedded(_decode_transfer(header_bytes(str(inner.get_payload())), encoding))
        if reparsed is None:
            return
        inner = reparsed
    _walk_child(inner, depth + 1, "rfc822", False, collected)


def _looks_like_eml(content_type: str, filename: str | None) -> bool:
    if content_type == "message/rfc822":  # a leaf message/rfc822: the parser did not open it
        return True
    return content_type in _EML_CONTAINER_TYPES and (filename or "").lower().endswith(".eml")


def _parse_embedded(data: bytes) -> Message | None:
    """Parse bytes as a message; None unless it has at least one header (it was not mail)."""
    try:
        shape = measure(data)
        if shape.problem:
            log.info("attached message not opened: %s", shape.problem)
            return None
        message = parse_structure(data)
    except Exception:  # noqa: BLE001 - RecursionError included: then it is kept as a file
        return None
    return message if message.keys() else None


def _disposition(part: Message) -> tuple[str, dict[str, str]]:
    value = raw_header(part, "content-disposition")
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
    encoding = (raw_header(part, "content-transfer-encoding") or "").strip().lower()
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
