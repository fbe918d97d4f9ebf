"""The checks that refuse a hostile or unreadable file, and the plain Chinese each refusal says.

Every check here runs *before* a parser sees the bytes: sizes come from the zip directory, members
are inflated through a reader that stops at the declared size, and XML declarations are refused,
never expanded (SPEC 3.1, 4). The readers call these; nothing here decides which reader to use.
"""

from __future__ import annotations

import html
import os
import re
import signal
import struct
import threading
import zipfile
import zlib
from contextlib import contextmanager
from typing import Iterator

from mailbot.config import Limits
from mailbot.errors import UnreadableFile

# What zipfile raises on a damaged archive (an unknown "version needed" gives NotImplementedError).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, ValueError, EOFError)

MAX_COLUMNS = 100  # a submission table has about ten; anything past this is stray input
MAX_ZIP_MEMBERS = 2000  # an xlsx has a few dozen parts; thousands is an attack or not a table
MAX_RATIO = 1000  # deflate tops out near 1032:1, so only crafted members get near it
RATIO_CHECK_FROM = 1024 * 1024  # small members may compress absurdly well (runs of spaces)
# A grid calamine may allocate densely (it allocates rows x columns, 32 bytes a cell, and
# aborts the whole process when that fails): 2 million cells is about 64 MB.
MAX_DENSE_CELLS = 2_000_000

# Kinds that are not a try at sending the table (a signature logo, a photo of the stamped form):
# they never count as a problem of a message that has a table.
NOT_A_TABLE_KINDS = frozenset({"image", "pdf", "unknown", "empty", "rtf"})

_ASK_FOR_TABLE = "请发送 .xlsx、.xls 或 .docx 格式的表格文件"

# One sentence per kind; {name} is the file as the school knows it (「附件《x.doc》」).
_MESSAGES = {
    "doc": "{name}是旧版 Word（.doc）文件，系统无法读取，请另存为 .docx 或 .xlsx 后重新发送。",
    "wps": "{name}是 WPS 文字（.wps）文件，系统无法读取，请在 WPS 中另存为 .docx 或 .xlsx 后重新发送。",
    "rtf": "{name}是 RTF 格式文档，系统无法读取，请另存为 .docx 或 .xlsx 后重新发送。",
    "rar": "{name}是 RAR 压缩包，系统无法解压。" + _ASK_FOR_TABLE + "（无需压缩；如需压缩请用 .zip）。",
    "7z": "{name}是 7z 压缩包，系统无法解压。" + _ASK_FOR_TABLE + "（无需压缩；如需压缩请用 .zip）。",
    "encrypted": "{name}设置了打开密码，系统无法读取。请取消密码后重新发送 .xlsx、.xls 或 .docx 文件。",
    "image": "{name}是一张图片，看起来是盖章表格的照片或扫描件。系统需要表格文件本身，"
             "请另外附上填好的 .xlsx、.xls 或 .docx 文件（盖章扫描件可一并保留）。",
    "pdf": "{name}是 PDF 文件，看起来是盖章表格的扫描件。系统需要表格文件本身，"
           "请另外附上填好的 .xlsx、.xls 或 .docx 文件（盖章扫描件可一并保留）。",
    "too_large": "{name}超过了系统可接收的大小（{limit_mb} MB），请删除表格中的图片等无关内容后，"
                 "重新发送 .xlsx、.xls 或 .docx 文件。",
    "zip_bomb": "{name}解压后的内容异常庞大，为安全起见系统没有打开它。请用 Excel 或 WPS 重新保存表格后，"
                "再发送 .xlsx、.xls 或 .docx 文件。",
    "xml_entities": "{name}含有不安全的 XML 声明，为安全起见系统没有打开它。请用 Excel 或 WPS 打开后另存为"
                    "新的 .xlsx 或 .docx 文件再发送。",
    "corrupt": "{name}已损坏或不完整，无法打开。请用 Excel 或 WPS 重新保存后，再发送 .xlsx、.xls 或 .docx 文件。",
    "too_slow": "{name}内容过于庞大或复杂，系统未能在限定时间内读完。请删除与汇总表无关的工作表、图片和大量公式后，"
                "另存为 .xlsx 再发送。",
    "xlsb": "{name}是 Excel 二进制工作簿（.xlsb），系统无法读取。请在 Excel 中另存为“Excel 工作簿（.xlsx）”后重新发送。",
    "biff_old": "{name}是很旧的 Excel 格式（Excel 4.0 及更早版本），系统无法读取。请用 Excel 或 WPS 打开后另存为 .xlsx "
                "再发送。",
    "fods": "{name}是平面 XML 格式的电子表格（.fods），系统无法读取。请在 WPS 或 LibreOffice 中另存为 .xlsx 或 .ods "
            "后重新发送。",
    "xml_spreadsheet": "{name}是 Excel 2003 XML 格式的表格，系统无法读取。请用 Excel 或 WPS 打开后另存为 .xlsx 再发送。",
    "odf_text": "{name}是 OpenDocument 文字或演示文档（如 .odt），不是电子表格，系统无法从中读取表格。请把汇总表"
                "另存为 .xlsx 或 .docx 后重新发送。",
    "office_other": "{name}是 Office 文档（如 PowerPoint 演示文稿），但不是 Excel 表格或 Word 文档。" + _ASK_FOR_TABLE + "。",
    "html": "{name}实际上是网页（HTML）文件，不是表格文件。请用 Excel 或 WPS 打开后另存为 .xlsx 再发送。",
    "nested_archive": "{name}是压缩包里的压缩包，系统只打开一层压缩包。请把表格文件直接作为附件发送，"
                      "或只压缩一层后再发送。",
    "empty": "{name}是空文件（0 字节），可能没有上传成功，请重新添加附件后发送。",
    "no_table": "{name}中没有找到表格文件{found}。" + _ASK_FOR_TABLE + "。",
    "unknown": "{name}不是系统能识别的表格文件。" + _ASK_FOR_TABLE + "。",
}


class OverTime(BaseException):
    """A file took longer than its time budget. A BaseException so that no reader's own
    `except Exception` turns it into "corrupt": it must reach the one place that reports it."""


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise OverTime in the block after `seconds` of wall time (SIGALRM, so only in the main thread,
    which is where the worker runs its jobs; elsewhere, and for None, there is no budget)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise OverTime(f"over the {seconds:.1f} s budget")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def describe_file(filename: str | None, archive: str | None = None) -> str:
    """How a message names the file: 「附件《a.xlsx》」 or 「附件《b.zip》中的《a.xlsx》」."""
    shown = f"《{filename}》" if filename else ""
    if archive:
        return f"附件《{archive}》中的{shown or '文件'}"
    return f"附件{shown}"


def refusal(kind: str, filename: str | None, detail: str = "", archive: str | None = None,
            limits: Limits | None = None, found: list[str] | None = None, worded_as: str | None = None
            ) -> UnreadableFile:
    """The UnreadableFile for `kind`, with the Chinese sentence the school will read. `found` lists
    what an archive held instead of a table; `worded_as` takes another kind's sentence (an archive of
    photos keeps the kind "image" but says what the archive held)."""
    limit_mb = (limits or Limits()).max_attachment_bytes // (1024 * 1024)
    template = _MESSAGES.get(worded_as or kind, _MESSAGES["unknown"])
    listed = "（里面只有" + "、".join(f"《{name}》" for name in found[:5]) + ("等文件" if len(found) > 5 else "") + "）" \
        if found else ""
    message = template.format(name=describe_file(filename, archive), limit_mb=limit_mb, found=listed)
    return UnreadableFile(kind, message, detail or kind)


def check_attachment_size(size: int, limits: Limits, filename: str | None) -> None:
    """A table file over max_attachment_bytes is refused by its size, as soon as that is known (a
    file's `stat`, before it is read)."""
    if size > limits.max_attachment_bytes:
        raise refusal("too_large", filename, f"{size} bytes > max_attachment_bytes "
                      f"{limits.max_attachment_bytes}", limits=limits)


def read_table_file(path, limits: Limits, filename: str | None) -> bytes:
    """A table file's bytes, its size checked first (`fstat`) and the read bounded by the limit, so
    a huge (or sparse) file is refused without being read. Raises UnreadableFile or OSError."""
    with open(path, "rb") as file:
        check_attachment_size(os.fstat(file.fileno()).st_size, limits, filename)
        data = file.read(limits.max_attachment_bytes + 1)
    check_attachment_size(len(data), limits, filename)  # it grew while it was read
    return data


