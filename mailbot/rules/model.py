"""Plain data passed between the pipeline's stages. No behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

# A cell value as the readers give it: text, numbers, booleans, dates, or None for blank.
# Formula errors (#REF!, #DIV/0!) arrive as CellError so they are never mistaken for text.
Cell = Union[str, int, float, bool, datetime, None, "CellError"]


@dataclass(frozen=True)
class CellError:
    """A spreadsheet error value (`#REF!`) or a formula without a cached value (code "nocache")."""

    code: str


@dataclass
class Attachment:
    """One part of a message that may hold a table (or tells us what the school tried to send)."""

    filename: str | None  # decoded name as the school's client wrote it; never used as a path
    content_type: str  # lower-case, as declared (often wrong: application/octet-stream)
    data: bytes
    disposition: str = "attachment"  # "attachment" or "inline"
    origin: str = "part"  # "part", "rfc822" (inside a forwarded message), "tnef" (winmail.dat)


@dataclass
class ParsedMessage:
    """What the pipeline needs from one email, decoded."""

    message_id: str | None  # without angle brackets
    from_addr: str  # lower-case address, "" when absent
    from_name: str
    to_addrs: list[str]
    subject: str
    date: datetime | None  # aware; None when missing or unparseable
    received_date: datetime | None  # time of the newest Received header, aware
    in_reply_to: list[str]
    references: list[str]
    text_body: str
    html_body: str
    attachments: list[Attachment]
    # Facts for classification (SPEC 4), taken from the headers as they are:
    auto_submitted: str | None = None
    precedence: str | None = None
    x_autoreply: bool = False
    list_id: bool = False
    is_report: bool = False  # multipart/report (bounces, read receipts)
    auth_failed: bool = False  # Authentication-Results says spf=fail or dkim=fail for From's domain
    big_attachment_links: list[str] = field(default_factory=list)  # QQ 超大附件 and similar links
    reply_to: list[str] = field(default_factory=list)
    mailbot_marker: bool = False  # carries our own X-Mailbot header: mail from mailbot itself
    unread_parts: int = 0  # MIME parts (or the whole body) that could not be decoded: never silently gone


@dataclass
class Sheet:
    """One sheet (or one table of a Word document) as a grid of cells."""

    name: str
    rows: list[list[Cell]]
    # Merged ranges as (first_row, first_col, last_row, last_col), 0-based, inclusive.
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class TableFile:
    """A readable table file found in an attachment (a zip may give several)."""

    filename: str  # for messages to the school, e.g. "2022年10月汇总表.xlsx"
    format: str  # "xlsx", "xlsm", "xls", "et", "ods", "csv", "docx"
    sheets: list[Sheet]


@dataclass
class RawRow:
    """One data row under a recognised header, values still as written."""

    sheet: str
    row_number: int  # 1-based, as the school sees it in Excel
    cells: dict[str, Cell]  # keys: school, schools_count, enrolled, participating, two_plus_n, services
    columns: dict[str, str]  # key -> column letter, for messages ("C列")
    mode: str | None = None  # mode sub-column layout: the marked mode ("2+1", "2+2", "2+3", "2+N")
    mode_cells: dict[str, Cell] = field(default_factory=dict)  # mode label -> cell, as written


@dataclass
class RawTable:
    """A table found in one sheet: title text above the header, and its data rows."""

    file: str  # TableFile.filename
    sheet: str
    title_text: str  # the rows above the header joined, for finding the month
    header_row: int  # 1-based
    layout: str  # "single" or "modes"
    rows: list[RawRow]


@dataclass
class RowResult:
    """One row after value parsing and validation."""

    sheet: str
    row_number: int
    school_as_written: str
    school: str | None = None  # roster name once identified
    schools_count: int | None = None
    enrolled: int | None = None
    participating: int | None = None
    two_plus_n: bool | None = None
    services: list[str] = field(default_factory=list)  # extension services only
    n: int | None = None
    month: str | None = None  # "YYYY-MM"
    errors: list[str] = field(default_factory=list)  # plain Chinese, with sheet/row/column
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors
