"""What a message holds, judged from its IMAP BODYSTRUCTURE before downloading it (SPEC 5).

Pure functions over the tuples imapclient returns for FETCH BODYSTRUCTURE. Servers pass MIME
parameters through undecoded (Dovecot does), so part names arrive in every form mail clients
write: RFC 2047 encoded words (163, QQ, Foxmail), RFC 2231 `filename*` (Outlook, iPhone; with
`*0*`/`*1*` continuations on servers that do not merge them) and raw 8-bit UTF-8 (Thunderbird).

Nothing here raises on malformed or hostile input: an unreadable piece is skipped or kept as
best-effort text, because the worst outcome of a wrong guess is merely downloading a message.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import unquote_to_bytes

# Content types that may carry a table even without a filename.
CSV_TYPES = frozenset({"text/csv", "text/x-csv", "text/comma-separated-values"})
MAX_DEPTH = 40  # deeper nesting is hostile; imapclient's own parser recurses as well

# Chinese clients label GBK text "gb2312"; gb18030 decodes all of it and more.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "x-gbk": "gb18030",
                    "euc-cn": "gb18030", "csgb2312": "gb18030", "utf8": "utf-8"}
_ENCODED_WORD = re.compile(rb"=\?([^?\s]*)\?([bBqQ])\?([^?\s]*)\?=")
_BLANK_BETWEEN_WORDS = re.compile(rb"\?=[ \t\r\n]+=\?")
_PARAM_KEY = re.compile(r"^([^*]+)(?:\*(\d+))?(\*)?$")


@dataclass(frozen=True)
class PartInfo:
    """One leaf part (or attached message) as BODYSTRUCTURE describes it."""

    content_type: str  # lower-case "type/subtype"
    filename: str | None  # decoded; from Content-Disposition filename, else Content-Type name
    disposition: str | None  # lower-case "attachment" / "inline", None when absent
    size: int | None  # octets as transferred (base64 is ~4/3 of the file)
    in_attached_message: bool = False  # inside a message/rfc822 part (a forwarded mail)


def parts(bodystructure: Any) -> list[PartInfo]:
    """Every leaf part and every attached message, in MIME order; [] for nonsense input."""
    return list(_walk(bodystructure, depth=0, nested=False))


def part_names(bodystructure: Any) -> list[str]:
    """Decoded names of all parts that have one, in MIME order (for logs and quick decisions)."""
    return [part.filename for part in parts(bodystructure) if part.filename]


def is_candidate(part: PartInfo) -> bool:
    """Could this part be (or contain) a submission table?"""
    return (
        bool(part.filename)
        or part.content_type.startswith("application/")
        or part.content_type == "message/rfc822"
        or part.content_type in CSV_TYPES
    )


def has_candidate(bodystructure: Any) -> bool:
    """True when any part may hold a table: a named part, application/*, message/rfc822, CSV.

    False means the message is plain text/HTML (plus unnamed inline images) and may be judged
    without downloading it.
    """
    return any(is_candidate(part) for part in parts(bodystructure))


# -- walking the structure ------------------------------------------------------------------


def _walk(node: Any, depth: int, nested: bool) -> Iterator[PartInfo]:
    if depth > MAX_DEPTH or not isinstance(node, (tuple, list)) or not node:
        return
    children = _multipart_children(node)
    if children is not None:
        for child in children:
            yield from _walk(child, depth + 1, nested)
        return
    part = _leaf(node, nested)
    if part is None:
        return
    yield part
    if part.content_type == "message/rfc822" and len(node) > 8:
        yield from _walk(node[8], depth + 1, nested=True)


def _multipart_children(node: tuple | list) -> list | None:
    """The sub-parts of a multipart node, or None for a leaf.

    imapclient nests the top levels as `([part, part], b"mixed", ...)` but leaves the body of a
    message/rfc822 part raw, as `(part, part, b"mixed", ...)`. Both forms are accepted.
    """
    first = node[0]
    if isinstance(first, list):
        return first
    if isinstance(first, tuple):
        children = []
        for item in node:
            if not isinstance(item, (tuple, list)):
                break
            children.append(item)
        return children
    return None


def _leaf(node: tuple | list, nested: bool) -> PartInfo | None:
    main, sub = _ascii(_at(node, 0)), _ascii(_at(node, 1))
    if main is None or sub is None:
        return None
    content_type = f"{main}/{sub}".lower()
    # Extension data follows the basic fields; text/* adds a line count, message/rfc822 adds
    # envelope, body and line count (RFC 3501 7.4.2).
    if main.lower() == "text":
        extension = 8
    elif content_type == "message/rfc822":
        extension = 10
    else:
        extension = 7
    disposition_field = _at(node, extension + 1)
    disposition, disposition_params = None, {}
    if isinstance(disposition_field, (tuple, list)) and disposition_field:
        disposition = (_ascii(disposition_field[0]) or "").lower() or None
        disposition_params = decode_parameters(_at(disposition_field, 1))
    type_params = decode_parameters(_at(node, 2))
    filename = _clean(disposition_params.get("filename") or type_params.get("name"))
    size = _at(node, 6)
    return PartInfo(
        content_type=content_type,
        filename=filename,
        disposition=disposition,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        in_attached_message=nested,
    )


def _at(node: Any, index: int) -> Any:
    return node[index] if isinstance(node, (tuple, list)) and len(node) > index else None


def _ascii(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    if isinstance(value, str):
        return value
    return None


def _clean(name: str | None) -> str | None:
    if name is None:
        return None
    # Folding leftovers and NULs are never part of a name a school meant to write.
    name = re.sub(r"[\r\n\t\x00]+", "", name).strip()
    return name or None


# -- MIME parameters --------------------------------------------------------------------------


def decode_parameters(params: Any) -> dict[str, str]:
    """`(b"name", b"=?GBK?B?...?=", b"filename*", b"utf-8''%E5...")` -> {"name": "...", ...}.

    Keys are lower-case base names (`filename*0*` counts as `filename`). An RFC 2231 value wins
    over a plain one of the same name: clients put an ASCII fallback in the plain one.
    """
    if not isinstance(params, (tuple, list)):
        return {}
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    segments: dict[str, list[tuple[int, bool, bytes]]] = {}
    for index in range(0, len(params) - 1, 2):
        key, value = _ascii(params[index]), params[index + 1]
        if key is None or not isinstance(value, (bytes, str)):
            continue
        raw = value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else value
        match = _PARAM_KEY.match(key.strip().lower())
        if not match:
            continue
        name, number, star = match.group(1), match.group(2), bool(match.group(3))
        if number is not None:
            segments.setdefault(name, []).append((int(number), star, raw))
        elif star:
            extended[name] = decode_rfc2231(raw)
        else:
            plain.setdefault(name, decode_rfc2047(_bytes_to_text(raw)))
    for name, pieces in segments.items():
        extended.setdefault(name, _join_continuations(pieces))
    return {**plain, **extended}


def decode_rfc2231(value: bytes) -> str:
    """`utf-8''%E5%9F%8E...` (charset'language'percent-encoded) -> text."""
    charset, encoded = "utf-8", value
    if value.count(b"'") >= 2:
        charset_bytes, _language, encoded = value.split(b"'", 2)
        charset = charset_bytes.decode("ascii", errors="replace") or "utf-8"
    return _decode(unquote_to_bytes(encoded), charset)


def _join_continuations(pieces: list[tuple[int, bool, bytes]]) -> str:
    """RFC 2231 continuations: `name*0*=utf-8''%E5..; name*1*=%A6..; name*2=.xlsx`."""
    pieces.sort(key=lambda piece: piece[0])
    charset = "utf-8"
    data = bytearray()
    for position, (_number, encoded, raw) in enumerate(pieces):
        if encoded:
            if position == 0 and raw.count(b"'") >= 2:
                charset_bytes, _language, raw = raw.split(b"'", 2)
                charset = charset_bytes.decode("ascii", errors="replace") or "utf-8"
            data += unquote_to_bytes(raw)
        else:
            data += raw
    if not any(encoded for _, encoded, _ in pieces):
        return decode_rfc2047(_bytes_to_text(bytes(data)))
    return _decode(bytes(data), charset)


def decode_rfc2047(text: str) -> str:
    """Decode `=?GBK?B?...?=` words; text outside them is kept as it is.

    Adjacent words in the same charset are joined before decoding, because Chinese clients
    split a name wherever the line is full, even in the middle of a two-byte character.
    """
    raw = text.encode("utf-8", errors="surrogateescape")
    if b"=?" not in raw:
        return text
    raw = _BLANK_BETWEEN_WORDS.sub(b"?==?", raw)  # blanks between encoded words are folding
    out: list[str] = []
    pending_charset: str | None = None
    pending = bytearray()

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(_decode(bytes(pending), pending_charset))
        pending.clear()
        pending_charset = None

    position = 0
    for match in _ENCODED_WORD.finditer(raw):
        between = raw[position:match.start()]
        if between:
            flush()
            out.append(_bytes_to_text(between))
        charset = match.group(1).decode("ascii", errors="replace").split("*")[0]  # drop RFC 2231 language
        word = _decode_word(match.group(2).lower(), match.group(3))
        if word is None:  # not decodable: keep the word as written
            flush()
            out.append(_bytes_to_text(match.group(0)))
        else:
            if pending_charset is not None and _codec(charset) != _codec(pending_charset):
                flush()
            pending_charset = charset
            pending += word
        position = match.end()
    flush()
    out.append(_bytes_to_text(raw[position:]))
    return "".join(out)


def _decode_word(encoding: bytes, payload: bytes) -> bytes | None:
    try:
        if encoding == b"b":
            return base64.b64decode(payload + b"=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload, header=True)
    except (binascii.Error, ValueError):
        return None


def _codec(charset: str) -> str:
    name = charset.strip().lower()
    return _CHARSET_ALIASES.get(name, name)


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(_codec(charset))
    except (LookupError, ValueError):  # unknown charset, bad bytes, or a NUL in the charset name
        return _bytes_to_text(data)


def _bytes_to_text(data: bytes) -> str:
    """Undeclared 8-bit text: UTF-8 (Thunderbird) or GBK (older Chinese clients)."""
    for codec in ("utf-8", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")
