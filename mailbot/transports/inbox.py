"""The one interface polling reads a mailbox through (SPEC 5); IMAP and Maildir implement it.

A session is one look at the mailbox: the ledger coordinates of what it holds (`folder`,
`uidvalidity`) and the exact bytes of the messages asked for. IMAP sessions also search, describe
and move (see `mailbot.transports.imap.ImapSession`); a Maildir is read whole.

A message's size is known before its bytes are read (RFC822.SIZE, a file's `stat`): one over the
size limit is read as its header only, never whole into this process (SPEC 4: answered from its
headers).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Iterator, Protocol, Sequence, TypeVar

from mailbot.config import MailboxConfig
from mailbot.transports.fetched import Fetched

Key = TypeVar("Key")  # an IMAP UID (int) or a Maildir file key (str)


class InboxSession(Protocol[Key]):
    folder: str  # the ledger's `folder`
    uidvalidity: int  # the ledger's `uidvalidity` (0 for a Maildir: its keys never come back)

    def fetch_raw(self, keys: Sequence[Key], batch_bytes: int = ...) -> Iterator[tuple[Key, bytes]]:
        """(key, exact message bytes) in the order given; messages gone meanwhile are skipped."""
        ...

    def fetch(self, keys: Sequence[Key], batch_bytes: int = ..., max_bytes: int | None = None
              ) -> Iterator[tuple[Key, Fetched]]:
        """As fetch_raw, each message's size known first: one over `max_bytes` is read as its header
        section only (`Fetched.whole` False); None: every message whole."""
        ...


class Inbox(Protocol):
    source: str  # the ledger's `source`: "imap" or "maildir"

    def session(self) -> AbstractContextManager[InboxSession]:
        """Open the mailbox (a connection, for IMAP); closed again on exit, also after errors."""
        ...


def open_inbox(mailbox: MailboxConfig) -> Inbox:
    """The inbox a configured mailbox is read through."""
    if mailbox.imap is not None:
        from mailbot.transports.imap import ImapInbox
        return ImapInbox(mailbox, session_seconds=mailbox.imap.poll_deadline)
    from mailbot.transports.maildir import MaildirInbox
    return MaildirInbox(mailbox.maildir)
