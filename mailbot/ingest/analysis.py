"""Everything done to a message's untrusted bytes: MIME parsing and table extraction.

Runs in a worker process (mailbot.ingest.isolation) so that hostile input costs a worker, not the
daemon; the result is plain data for the pipeline's decisions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from mailbot.config import Limits
from mailbot.errors import UnreadableFile
from mailbot.ingest.isolation import Extracted, extract_attachment
from mailbot.mail.parse import parse_message, parse_message_shaped
from mailbot.mail.structure import header_block
from mailbot.rules.model import Attachment, ParsedMessage
from mailbot.tables.guards import refusal
from mailbot.tables.sniff import READABLE, sniff_format

MAX_ATTACHMENTS = 20
# Of the worker's time limit, the share the attachments of one message may use, and the share any
# one of them may: four slow files still leave the message decided inside the limit.
MESSAGE_BUDGET_SHARE = 2 / 3
ATTACHMENT_BUDGET_SHARE = 1 / 6

_PICTURE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".heic")

# What the school reads when the message itself was too complex to open (mailbot.mail.structure).
_SEND_AGAIN = "请新写一封邮件，直接添加填写好的汇总表（.xlsx、.xls 或 .docx）后发送。"
STRUCTURE_PROBLEMS = {
    "too_deep": "这封邮件的结构异常：邮件内容被层层嵌套了很多层，为安全起见系统没有打开其中的附件。" + _SEND_AGAIN,
    "too_many_parts": "这封邮件包含的部分过多（超过两千个），为安全起见系统没有逐一打开其中的附件。" + _SEND_AGAIN,
    "too_many_messages": "这封邮件中夹带的转发邮件过多，为安全起见系统没有逐一打开其中的附件。" + _SEND_AGAIN,
}
UNREAD_PART = "这封邮件中有一部分内容无法解码（可能在发送途中损坏），系统没能读取其中的附件。" + _SEND_AGAIN


@dataclass
class Analysis:
    message: ParsedMessage  # attachments without their bytes (they are not needed any more)
    extracted: list[Extracted]  # one per attachment, in order (photos as unread "image" files)
    pictures: list[str | None]  # names of photos and scans (never a table)
    oversized: bool = False  # only the headers were parsed


def is_picture(att: Attachment, sniffed: str) -> bool:
    """A photo or scan, by its content (SPEC 3.1): a table sent as image/jpeg is still read, and a
    part only declared a picture stays one unless its bytes are a table format."""
    if sniffed == "image":
        return True
    name = (att.filename or "").lower()
    declared = att.content_type.startswith("image/") or name.endswith(_PICTURE_EXTENSIONS)
    return declared and sniffed not in READABLE


def analyse_archived(source: bytes | str, limits: Limits, tz_name: str, message_bytes: int | None = None) -> Analysis:
    """`analyse`, given the path of the archived message (read here, in the worker, so the main
    process sends a path down the pipe instead of the bytes it has just archived) or its bytes."""
    if isinstance(source, str):
        with open(source, "rb") as f:
            source = f.read()
    return analyse(source, limits, tz_name, message_bytes)


def analyse(raw: bytes, limits: Limits, tz_name: str, message_bytes: int | None = None) -> Analysis:
    """Parse the message and read every attachment that may hold a table. An oversized message is
    parsed from its headers alone; so is one whose structure is hostile, with the reason.
    `message_bytes`: the message's size when `raw` holds only its header (read so, over the size
    limit); None when `raw` is the whole message."""
    started = time.monotonic()
    tz = ZoneInfo(tz_name)
    if (len(raw) if message_bytes is None else message_bytes) > limits.max_message_bytes:
        return Analysis(parse_message(header_block(raw), default_tz=tz), [], [], oversized=True)
    message, problem = parse_message_shaped(raw, default_tz=tz)
    if problem in STRUCTURE_PROBLEMS:
        refused = UnreadableFile("mail_structure", STRUCTURE_PROBLEMS[problem], f"message structure: {problem}")
        return Analysis(message, [Extracted(None, [], refused)], [])
    sniffed = [sniff_format(att.data, att.filename) for att in message.attachments]
    pictures = [a.filename for a, kind in zip(message.attachments, sniffed) if is_picture(a, kind)]
    message_budget = limits.worker_timeout_seconds * MESSAGE_BUDGET_SHARE
    extracted = []
    read = 0
    for att, kind in zip(message.attachments, sniffed):
        if is_picture(att, kind):
            # Not read, but said for what it is: a rejection names each file the school sent.
            extracted.append(Extracted(att.filename, [], refusal("image", att.filename, f"picture ({kind})")))
            continue
        if read >= MAX_ATTACHMENTS:
            continue
        read += 1
        remaining = message_budget - (time.monotonic() - started)
        budget = max(0.05, min(limits.worker_timeout_seconds * ATTACHMENT_BUDGET_SHARE, remaining))
        extracted.append(extract_attachment(att, limits, budget, kind))
    if message.unread_parts:  # said, never silently dropped: a registered sender's mail is then rejected
        extracted.append(Extracted(None, [], UnreadableFile("mail_part", UNREAD_PART,
                                                            f"{message.unread_parts} MIME part(s) could not be decoded")))
    message.attachments = [replace(a, data=b"") for a in message.attachments]
    return Analysis(message, extracted, pictures)