def check_zip_directory(zf: zipfile.ZipFile, limits: Limits, filename: str | None) -> None:
    """Refuse a zip whose central directory promises too much, before inflating anything."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise refusal("zip_bomb", filename, f"{len(infos)} zip members > {MAX_ZIP_MEMBERS}")
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        raise refusal("zip_bomb", filename, f"zip directory declares {total} uncompressed bytes > "
                      f"max_uncompressed_bytes {limits.max_uncompressed_bytes}")
    for info in infos:
        if info.file_size > RATIO_CHECK_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise refusal("zip_bomb", filename, f"member {info.filename!r} declares ratio "
                          f"{info.file_size}:{info.compress_size}")


def inflate_member(data: bytes, zf: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str | None) -> bytes:
    """The member's bytes, refusing one that inflates to more than its directory entry declares.

    Stored and deflated members (all that Office, WPS and Windows write) are inflated here from
    the raw bytes with an output cap, so a lying directory cannot make us inflate gigabytes; other
    methods go through zipfile, which also stops at the declared size.
    """
    if info.flag_bits & 0x1:
        raise refusal("encrypted", filename, f"zip member {info.filename!r} is encrypted")
    declared = info.file_size
    if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raw = _raw_member_bytes(data, info, filename)
        if info.compress_type == zipfile.ZIP_STORED:
            out = raw
        else:
            try:
                inflater = zlib.decompressobj(-15)
                out = inflater.decompress(raw, declared + 1)
            except zlib.error as exc:
                raise refusal("corrupt", filename, f"member {info.filename!r}: {exc}") from exc
        if len(out) > declared and not _ends_soon(inflater, raw, declared):
            raise refusal("zip_bomb", filename, f"member {info.filename!r} inflates past its declared "
                          f"{declared} bytes")
    else:
        try:
            with zf.open(info) as member:
                out = member.read(declared + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError, ValueError) as exc:
            raise refusal("corrupt", filename, f"member {info.filename!r}: {exc}") from exc
    if len(out) != declared or zlib.crc32(out) != info.CRC:
        raise refusal("corrupt", filename, f"member {info.filename!r}: size or CRC differs from the directory")
    return out


def _ends_soon(inflater, raw: bytes, declared: int) -> bool:
    """Whether a member that inflated past its declared size stops soon after: a damaged member (a
    bad CRC, a flipped bit) then, which is refused as corrupt by the size and CRC check, not a bomb.
    At most four times the declared size plus 64 KB more is inflated to find out."""
    budget = 4 * declared + 65536
    try:
        while budget > 0 and not inflater.eof:
            tail = inflater.unconsumed_tail
            chunk = inflater.decompress(tail, min(budget, 65536)) if tail else inflater.flush()
            budget -= len(chunk)
            if not tail and not chunk:
                break
    except zlib.error:
        return True  # the stream breaks off: damaged
    return budget > 0


def _raw_member_bytes(data: bytes, info: zipfile.ZipInfo, filename: str | None) -> bytes:
    start = info.header_offset
    header = data[start:start + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise refusal("corrupt", filename, f"member {info.filename!r}: bad local header")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    begin = start + 30 + name_len + extra_len
    raw = data[begin:begin + info.compress_size]
    if len(raw) < info.compress_size:
        raise refusal("corrupt", filename, f"member {info.filename!r} is truncated")
    return raw


def inflate_all(data: bytes, zf: zipfile.ZipFile, limits: Limits, filename: str | None) -> dict[str, bytes]:
    """Every file member, inflated and verified; the total stays under max_uncompressed_bytes."""
    check_zip_directory(zf, limits, filename)
    members: dict[str, bytes] = {}
    total = 0
    for info in zf.infolist():
        if info.is_dir():
            continue
        content = inflate_member(data, zf, info, filename)
        total += len(content)
        if total > limits.max_uncompressed_bytes:  # unreachable unless the directory lied
            raise refusal("zip_bomb", filename, "members inflate past max_uncompressed_bytes")
        members[info.filename] = content
    return members


# Entity declarations are what expand (SPEC 4); a bare DOCTYPE, as in the Basic macro parts of a
# LibreOffice file, declares nothing, and no reader here loads a DTD.
_DECLARATION = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)
_BINARY_FOLDERS = ("/media/", "/embeddings/", "/printerSettings/")


def looks_like_xml_part(name: str, content: bytes) -> bool:
    """Parts a parser may read as XML: by name, or by content for parts renamed to hide."""
    if any(folder in "/" + name for folder in _BINARY_FOLDERS):
        return False  # images (SVG too) are never parsed by the readers
    lower = name.lower()
    if lower.endswith((".xml", ".rels", ".vml")):
        return True
    head = content[:64].lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n\x00")
    return head.startswith(b"<")


def refuse_xml_declarations(parts: dict[str, bytes], filename: str | None) -> None:
    """Refuse any XML part carrying an entity declaration (SPEC 4)."""
    for name, content in parts.items():
        if not looks_like_xml_part(name, content):
            continue
        text = content
        if content[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00<" in content[:8] or b"<\x00" in content[:8]:
            text = _utf16_text(content)  # UTF-16 XML would hide the declaration from a byte search
        if _DECLARATION.search(text):
            raise refusal("xml_entities", filename, f"part {name!r} declares an XML entity")


def _utf16_text(content: bytes) -> bytes:
    encoding = "utf-16"
    if content[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16-le" if content[1:2] == b"\x00" else "utf-16-be"
    return content.decode(encoding, errors="replace").encode("utf-8")


# calamine reserves memory for the count an `<sst>` start tag declares before reading one string,
# and a failed reservation aborts the process. The tag is read here as an XML reader reads it:
# wherever it stands, attributes quoted, padded or escaped as they may be. A real one is a couple of
# hundred bytes; one that does not end within MAX_START_TAG_BYTES is not a table's.
MAX_START_TAG_BYTES = 65536
_SST_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?sst(?=[\s/>])")
_ATTRIBUTE = re.compile(rb"\s+([^\s=/>]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_TAG_END = re.compile(rb"\s*/?>")
_COUNT = re.compile(r"\+?[0-9]+")


def check_shared_string_counts(parts: dict[str, bytes], filename: str | None) -> None:
    """Refuse a shared-string table whose declared count (`count`, `uniqueCount`) no file of this
    size could hold, or whose start tag does not end within MAX_START_TAG_BYTES."""
    cells_possible = sum(len(content) for content in parts.values()) // 10 + 1000
    for name, content in parts.items():
        if not name.lower().endswith("sharedstrings.xml"):
            continue
        if content[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00<" in content[:8] or b"<\x00" in content[:8]:
            content = _utf16_text(content)
        for start in _SST_START.finditer(content):
            for attribute, value in _start_tag_attributes(content, start.end(), name, filename):
                if attribute.rpartition(b":")[2] not in (b"count", b"uniqueCount"):
                    continue
                text = html.unescape(value.decode("utf-8", errors="replace"))  # "&#52;" is "4" to a reader
                if _COUNT.fullmatch(text) and int(text) > cells_possible:
                    raise refusal("corrupt", filename, f"{name} declares {int(text)} strings "
                                  f"(a file this size holds at most {cells_possible})")


def _start_tag_attributes(xml: bytes, position: int, part: str, filename: str | None) -> list[tuple[bytes, bytes]]:
    """The attributes of the start tag whose name ends at `position`, up to its `>`."""
    limit = position + MAX_START_TAG_BYTES
    found = []
    while (attribute := _ATTRIBUTE.match(xml, position, limit)) is not None:
        found.append((attribute.group(1), attribute.group(2) if attribute.group(2) is not None else attribute.group(3)))
        position = attribute.end()
    if _TAG_END.match(xml, position, limit) is None and len(xml) > limit:
        raise refusal("corrupt", filename, f"{part}: a start tag runs past {MAX_START_TAG_BYTES} bytes")
    return found


def checked_zip_parts(data: bytes, limits: Limits, filename: str) -> dict[str, bytes]:
    """Every part of a zip-based document (xlsx, ods, docx), inflated within the limits and with no
    XML declarations, or UnreadableFile."""
    import io

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as exc:
        raise refusal("corrupt", filename, f"bad zip: {exc}") from exc
    parts = inflate_all(data, zf, limits, filename)
    refuse_xml_declarations(parts, filename)
    return parts
