"""Whether the polls succeed (SPEC 5, issue 11 point 4): each poll's outcome is noted in
`mailbox_state`, and "no successful poll for a while" is alarmed once per outage, both when a poll
fails and by the clock (the daemon's watch job), so a poll that hangs and never returns is alarmed
as well."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config, MailboxConfig
from mailbot.db.models import MailboxState
from mailbot.ingest.poll_ledger import load_state
from mailbot.outbound import alarms
from mailbot.transports.maildir import MaildirInbox


_STATE = MailboxState.__table__
_NOTE_SUCCESS = (update(_STATE).where(_STATE.c.mailbox == bindparam("m"), _STATE.c.folder == bindparam("f"))
                 .values(last_attempt_at=bindparam("now"), last_success_at=bindparam("now"), last_error=None,
                         alarm_sent_at=None))


def note_poll(sessions: sessionmaker[Session], config: Config, mailbox: MailboxConfig, folder: str, ok: bool,
              error: str | None, now: datetime) -> None:
    """Remember the attempt; raise the "no successful poll" alarm once when it is due."""
    with sessions() as session:
        if ok:  # the usual case, every few minutes for months: one UPDATE, no ORM object
            done = session.execute(_NOTE_SUCCESS, {"m": mailbox.name, "f": folder, "now": now})
            if done.rowcount == 1:
                session.commit()
                return
        state = load_state(session, mailbox.name, folder, now)
        state.last_attempt_at = now
        if ok:
            state.last_success_at, state.last_error, state.alarm_sent_at = now, None, None
        else:
            state.last_error = (error or "")[:4000]
            if alarms.poll_alarm_due(created_at=state.created_at, last_success_at=state.last_success_at,
                                     alarm_sent_at=state.alarm_sent_at, now=now,
                                     after_minutes=config.alarm_after_minutes):
                alarms.poll_stalled(session, config, mailbox, since=state.last_success_at or state.created_at,
                                    error=state.last_error, now=now)
                state.alarm_sent_at = now
        session.commit()


def raise_due_poll_alarms(config: Config, sessions: sessionmaker[Session], now: datetime) -> int:
    """Raise "no successful poll" for every mailbox whose last success is older than
    `alarm_after_minutes`, by the clock: a poll that hangs, or never returns, is alarmed as well
    (issue 11). Returns how many alarms were queued now."""
    raised = 0
    with sessions() as session:
        for mailbox in config.mailboxes:
            folder = mailbox.imap.folder if mailbox.imap is not None else MaildirInbox.folder
            state = load_state(session, mailbox.name, folder, now)
            if alarms.poll_alarm_due(created_at=state.created_at, last_success_at=state.last_success_at,
                                     alarm_sent_at=state.alarm_sent_at, now=now,
                                     after_minutes=config.alarm_after_minutes):
                error = state.last_error or "轮询一直没有结束或没有开始（服务器可能无响应）"
                if alarms.poll_stalled(session, config, mailbox, since=state.last_success_at or state.created_at,
                                       error=error, now=now):
                    raised += 1
                state.alarm_sent_at = now
        session.commit()
    return raised
