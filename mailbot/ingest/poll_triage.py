"""A poll's describing, triaging and recording, a chunk of UIDs at a time (SPEC 5).

A mailbox may hold 100,000 messages, new to mailbot (a new UIDVALIDITY) or imported on purpose
(`poll --since`). Each chunk of `[limits] ledger_chunk` UIDs is described in one FETCH, triaged
(`poll_plan.triage`, pure), and what is decided without downloading (duplicates, ignored mail) is
committed before the next chunk is described: memory stays flat, and a kill loses at most the
chunk under way (the ledger says what is settled; the next poll goes on from there). Only the UIDs
to download are kept, as plain integers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config, MailboxConfig
from mailbot.db import store
from mailbot.ingest.baseline import History, history_keys, split_first_contact, start_of_date
from mailbot.ingest.poll_ledger import processed_ids, record_unread
from mailbot.ingest.poll_plan import Triage, triage
from mailbot.rules.outcome import Outcome, Result
from mailbot.rules.roster import Roster
from mailbot.transports.imap_responses import RemoteMessage

log = logging.getLogger(__name__)


@dataclass
class Triager:
    """Triages described messages of one IMAP folder and commits what needs no download."""

    config: Config
    mailbox: MailboxConfig
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    imap: object  # the open ImapSession
    uidvalidity: int
    label: Callable[[object], str]
    tally: Callable[[Result], None]
    roster: Roster | None = field(default=None)  # read once per poll, when first needed

    def __call__(self, described: list[RemoteMessage], *, over_baseline: bool = False) -> tuple[Triage, int]:
        """(the plan, how many were recorded without downloading); `over_baseline`: imported
        history, whose baseline rows take the outcome."""
        folder = self.mailbox.imap.folder
        if not described:
            return Triage(), 0
        with self.sessions() as session:
            if self.roster is None:  # the approved senders do not change during a poll
                self.roster = Roster(self.config.schools, store.known_senders(session))
            plan = triage(described, is_known_sender=lambda a: bool(self.roster.schools_of_sender(a)),
                          own_addresses={mb.address for mb in self.config.mailboxes},
                          processed_message_ids=processed_ids(session, [m.message_id for m in described
                                                                        if m.message_id]),
                          max_message_bytes=self.config.limits.max_message_bytes)
            decided = ([(m, Outcome.DUPLICATE, self.label(m.uid)) for m in plan.duplicate]
                       + [(m, Outcome.IGNORED, self.label(m.uid)) for m, _why in plan.ignore])
            unread = record_unread(session, self.mailbox.name, folder, self.uidvalidity, decided, self.clock(),
                                   over_baseline=over_baseline)
            session.commit()
        for message, why in plan.ignore:
            log.info("ignored unread mailbox=%s uid=%s sender=%s: %s", self.mailbox.name, message.uid,
                     message.from_addr, why)
        for result in unread:
            self.tally(result)
        return plan, len(unread)

    def new_mail(self, uids: list[int], arrived: dict, settled: set[int]) -> tuple[list[int], int]:
        """Describe and triage these UIDs a chunk at a time: (the UIDs to download, how many were
        decided unread). Settled UIDs (decided, or expunged meanwhile) go into `settled`, the
        arrival time of each one to download into `arrived`."""
        fetch: list[int] = []
        unread = 0
        chunk = max(self.config.limits.ledger_chunk, 1)
        for start in range(0, len(uids), chunk):
            part = uids[start:start + chunk]
            described = self.imap.describe(part, for_download=False)  # fetch_raw asks the sizes it needs
            settled.update(set(part) - {m.uid for m in described})
            plan, count = self(described)
            unread += count
            settled.update(m.uid for m in plan.duplicate)
            settled.update(m.uid for m, _ in plan.ignore)
            wanted = set(plan.fetch)
            arrived.update({m.uid: m.arrived_at for m in described if m.uid in wanted})
            fetch += plan.fetch
        return fetch, unread

    def history(self, history: History) -> tuple[list[int], int]:
        """The baseline mail that arrived since `history.since` (midnight where the bureau is),
        described and triaged a chunk at a time like new mail: (the UIDs to download, how many
        were decided unread)."""
        since = start_of_date(history.since, self.config.timezone)
        folder = self.mailbox.imap.folder
        # SEARCH SINCE compares dates in the server's zone: ask from the day before, then keep
        # what arrived since the bureau's midnight.
        found = self.imap.uids_since(history.since - timedelta(days=1))
        fetch: list[int] = []
        unread = 0
        chunk = max(self.config.limits.ledger_chunk, 1)
        for start in range(0, len(found), chunk):
            part = found[start:start + chunk]
            candidates = history_keys(self.sessions, self.mailbox, folder, self.uidvalidity, part)
            described = split_first_contact(self.imap.describe(candidates, for_download=False), since).process
            plan, count = self(described, over_baseline=True)
            unread += count
            fetch += plan.fetch
        return fetch, unread
