"""A mailbox's way out, for mailbot.outbound.sending: its SMTP account, or the directory outbox
(.eml files) where no SMTP is configured. The servers' own adapters are in mailbot.transports."""

from __future__ import annotations

from typing import Protocol

from mailbot.config import MailboxConfig
from mailbot.db.models import Outbox


class Transport(Protocol):
    """One mailbox's way out: SMTP account or directory outbox."""

    def send(self, row: Outbox) -> dict[str, tuple[int, str]]: ...

    def close(self) -> None: ...


class SmtpTransport:
    def __init__(self, mailbox: MailboxConfig):
        from mailbot.transports.smtp import SmtpSender
        self.sender = SmtpSender(mailbox.smtp)

    def send(self, row: Outbox) -> dict[str, tuple[int, str]]:
        return self.sender.send(row.from_addr, list(row.to_addrs), row.raw)

    def close(self) -> None:
        self.sender.close()


class DirectoryTransport:
    def __init__(self, mailbox: MailboxConfig):
        from mailbot.transports.dirout import DirectoryOutbox
        self.outbox = DirectoryOutbox(mailbox.outbox_dir)

    def send(self, row: Outbox) -> dict[str, tuple[int, str]]:
        self.outbox.send(row.key, row.from_addr, list(row.to_addrs), row.raw)
        return {}

    def close(self) -> None:
        pass


def open_transport(mailbox: MailboxConfig) -> Transport:
    """SMTP when configured, else the directory outbox (config.py requires one of them)."""
    return SmtpTransport(mailbox) if mailbox.smtp is not None else DirectoryTransport(mailbox)
