"""The poll's reads and writes of the message ledger (`messages`) and `mailbox_state` (SPEC 5).

Which UIDs are settled or due a retry, which Message-IDs were already processed, the high-water
mark, and the ledger rows of messages decided without downloading them (written a chunk at a
time, in one statement each: a first contact or an import of history records thousands).
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.db.models import UNSETTLED, MailboxState, Message
from mailbot.ingest.poll_plan import unread_result
from mailbot.rules.outcome import PROCESSED_OUTCOMES, Outcome, Result
from mailbot.transports.imap_responses import RemoteMessage

SQL_CHUNK = 500
BASELINE = "baseline"  # the ledger outcome of mail that was there before mailbot started (ingest.baseline)


def _chunks(items: list, size: int = SQL_CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def ledger_at(session: Session, mailbox: str, folder: str, uidvalidity: int, uids: list[str],
              max_attempts: int) -> tuple[set[str], set[str]]:
    """Of these UIDs: (settled: a final outcome, or failed too often; retry: failed with attempts left)."""
    settled, retry = set(), set()
    for chunk in _chunks(uids):
        rows = session.execute(select(Message.uid, Message.outcome, Message.attempts).where(
            Message.mailbox == mailbox, Message.folder == folder, Message.uidvalidity == uidvalidity,
            Message.uid.in_(chunk)))
        for uid, outcome, attempts in rows:
            (retry if outcome in (None, Outcome.FAILED) and attempts < max_attempts else settled).add(uid)
    return settled, retry


# Built once: an empty poll runs these every few minutes for months (ORM statement building was
# a good part of its CPU).
_M = Message.__table__
_RETRY_BELOW_MARK = select(_M.c.uid).where(
    _M.c.mailbox == bindparam("mailbox"), _M.c.folder == bindparam("folder"),
    _M.c.uidvalidity == bindparam("uidvalidity"), text(f"({UNSETTLED})"),  # ix_messages_unsettled (models)
    _M.c.attempts < bindparam("max_attempts"))
_S = MailboxState.__table__
_MARK = select(_S.c.uidvalidity, _S.c.last_uid).where(_S.c.mailbox == bindparam("mailbox"),
                                                       _S.c.folder == bindparam("folder"))


def retry_below_mark(session: Session, mailbox: str, folder: str, uidvalidity: int, max_attempts: int) -> set[str]:
    return set(session.scalars(_RETRY_BELOW_MARK, {"mailbox": mailbox, "folder": folder, "uidvalidity": uidvalidity,
                                                   "max_attempts": max_attempts}))


def read_mark(session: Session, mailbox: str, folder: str, now: datetime) -> tuple[int | None, int]:
    """(UIDVALIDITY, high-water mark) of a folder, its state row made if missing."""
    row = session.execute(_MARK, {"mailbox": mailbox, "folder": folder}).first()
    if row is None:
        state = load_state(session, mailbox, folder, now)
        return state.uidvalidity, state.last_uid
    return row.uidvalidity, row.last_uid


def processed_ids(session: Session, message_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(message_ids))):
        found.update(session.scalars(select(Message.message_id).where(
            Message.message_id.in_(chunk), Message.outcome.in_(sorted(PROCESSED_OUTCOMES)))))
    return found


def load_state(session: Session, mailbox: str, folder: str, now: datetime) -> MailboxState:
    state = session.scalar(select(MailboxState).where(MailboxState.mailbox == mailbox,
                                                      MailboxState.folder == folder))
    if state is None:
        state = MailboxState(mailbox=mailbox, folder=folder, uidvalidity=None, last_uid=0, created_at=now)
        session.add(state)
        session.flush()
    return state


def save_mark(sessions: sessionmaker[Session], mailbox: str, folder: str, uidvalidity: int, mark: int,
              now: datetime) -> None:
    with sessions() as session:
        state = load_state(session, mailbox, folder, now)
        state.uidvalidity, state.last_uid = uidvalidity, mark
        session.commit()


def record_unread(session: Session, mailbox: str, folder: str, uidvalidity: int,
                  decided: list[tuple[RemoteMessage, Outcome, str]], now: datetime, *,
                  over_baseline: bool = False) -> list[Result]:
    """Put messages decided without downloading, (message, outcome, label) each, into the ledger
    (no archive copy: not read). `over_baseline`: they are imported history, and the `baseline`
    row of each becomes its outcome (keeping when it arrived)."""
    results, rows = [], []
    for message, outcome, label in decided:
        result = unread_result(label, mailbox, message, outcome)
        results.append(result)
        rows.append({"b_uid": str(message.uid), "source": "imap", "message_id": message.message_id,
                     "size": message.size, "sender": message.from_addr, "read_at": now, "outcome": str(outcome),
                     "attempts": 1, "result": result.as_json()})
    if not rows:
        return results
    table = Message.__table__
    if over_baseline:
        # Only what the import decides: the baseline row has the description's Message-ID, sender
        # and size already, and setting indexed columns, even to the same value, rewrites the index.
        settled = [{k: row[k] for k in ("b_uid", "read_at", "outcome", "attempts", "result")} for row in rows]
        session.execute(update(table).where(
            table.c.mailbox == mailbox, table.c.folder == folder, table.c.uidvalidity == uidvalidity,
            table.c.uid == bindparam("b_uid"), table.c.outcome == BASELINE), settled)
    else:
        session.execute(insert(table), [{**{k: v for k, v in row.items() if k != "b_uid"}, "uid": row["b_uid"],
                                         "mailbox": mailbox, "folder": folder, "uidvalidity": uidvalidity,
                                         "sha256": "", "archive_path": "", "subject": "", "received_at": now,
                                         "errors": [], "warnings": []} for row in rows])
    return results
