"""One message as read from a mailbox or a file: whole, or its header section only.

A message's size is known before its bytes are read (IMAP's RFC822.SIZE, a file's `fstat`), so one
over the size limit is read as its header section alone and never whole into the main process,
which has no memory limit (SPEC 4: answered from its headers; its body neither downloaded nor
archived). IMAP reads it so in `mailbot.transports.imap`; files, here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mailbot.mail.structure import MAX_HEADER_BYTES, header_block


@dataclass(frozen=True)
class Fetched:
    raw: bytes  # the whole message, or only its header section (`whole` False)
    size: int  # the whole message's size in the mailbox (RFC822.SIZE, the file's size)
    whole: bool


def read_message_file(path: str | os.PathLike, max_bytes: int | None) -> Fetched:
    """A message file, measured before it is read: whole when it is at most `max_bytes` (None: any
    size), else its header section only; a file that grew past the limit while it was read likewise.
    Raises OSError."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if max_bytes is None:
            raw = file.read()
            return Fetched(raw, len(raw), whole=True)
        if size > max_bytes:
            raw = file.read(MAX_HEADER_BYTES + 4)
        else:
            # What fstat said, and one byte more to see it grew: a read of max_bytes + 1 at once
            # would allocate that much (30 MB) for every message and then give it back.
            raw = file.read(size + 1)
            if len(raw) > size:
                raw += file.read(max_bytes + 1 - len(raw))
        if size > max_bytes or len(raw) > max_bytes:
            return Fetched(header_block(raw), max(size, len(raw)), whole=False)
        return Fetched(raw, len(raw), whole=True)
