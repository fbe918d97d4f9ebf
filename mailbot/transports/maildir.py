"""A Maildir directory as a read-only inbox (SPEC 5).

For a bureau that runs its own mail server, and for the embedded demo. The Maildir is also
where staff read their mail, so this never renames, moves, flags or deletes anything: what has
been processed is remembered in the database, by key.

A file is measured before it is read: one over the size limit is read as its header section only
(`mailbot.transports.fetched.read_message_file`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from mailbot.errors import TransportError
from mailbot.transports.fetched import Fetched, read_message_file

log = logging.getLogger(__name__)

SUBDIRS = ("new", "cur")  # tmp/ holds deliveries still being written: never read it
INFO_SEPARATOR = ":"  # "1666.M1P2.host:2,S": the part after ":" changes when a client sets flags


class MaildirInbox:
    """Lists and reads the messages of one Maildir (an `Inbox` and its own session: nothing to open)."""

    source = "maildir"
    folder = "Maildir"  # the ledger's `folder` for Maildir mailboxes
    uidvalidity = 0  # keys never come back, so there is no UIDVALIDITY

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._delivered: dict[str, float] = {}  # key -> file time, from the last list_keys()

    @contextlib.contextmanager
    def session(self) -> Iterator["MaildirInbox"]:
        yield self

    def fetch_raw(self, keys: Sequence[str], batch_bytes: int = 0) -> Iterator[tuple[str, bytes]]:
        """(key, bytes) in the order given; a message removed by staff meanwhile is skipped.
        `batch_bytes` is IMAP's: local files are read one by one."""
        for key, fetched in self.fetch(keys):
            yield key, fetched.raw

    def fetch(self, keys: Sequence[str], batch_bytes: int = 0, max_bytes: int | None = None
              ) -> Iterator[tuple[str, Fetched]]:
        """As fetch_raw; a file over `max_bytes` is read as its header section only."""
        for key in keys:
            try:
                fetched = self._read(key, max_bytes)
            except TransportError as exc:  # removed by staff meanwhile: nothing left to read
                log.info("maildir %s: %s", self.path, exc)
                continue
            yield key, fetched

    def list_keys(self) -> list[str]:
        """Unique names of the messages in new/ and cur/, without the `:2,FLAGS` info suffix,
        oldest first (by file time, then name). A key stays the same when staff read or flag
        the message (that renames new/X to cur/X:2,S)."""
        found: dict[str, float] = {}
        for sub in SUBDIRS:
            directory = self.path / sub
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                raise TransportError(f"{self.path} is not a Maildir (no {sub}/ folder)") from None
            except OSError as exc:
                raise TransportError(f"cannot list {directory}: {exc.strerror}") from exc
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    mtime = entry.stat().st_mtime
                except OSError:  # renamed or deleted while we looked: it will be seen next time
                    continue
                key = message_key(entry.name)
                found[key] = min(mtime, found.get(key, mtime))
        self._delivered = found
        return sorted(found, key=lambda key: (found[key], key))

    def delivered_at(self, key: str) -> datetime | None:
        """When the message was delivered (its file's time, as of the last `list_keys`): what
        SPEC 5 measures the reply age from. None for a key not listed."""
        stamp = self._delivered.get(key)
        return None if stamp is None else datetime.fromtimestamp(stamp, timezone.utc)

    def read(self, key: str) -> bytes:
        """The message's bytes exactly as stored. Raises TransportError when it is gone."""
        return self._read(key, None).raw

    def _read(self, key: str, max_bytes: int | None) -> Fetched:
        if not is_valid_key(key):
            raise TransportError(f"{key!r} is not a Maildir message key")
        # Staff's mail client may move the file from new/ to cur/ at any moment: look twice.
        for _attempt in range(2):
            for sub in SUBDIRS:
                path = self._find(sub, key)
                if path is None:
                    continue
                try:
                    return read_message_file(path, max_bytes)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise TransportError(f"cannot read {path}: {exc.strerror}") from exc
        raise TransportError(f"message {key} is no longer in {self.path}")

    def _find(self, sub: str, key: str) -> Path | None:
        directory = self.path / sub
        exact = directory / key
        if exact.is_file():
            return exact
        try:
            names = os.listdir(directory)
        except OSError:
            return None
        for name in names:
            if name.startswith(key + INFO_SEPARATOR):
                return directory / name
        return None


def message_key(filename: str) -> str:
    """`1666.M1P2.host:2,S` -> `1666.M1P2.host`."""
    return filename.split(INFO_SEPARATOR, 1)[0]


def is_valid_key(key: str) -> bool:
    return (
        isinstance(key, str)
        and bool(key)
        and not key.startswith(".")
        and not any(ch in key for ch in ("/", "\\", "\0", INFO_SEPARATOR))
    )
