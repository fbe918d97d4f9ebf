"""Instant pick-up where the server offers IMAP IDLE (SPEC 5; 163.com does not, Dovecot does).

One thread per IMAP mailbox holds its own connection in IDLE, separate from polling, and wakes
the poll job when new mail (EXISTS) arrives; the poll itself stays the one place mail is read.
The connection is renewed well within RFC 2177's 29 minutes and after any error (with a pause),
and a mailbox whose server does not advertise IDLE is simply left to the scheduled polls.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from mailbot.config import MailboxConfig
from mailbot.errors import MailbotError
from mailbot.transports.imap import ImapInbox

log = logging.getLogger(__name__)

RENEW_SECONDS = 25 * 60  # a fresh connection at least this often (RFC 2177: before 29 minutes)
# Each IDLE ... DONE round lasts at most this. A stop does not wait for it (the daemon cuts the
# session: mailbot.transports.deadline.abandon_for_stop); the round is renewed every few
# minutes so that a NAT or firewall on the way keeps the quiet connection, and rarely enough to
# cost nothing at rest (every 5 s it was ~0.2 ms of CPU a second: more than an empty poll).
CHECK_SECONDS = 240.0
RETRY_SECONDS = 60.0  # pause after an error before connecting again


class IdleWatcher(threading.Thread):
    def __init__(self, mailbox: MailboxConfig, wake: Callable[[str], None], stop: threading.Event, *,
                 open_inbox: Callable[[MailboxConfig], ImapInbox] = ImapInbox, renew_seconds: float = RENEW_SECONDS,
                 check_seconds: float = CHECK_SECONDS, retry_seconds: float = RETRY_SECONDS):
        super().__init__(name=f"idle-{mailbox.name}", daemon=True)
        self.mailbox, self.wake, self.stop = mailbox, wake, stop
        self.open_inbox = open_inbox
        self.renew_seconds, self.check_seconds, self.retry_seconds = renew_seconds, check_seconds, retry_seconds
        self.connections = 0  # sessions opened, for tests and logs

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if not self._one_connection():
                    return  # the server does not offer IDLE: the scheduled polls suffice
            except (MailbotError, OSError) as exc:
                if self.stop.is_set():  # the stop cut the session (mailbot.transports.deadline): not a fault
                    log.debug("IDLE on %s ended by the stop (%s)", self.mailbox.name, exc)
                    return
                log.warning("IDLE on %s failed (%s): again in %.0f s", self.mailbox.name, exc, self.retry_seconds)
                self.stop.wait(self.retry_seconds)

    def _one_connection(self) -> bool:
        """IDLE on one connection until it is due for renewal; False when IDLE is not offered."""
        with self.open_inbox(self.mailbox).session() as imap:
            self.connections += 1
            if "IDLE" not in imap.capabilities:
                log.info("%s does not offer IDLE: new mail is picked up by the scheduled polls", self.mailbox.name)
                return False
            renew_at = time.monotonic() + self.renew_seconds
            while not self.stop.is_set() and time.monotonic() < renew_at:
                if imap.idle_wait(min(self.check_seconds, max(renew_at - time.monotonic(), 0.1))):
                    log.info("IDLE: new mail in %s, polling now", self.mailbox.name)
                    self.wake(self.mailbox.name)
        return True


def start_watchers(mailboxes: list[MailboxConfig], wake: Callable[[str], None], stop: threading.Event,
                   **options) -> list[IdleWatcher]:
    watchers = [IdleWatcher(mb, wake, stop, **options) for mb in mailboxes if mb.imap is not None]
    for watcher in watchers:
        watcher.start()
    return watchers
