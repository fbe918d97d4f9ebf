"""Builders of small table files for the reader tests, made in memory (no binary blobs)."""

from __future__ import annotations

import email
import email.policy
import io
import re
import struct
import zipfile
from pathlib import Path

import openpyxl

from mailbot.rules.model import Attachment

SAMPLES = Path(__file__).parent / "samples"


def sample_attachments(eml: Path) -> list[Attachment]:
    """The named, non-image attachments of a sample message, via the stdlib parser (message/rfc822
    parts are walked into, as the real MIME parser does)."""
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    found = []
    for part in message.walk():
        if part.is_multipart() or not part.get_filename() or part.get_content_maintype() == "image":
            continue
        found.append(Attachment(part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b""))
    return found


def make_xlsx(rows: list[list[object]], sheet_name: str = "Sheet1", merged: tuple[str, ...] = (),
              extra_sheets: dict[str, list[list[object]]] | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = sheet_name
    for row in rows:
        sheet.append(row)
    for cell_range in merged:
        sheet.merge_cells(cell_range)
    for name, extra_rows in (extra_sheets or {}).items():
        extra = workbook.create_sheet(name)
        for row in extra_rows:
            extra.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def zip_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def build_zip(parts: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, content in parts.items():
            zf.writestr(name, content)
    return out.getvalue()


def edit_part(data: bytes, part: str, edit) -> bytes:
    """The same zip with one part's bytes replaced by edit(old_bytes)."""
    parts = zip_parts(data)
    parts[part] = edit(parts[part])
    return build_zip(parts)


def sub(pattern: bytes, replacement: bytes):
    return lambda content: re.sub(pattern, replacement, content, count=1)


def zip_with_cp936_names(members: dict[str, bytes]) -> bytes:
    """A zip as Windows "Send to compressed folder" writes it: GBK names, no UTF-8 flag."""
    out = io.BytesIO()
    placeholders = {}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for index, (name, content) in enumerate(members.items()):
            raw = name.encode("gbk")
            # zipfile would write a non-ASCII name as flagged UTF-8, so write an ASCII name of the
            # same length and put the GBK bytes in its place afterwards (names are not in the CRC).
            placeholder = f"~{index}~".ljust(len(raw), "x").encode("ascii")
            placeholders[placeholder] = raw
            zf.writestr(placeholder.decode("ascii"), content)
    data = out.getvalue()
    for placeholder, raw in placeholders.items():
        assert data.count(placeholder) == 2  # the local header and the central directory
        data = data.replace(placeholder, raw)
    return data


def shrink_declared_size(data: bytes, member: str, declared: int) -> bytes:
    """Make the central directory lie: `member` claims `declared` uncompressed bytes."""
    buffer = bytearray(data)
    position = buffer.find(b"PK\x01\x02")
    while position != -1:
        name_len = struct.unpack_from("<H", buffer, position + 28)[0]
        name = bytes(buffer[position + 46:position + 46 + name_len]).decode("utf-8", "replace")
        if name == member:
            struct.pack_into("<I", buffer, position + 24, declared)
        position = buffer.find(b"PK\x01\x02", position + 4)
    return bytes(buffer)


def rename_ole_stream(ole_data: bytes, old: str, new: str) -> bytes:
    """The same compound file with a directory entry renamed (e.g. Workbook -> WordDocument)."""
    buffer = bytearray(ole_data)
    old_bytes = old.encode("utf-16-le") + b"\x00\x00"
    position = buffer.find(old_bytes)
    assert position != -1, f"no OLE entry named {old}"
    new_bytes = new.encode("utf-16-le") + b"\x00\x00"
    assert len(new_bytes) <= 64
    buffer[position:position + 64] = new_bytes.ljust(64, b"\x00")
    struct.pack_into("<H", buffer, position + 64, len(new_bytes))
    return bytes(buffer)


def sample_xls() -> bytes:
    eml = next(SAMPLES.glob("cases/003-*/message.eml"))
    return sample_attachments(eml)[0].data


def biff_record(record: int, body: bytes) -> bytes:
    return struct.pack("<HH", record, len(body)) + body
