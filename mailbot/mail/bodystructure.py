"""What a message holds, judged from its IMAP BODYSTRUCTURE before downloading it (SPEC 5).

Pure functions over the tuples imapclient returns for FETCH BODYSTRUCTURE. Servers pass MIME
parameters through undecoded (Dovecot does), so part names arrive in every form mail clients
write: RFC 2047 encoded words (163, QQ, Foxmail), RFC 2231 `filename*` (Outlook, iPhone; with
`*0*`/`*1*` continuations on servers that do not merge them) and raw 8-bit UTF-8 (Thunderbird).

Nothing here raises on malformed or hostile input: an unreadable piece is skipped or kept as
best-effort text, because the worst outcome of a wrong guess is merely downloading a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from mailbot.mail.headers import decode_filename_params, header_bytes

# Content types that may carry a table even without a filename.
CSV_TYPES = frozenset({"text/csv", "text/x-csv", "text/comma-separated-values"})
MAX_DEPTH = 40  # deeper nesting is hostile; imapclient's own parser recurses as well


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
        disposition_params = raw_parameters(_at(disposition_field, 1))
    filename = decode_filename_params(disposition_params, raw_parameters(_at(node, 2)))
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


# -- MIME parameters --------------------------------------------------------------------------
# Decoded by the same rules as the downloaded message (mailbot.mail.headers), so a name reads the
# same before and after the download.


def raw_parameters(params: Any) -> dict[str, str]:
    """`(b"name", b"=?GBK?B?...?=", b"filename*", b"utf-8''%E5...")` as the raw-header mapping the
    decoder takes: lower-case keys as written (`filename*0*`), values with 8-bit bytes
    surrogate-escaped; the first of duplicate keys kept, pairs that are not bytes/str dropped."""
    if not isinstance(params, (tuple, list)):
        return {}
    raw: dict[str, str] = {}
    for index in range(0, len(params) - 1, 2):
        key, value = _ascii(params[index]), params[index + 1]
        if key is None or not isinstance(value, (bytes, str)):
            continue
        data = value if isinstance(value, bytes) else header_bytes(value)
        raw.setdefault(key.strip().lower(), data.decode("utf-8", "surrogateescape"))
    return raw
