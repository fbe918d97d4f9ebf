"""read_attachment: the readable tables in one attachment, or why there are none (SPEC 3.1).

Runs in the worker process, but is safe by itself: the size is checked before anything is
opened, the format comes from the content, and each reader guards its own library.
"""

from __future__ import annotations

import logging

from mailbot.config import Limits
from mailbot.errors import UnreadableFile
from mailbot.rules.model import Attachment, TableFile
from mailbot.tables.ziparchive import read_archive
from mailbot.tables.csvfile import read_csv
from mailbot.tables.docx import read_docx
from mailbot.tables.guards import check_attachment_size, refusal
from mailbot.tables.sniff import sniff_format
from mailbot.tables.xls import read_ole_workbook
from mailbot.tables.xlsx import read_zip_workbook

log = logging.getLogger(__name__)

UNNAMED = "未命名附件"


def read_attachment(att: Attachment, limits: Limits, sniffed: str | None = None) -> list[TableFile]:
    """The tables in `att` (a zip may give several), or UnreadableFile saying what it is.
    `sniffed`: its format as `sniff_format` gave it already (the analysis sniffs every attachment
    to tell pictures apart), so its directory is not read again."""
    filename = (att.filename or "").strip() or UNNAMED
    return read_table_bytes(att.data, filename, limits, allow_archive=True, fmt=sniffed)


def read_table_bytes(data: bytes, filename: str, limits: Limits, allow_archive: bool,
                     fmt: str | None = None) -> list[TableFile]:
    check_attachment_size(len(data), limits, filename)
    fmt = fmt or sniff_format(data, filename)
    try:
        return _read_format(data, fmt, filename, limits, allow_archive)
    except UnreadableFile:
        raise
    except Exception as exc:
        # A library choked on a file no guard foresaw. The school's file is what is broken, so
        # it is refused as corrupt; the traceback stays in the log for the operator.
        log.warning("reading %r as %s failed unexpectedly", filename, fmt, exc_info=True)
        raise refusal("corrupt", filename, f"{fmt} reader: {type(exc).__name__}: {exc}") from exc


def _read_format(data: bytes, fmt: str, filename: str, limits: Limits, allow_archive: bool) -> list[TableFile]:
    if fmt in ("xlsx", "xlsm", "ods"):
        return [read_zip_workbook(data, fmt, filename, limits)]
    if fmt == "docx":
        return [read_docx(data, filename, limits)]
    if fmt in ("xls", "et"):
        return [read_ole_workbook(data, fmt, filename, limits)]
    if fmt == "csv":
        table = read_csv(data, filename, limits)
        if table is None:
            raise refusal("unknown", filename, "text that is not a table")
        return [table]
    if fmt == "zip":
        if not allow_archive:
            raise refusal("nested_archive", filename, "an archive inside an archive is not opened")
        return read_archive(data, filename, limits,
                            lambda content, name: read_table_bytes(content, name, limits, allow_archive=False))
    raise refusal(fmt, filename, f"sniffed as {fmt}", limits=limits)
