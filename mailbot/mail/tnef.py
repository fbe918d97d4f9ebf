"""Unwrap Outlook's `winmail.dat` (TNEF, `application/ms-tnef`) into the files it carries."""

from __future__ import annotations

import logging
import mimetypes
import struct

from mailbot.mail.headers import clean_filename, decode_bytes
from mailbot.rules.model import Attachment

log = logging.getLogger(__name__)

TNEF_CONTENT_TYPES = {"application/ms-tnef", "application/vnd.ms-tnef"}
MAX_TNEF_ATTACHMENTS = 100
MAX_TNEF_NESTING = 3

_SIGNATURE = 0x223E9F78
_IMESSAGE_SIGNATURE = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_MAPI_PROPS, _RECIPIENTS, _ATTACHMENT_PROPS = 0x9003, 0x9004, 0x9005
_ATTACH_DATA_OBJ = 0x3701
_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4,
                0x0005: 8, 0x0007: 8, 0x0006: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_VARIABLE_TYPES = {0x001E, 0x001F, 0x000D, 0x0102, 0x0000}


def is_tnef(content_type: str, filename: str | None) -> bool:
    """Whether a part is a TNEF wrapper, by its declared type or Outlook's fixed file name."""
    return content_type in TNEF_CONTENT_TYPES or (filename or "").lower() == "winmail.dat"


def _text(value: object, codepage: str | None) -> str:
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), codepage)[0]
    return str(value or "").rstrip("\x00")


def _attachment_name(attachment: object, codepage: str | None) -> str | None:
    # The long (MAPI) name is the one the user saw; the 8.3 title is a fallback.
    from tnefparse import properties  # local import: tnefparse is only needed for winmail.dat

    for attr in getattr(attachment, "mapi_attrs", []):
        if attr.name == properties.MAPI_ATTACH_LONG_FILENAME:
            data = attr.data[0] if isinstance(attr.data, list) and attr.data else attr.data
            name = clean_filename(_text(data, codepage))
            if name:
                return name
    return clean_filename(_text(getattr(attachment, "_name", b""), codepage))


def _u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


def _u16(data: bytes, offset: int) -> int:
    return struct.unpack_from("<H", data, offset)[0]


def _check_mapi(data: bytes, offset: int, depth: int) -> int:
    """Walk a MAPI property list as tnefparse will, refusing counts larger than the bytes left:
    tnefparse loops over declared counts without bounds, so a forged count would hang it."""
    count = _u32(data, offset)
    offset += 4
    if count > (len(data) - offset) // 4 + 1:
        raise ValueError("MAPI property count exceeds data")
    for _ in range(count):
        if offset >= len(data):
            break
        prop_type, prop_name = _u16(data, offset), _u16(data, offset + 2)
        offset += 4
        if prop_name >= 0x8000:  # named property: GUID, then a number or a name
            kind = _u32(data, offset + 16)
            offset += 20
            if kind == 0:
                offset += 4
            else:
                name_length = _u32(data, offset)
                offset += 4 + name_length + (-name_length % 4)
        values = 1
        multi = bool(prop_type & 0x1000)
        if multi:
            prop_type ^= 0x1000
            values = _u32(data, offset)
            offset += 4
            if values > (len(data) - offset) // 2 + 1:
                raise ValueError("MAPI value count exceeds data")
        for _ in range(values):
            if prop_type in _FIXED_SIZES:
                offset += _FIXED_SIZES[prop_type]
            elif prop_type in _VARIABLE_TYPES:
                items = 1 if multi else _u32(data, offset)
                offset += 0 if multi else 4
                if items > (len(data) - offset) // 4 + 1:
                    raise ValueError("MAPI item count exceeds data")
                for _ in range(items):
                    length = _u32(data, offset)
                    offset += 4
                    item = data[offset : offset + length]
                    if prop_name == _ATTACH_DATA_OBJ and item.startswith(_IMESSAGE_SIGNATURE):
                        _check_tnef(item[len(_IMESSAGE_SIGNATURE) :], depth + 1)
                    offset += length + (-length % 4)
            else:
                return offset  # tnefparse stops at an unknown type too
        if values % 2 and prop_type in (0x0002, 0x000B):
            offset += 2
    return offset


def _check_tnef(data: bytes, depth: int = 0) -> None:
    """Raise ValueError (or struct.error) unless tnefparse can walk `data` in bounded time."""
    if depth > MAX_TNEF_NESTING:
        raise ValueError("TNEF nested too deeply")
    if _u32(data, 0) != _SIGNATURE:
        raise ValueError("not TNEF")
    offset = 6
    while offset + 12 < len(data):
        name = _u16(data, offset + 1)
        length = min(len(data) - offset, _u32(data, offset + 5) + 11)
        body = data[offset + 9 : offset + length - 2]
        if name in (_MAPI_PROPS, _ATTACHMENT_PROPS):
            _check_mapi(body, 0, depth)
        elif name == _RECIPIENTS:
            rows = _u32(body, 0)
            if rows > len(body) // 4:
                raise ValueError("TNEF recipient count exceeds data")
            row_offset = 4
            for _ in range(rows):
                row_offset = _check_mapi(body, row_offset, depth)
        offset += length


def unwrap_tnef(data: bytes) -> list[Attachment] | None:
    """The files inside a TNEF blob, with origin "tnef"; None when it cannot be unwrapped or
    holds no file (the caller then keeps the original part)."""
    try:
        from tnefparse import TNEF

        _check_tnef(data)
        tnef = TNEF(data, do_checksum=False)
        codepage = getattr(tnef, "codepage", None)
        found: list[Attachment] = []
        for attachment in tnef.attachments[:MAX_TNEF_ATTACHMENTS]:
            payload = attachment.data if isinstance(attachment.data, bytes) else b""
            name = _attachment_name(attachment, codepage)
            content_type = (mimetypes.guess_type(name)[0] if name else None) or "application/octet-stream"
            found.append(
                Attachment(filename=name, content_type=content_type, data=payload, origin="tnef")
            )
    except Exception as error:  # hostile input: tnefparse raises many kinds of errors
        log.info("could not unwrap TNEF (%d bytes): %r", len(data), error)
        return None
    return found or None
