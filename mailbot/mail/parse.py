"""Decode one raw message (bytes as they sit in the mailbox) into a ParsedMessage.

Pure and forgiving: malformed input gives empty values, never an exception (SPEC 3.1, 4, 5).
The raw bytes are measured first (mailbot.mail.structure) so that a hostile shape is never handed
to the stdlib parser; the MIME tree is walked in mailbot.mail.mime; the header fields are decoded
here, because Chinese clients break the rules the stdlib relies on (see mailbot.mail.headers).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timezone, tzinfo
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from mailbot.mail.headers import decode_header_text, decode_raw_header, is_usable_address
from mailbot.mail.links import find_big_attachment_links
from mailbot.mail.mime import MAX_DEPTH, MAX_PARTS, Collected, collect, content_type_of, parse_structure
from mailbot.mail.structure import header_block, measure
from mailbot.rules.automatic import is_autoreply
from mailbot.rules.model import ParsedMessage

__all__ = ["MAX_DEPTH", "MAX_MESSAGE_BYTES", "MAX_PARTS", "parse_message", "parse_message_shaped", "sender_address"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # larger: only the headers are read


def parse_message(raw: bytes, *, default_tz: tzinfo = timezone.utc) -> ParsedMessage:
    """Decode a raw RFC 5322 message (CRLF or LF). Never raises on bad input: what cannot be
    read is left empty. `default_tz` is assumed for a Date without a usable zone."""
    return parse_message_shaped(raw, default_tz=default_tz)[0]


def parse_message_shaped(raw: bytes, *, default_tz: tzinfo = timezone.utc) -> tuple[ParsedMessage, str | None]:
    """parse_message, and why only the headers were read: "too_large", "too_deep",
    "too_many_messages" or "too_many_parts" (mailbot.mail.structure); None when all was read.
    A body that could not be decoded is read as headers only with `unread_parts` = 1."""
    problem = "too_large" if len(raw) > MAX_MESSAGE_BYTES else measure(raw).problem
    try:
        return _parse(raw, default_tz, headers_only=problem is not None), problem
    except Exception:  # last resort: a bug here must not lose the message, only its details
        log.exception("could not parse message of %d bytes: reading its headers only", len(raw))
    try:
        return replace(_parse(raw, default_tz, headers_only=True), unread_parts=1), problem
    except Exception:  # noqa: BLE001
        log.exception("could not parse the headers of a message of %d bytes", len(raw))
        return _empty_message(), problem


def _parse(raw: bytes, default_tz: tzinfo, headers_only: bool) -> ParsedMessage:
    if headers_only:
        log.warning("message too large or too complex: headers only (%d bytes)", len(raw))
        # Only the header section goes to the parser: with headersonly it still splits the whole
        # body into lines (seconds for a million hostile parts).
        message = BytesParser(policy=policy.compat32).parsebytes(header_block(raw), headersonly=True)
        collected = Collected()
    else:
        message = parse_structure(raw)
        collected = collect(message)
    headers = _raw_headers(message)

    from_name, from_addr = sender_address(headers.get("from", []))
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
        is_report=collected.is_report or content_type_of(message)[0] == "multipart/report",
        auth_failed=_auth_failed(_first(headers, "authentication-results"), from_addr),
        big_attachment_links=links,
        reply_to=_reply_addresses(headers.get("reply-to", [])),
        mailbot_marker="x-mailbot" in headers,
        unread_parts=collected.unread_parts,
    )


def _empty_message() -> ParsedMessage:
    return ParsedMessage(
        message_id=None, from_addr="", from_name="", to_addrs=[], subject="", date=None,
        received_date=None, in_reply_to=[], references=[], text_body="", html_body="", attachments=[],
    )  # fmt: skip


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


# Something that looks like an address, in text that getaddresses could not split.
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"',;:]+@[^\s<>\"',;]+")


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
            found = _ADDRESS_IN_TEXT.findall(text)
            pairs = [("", address.lower()) for address in found] or pairs
    return [(name, address) for name, address in pairs if address]


def sender_address(values: list[str]) -> tuple[str, str]:
    """The From field's (display name, lower-case address): the first address mail can be sent
    to; else one written without its brackets ("北门小学 beimenxx@163.com"); else the first as
    written ("MAILER-DAEMON", for the automatic-mail rule); else ("", ""). One rule for the IMAP
    triage, which reads the header alone, and the pipeline: a display name with a bare comma
    ("北门,小学 <x@163.com>") gave the triage no address ("no From address": ignored unread) and
    the pipeline the name's first half."""
    pairs = _addresses(values)
    usable = [pair for pair in pairs if is_usable_address(pair[1])]
    if usable:
        return usable[0]
    for value in values:
        for found in _ADDRESS_IN_TEXT.findall(decode_raw_header(value)):
            if is_usable_address(found.lower()):
                return "", found.lower()
    return pairs[0] if pairs else ("", "")


def _reply_addresses(values: list[str]) -> list[str]:
    """Reply-To addresses a reply can really be sent to. An unusable one (two addresses without a
    comma, a lone ".", an emoji, 8-bit garbage) is dropped, so the reply goes to From (RFC 3834)."""
    usable: list[str] = []
    for _, address in _addresses(values):
        if is_usable_address(address):
            usable.append(address)
    if not usable:
        # "a@x.com b@x.com": getaddresses glues the two, but every word is plainly an address.
        words = re.split(r"[\s,;]+", " ".join(decode_raw_header(value) for value in values).strip())
        bare = [word.strip("<>").lower() for word in words]
        if all(is_usable_address(word) for word in bare):
            usable = bare
    if values and not usable:
        log.info("Reply-To %r holds no usable address: replies go to From", " ".join(values)[:200])
    return list(dict.fromkeys(usable))


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


