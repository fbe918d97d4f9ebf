"""Send what the outbox holds (SPEC 5): claim a row, send it, record it; one row at a time.

    send_outbox(config, sessions, clock)  ->  SendReport

Each row goes out through its own mailbox's account (SMTP, or a directory of .eml files), so a
reply to a primary school comes from chuyoujiao. Rows go in order (by id), `throttle_seconds`
apart, because 163.com takes bursts for spam.

Claim, send, record:
1. Claim: `UPDATE outbox SET status='sending', claimed_by=<host:pid:run:birth> WHERE id=? AND
   status='queued'`, committed at once. Only one process can win it: a second `poll`, the
   daemon and `outbox send` running together never send the same row twice.
2. Send it through the account.
3. Record `sent` in its own commit the moment the server said 250, before anything else (no
   throttle sleep, no other row in between); a database locked by another writer is waited for,
   a dropped connection replaced.

**The send window.** Between the server's 250 (step 2) and the commit of `sent` (step 3) lies a
few milliseconds that no protocol closes: SMTP has no way to ask "did you get this one?". A
process killed (SIGKILL, power loss) inside that window leaves the row in `sending` although
the school got the mail. We cannot tell such a row from one killed before the server accepted
it, so the choice is between "maybe never" and "maybe twice". A receipt that never arrives
makes a school resend or phone the bureau; one that arrives twice is harmless. So a row left in
`sending` by a process that is gone is queued again and sent again: a reply goes out twice only
when the sender was killed inside this window. A claim is taken as abandoned when its process
(same host) is no longer alive, or, for a claim from another host, after `CLAIM_LEASE`.

Failures (see mailbot.transports.smtp):
- TemporarySendError (4xx, dropped connection, timeout): queued again after
  `retry_base_seconds * 2**attempts`; after `max_attempts` failures it is `failed` and the
  operator is told once. One that passed its deadline (a trickling server) also stops that
  mailbox's sending for this run, so a stuck server costs one deadline, not one per row.
- PermanentSendError (5xx, e.g. 163's `554 DT:SPM`): `failed` at once, not retried; the operator
  is told once.
- Any other TransportError (login refused, TLS): the account is broken, not the message. The row
  is queued again without counting an attempt, that mailbox sends nothing more this run, and the
  operator is told once a day.

A per-mailbox daily cap (`daily_send_cap`, counted from local midnight; mailbot.outbound.daily_cap):
past it the mailbox's rows wait for tomorrow, and the operator is told once that day. Under
PostgreSQL, where several instances may send through one mailbox, the count is checked again in
the claim's own transaction, so together they stay within it. Alarms themselves are exempt
(a handful a day at most), or the alarm about the cap could never leave.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.outbound import alarms
from mailbot.outbound.accounts import Transport, open_transport
from mailbot.outbound.daily_cap import cap_guard, lock_mailbox_cap, sent_today, used_today
from mailbot.config import Config, MailboxConfig
from mailbot.db.leases import claim_token, holder_gone, host_name, process_alive  # noqa: F401 - used here and by tests
from mailbot.db.models import Outbox
from mailbot.db.states import OutboxStatus
from mailbot.db.write_retry import in_write_transaction
from mailbot.errors import ConfigError, PermanentSendError, TemporarySendError, TransportError
from mailbot.timeutil import pause, start_of_day

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=30)  # a claim from another host older than this is abandoned
MAX_BACKOFF = timedelta(hours=12)


@dataclass
class SendReport:
    """What one run did, for the CLI and the logs."""

    sent: int = 0
    retrying: int = 0  # temporary failures, queued again
    failed: int = 0  # permanent failures and rows out of retries
    requeued_abandoned: int = 0  # rows a dead process left in `sending`
    capped: list[str] = field(default_factory=list)  # mailboxes that reached today's cap
    broken_accounts: dict[str, str] = field(default_factory=dict)  # mailbox -> error
    stopped: bool = False  # a stop was asked: the rest waits for the next run
    stalled: list[str] = field(default_factory=list)  # mailboxes whose server passed a deadline

    @property
    def ok(self) -> bool:
        """False when mail was refused (for good, or out of retries), an account is broken or a
        server stalled: `outbox send` and `poll` then exit 1."""
        return not self.broken_accounts and not self.failed and not self.stalled


# -- pure decisions ------------------------------------------------------------------------------


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Wait before the next try after `attempts` failures: base * 2**attempts, at most 12 h."""
    seconds = float(base_seconds) * (2 ** min(max(attempts, 0), 30))
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def claim_is_abandoned(claimed_by: str | None, claimed_at: datetime | None, now: datetime, *, this_host: str,
                       pid_alive: Callable[[int], bool], lease: timedelta = CLAIM_LEASE) -> bool:
    """Whether a row in `sending` was left by a process that can no longer finish it."""
    if not claimed_by or claimed_at is None:
        return True
    gone = holder_gone(claimed_by, this_host, pid_alive)
    return gone if gone is not None else now - claimed_at > lease


# -- database steps (each its own short transaction) ----------------------------------------------


def requeue_abandoned(sessions: sessionmaker[Session], now: datetime, *, this_host: str | None = None,
                      pid_alive: Callable[[int], bool] = process_alive) -> int:
    """Queue again the rows a dead process left in `sending` (see "the send window" above)."""
    host = this_host or host_name()
    count = 0
    with sessions() as session:
        stuck = session.execute(select(Outbox.id, Outbox.claimed_by, Outbox.claimed_at)
                                .where(Outbox.status == OutboxStatus.SENDING)).all()
        session.commit()  # see _end_read
        for row_id, claimed_by, claimed_at in stuck:
            if not claim_is_abandoned(claimed_by, claimed_at, now, this_host=host, pid_alive=pid_alive):
                continue
            done = session.execute(update(Outbox).where(
                Outbox.id == row_id, Outbox.status == OutboxStatus.SENDING,
                Outbox.claimed_by.is_(None) if claimed_by is None else Outbox.claimed_by == claimed_by,
            ).values(status=OutboxStatus.QUEUED, claimed_by=None, claimed_at=None, next_attempt_at=now))
            if done.rowcount == 1:
                log.warning("outbox #%d was left in `sending` by %s: queued again (it may have reached the "
                            "server already; see mailbot.outbound.sending)", row_id, claimed_by)
                count += 1
        session.commit()
    return count


def next_due(session: Session, now: datetime, after_id: int, blocked: set[str], capped: set[str],
             kinds: set[str] | None = None) -> Outbox | None:
    """The oldest queued row that is due, after `after_id`, from a mailbox allowed to send (and of
    one of `kinds`, when given). A capped mailbox may still send alarms; a broken one sends nothing."""
    query = select(Outbox).where(Outbox.status == OutboxStatus.QUEUED, Outbox.next_attempt_at <= now, Outbox.id > after_id)
    if kinds is not None:
        query = query.where(Outbox.kind.in_(sorted(kinds)))
    if blocked:
        query = query.where(Outbox.mailbox.not_in(blocked))
    if capped:
        query = query.where(or_(Outbox.mailbox.not_in(capped), Outbox.kind == alarms.KIND))
    return session.scalar(query.order_by(Outbox.id).limit(1))


# Built once: the daemon asks after every poll, and nearly always the outbox has nothing to do.
_O = Outbox.__table__
_ANY_WORK = select(_O.c.id).where(or_(_O.c.status == OutboxStatus.SENDING, and_(
    _O.c.status == OutboxStatus.QUEUED, _O.c.next_attempt_at <= bindparam("now")))).limit(1)


def session_backend(sessions: sessionmaker[Session]) -> str:
    bind = sessions.kw.get("bind")
    return bind.dialect.name if bind is not None else "sqlite"


def _end_read(session: Session) -> None:
    """End the read transaction before writing. In SQLite's WAL mode a transaction that read and
    then writes fails at once (SQLITE_BUSY_SNAPSHOT, no waiting) when another process wrote in
    between; one that starts with its write simply waits its turn."""
    session.commit()


def claim(session: Session, row_id: int, token: str, now: datetime, *,
          within_cap: Callable[[Session], bool] | None = None, mailbox: str = "") -> bool:
    """The conditional update that makes a row ours; committed at once so others see it.

    `within_cap` (PostgreSQL, where several instances send through one mailbox): checked in the
    same transaction, under a transaction-scoped advisory lock per mailbox, so two instances
    cannot both take the last place under the daily cap; False leaves the row queued. (SQLite has
    one machine and the run's own count; a read before the write there would fail on a busy
    snapshot, see _end_read.)"""
    if within_cap is not None:
        lock_mailbox_cap(session, mailbox)
        if not within_cap(session):
            session.commit()
            return False
    won = session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.status == OutboxStatus.QUEUED)
                          .values(status=OutboxStatus.SENDING, claimed_by=token, claimed_at=now)).rowcount == 1
    session.commit()
    return won


def record_sent(session: Session, row_id: int, token: str, now: datetime, refused: dict) -> None:
    note = "; ".join(f"{addr}: {code} {text}" for addr, (code, text) in refused.items()) or None
    done = session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.claimed_by == token)
                           .values(status=OutboxStatus.SENT, sent_at=now, claimed_by=None, claimed_at=None,
                                   last_error=f"some recipients refused: {note}" if note else None))
    if done.rowcount != 1:
        log.error("outbox #%d was sent but its claim had been taken over meanwhile", row_id)
    if note:
        log.warning("outbox #%d sent, but the server refused some recipients: %s", row_id, note)


def release(session: Session, row_id: int, token: str, **values) -> None:
    session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.claimed_by == token)
                    .values(claimed_by=None, claimed_at=None, **values))
    session.commit()


# -- the run -------------------------------------------------------------------------------------


def send_outbox(config: Config, sessions: sessionmaker[Session], clock: Callable[[], datetime], *,
                transport_for: Callable[[MailboxConfig], Transport] = open_transport,
                sleep: Callable[[float], None] = time.sleep, limit: int | None = None,
                should_stop: Callable[[], bool] = lambda: False, kinds: set[str] | None = None) -> SendReport:
    """Send every due row once (a row that fails waits for a later run), at most `limit` rows, only
    rows of `kinds` when given (the daemon's alarm watch sends alarms alone).

    A stop (SIGTERM) is noticed before each email and during the throttle pause, which comes
    before the claim: a stopping sender leaves nothing claimed, so nothing waits in `sending` and
    nothing is sent twice; the rest goes out with the next run. A stop that cuts an SMTP connection
    still being made gives its row back unclaimed, no attempt counted (nothing was sent)."""
    with sessions() as session:  # one indexed look; a row queued by another process is seen here
        idle = session.execute(_ANY_WORK, {"now": clock()}).first() is None
    if idle and not should_stop():
        return SendReport()
    report = SendReport(requeued_abandoned=requeue_abandoned(sessions, clock()))
    token = claim_token()
    mailboxes = {mb.name: mb for mb in config.mailboxes}
    transports: dict[str, Transport] = {}
    blocked: set[str] = set()
    capped: set[str] = set()
    counts: dict[str, int] = {}
    after_id = 0
    first = True
    shared = session_backend(sessions) == "postgresql"  # several instances may send at once

    def record_sent_as_sent(row_id: int, refused: dict) -> None:
        # Its own write transaction, tried again while another writer holds the database or after
        # its connection dropped (up to 15 minutes, not after a stop): the server has the email,
        # and a row left in `sending` by a living process would be sent again after the next restart.
        try:
            in_write_transaction(sessions, lambda s: record_sent(s, row_id, token, clock(), refused),
                                 should_stop=should_stop, sleep=sleep)
        except OperationalError as exc:
            log.error("outbox #%d was sent but could not be recorded: it stays in `sending` and is sent again "
                      "after a restart: %s", row_id, exc)
            raise
    try:
        with sessions() as session:
            day_start = start_of_day(clock(), config.timezone)
            while limit is None or report.sent + report.retrying + report.failed < limit:
                if should_stop():
                    report.stopped = True
                    break
                now = clock()
                row = next_due(session, now, after_id, blocked, capped, kinds)
                _end_read(session)
                if row is None:
                    break
                after_id = row.id
                mailbox = mailboxes.get(row.mailbox)
                if mailbox is None:
                    log.error("outbox #%d is for mailbox %r, which is not configured: left queued", row.id, row.mailbox)
                    continue
                if row.mailbox not in counts:
                    counts[row.mailbox] = sent_today(session, row.mailbox, day_start)
                    _end_read(session)
                if counts[row.mailbox] >= mailbox.daily_send_cap and row.kind != alarms.KIND:
                    capped.add(row.mailbox)
                    report.capped.append(row.mailbox)
                    log.warning("mailbox %s sent %d today (cap %d): the rest waits until tomorrow",
                                row.mailbox, counts[row.mailbox], mailbox.daily_send_cap)
                    alarms.daily_cap(session, config, mailbox, now=now)
                    session.commit()
                    continue
                if not first and config.sending.throttle_seconds > 0:
                    if not pause(config.sending.throttle_seconds, should_stop, sleep):
                        report.stopped = True
                        break
                    now = clock()
                guard = (cap_guard(mailbox, day_start) if shared and row.kind != alarms.KIND else None)
                if not claim(session, row.id, token, now, within_cap=guard, mailbox=row.mailbox):
                    if guard is not None:
                        counts[row.mailbox] = used_today(session, row.mailbox, day_start)
                        _end_read(session)
                        after_id = row.id - 1  # look at it again: capped now, or taken by another
                    continue  # another process took it
                first = False
                outcome = _send_one(session, config, mailbox, row, token, clock, transports, transport_for,
                                    record_sent_as_sent)
                if outcome == "sent":
                    report.sent += 1
                    counts[row.mailbox] += 1
                elif outcome == "retrying":
                    report.retrying += 1
                elif outcome == "stalled":  # the server trickles or hangs: not again this run
                    report.retrying += 1
                    report.stalled.append(row.mailbox)
                    blocked.add(row.mailbox)
                elif outcome == "failed":
                    report.failed += 1
                elif outcome == "stopped":
                    report.stopped = True
                    break
                else:
                    blocked.add(row.mailbox)
                    report.broken_accounts[row.mailbox] = outcome
    finally:
        for transport in transports.values():
            transport.close()
    if report.sent or report.retrying or report.failed or report.requeued_abandoned:
        log.info("outbox: %d sent, %d to retry, %d failed, %d requeued after a crash", report.sent,
                 report.retrying, report.failed, report.requeued_abandoned)
    return report


def _send_one(session: Session, config: Config, mailbox: MailboxConfig, row: Outbox, token: str,
              clock: Callable[[], datetime], transports: dict[str, Transport],
              transport_for: Callable[[MailboxConfig], Transport], record: Callable[[int, dict], None]) -> str:
    """Send one claimed row and record what happened: "sent", "retrying", "stalled", "stopped",
    "failed", or the error text of a broken account."""
    try:
        transport = transports.get(mailbox.name)
        if transport is None:
            transport = transports[mailbox.name] = transport_for(mailbox)
        refused = transport.send(row)
    except TemporarySendError as exc:
        if getattr(exc, "stopping", False):  # cut by a stop while connecting: nothing was sent
            log.info("outbox #%d: not sent, mailbot is stopping; queued again", row.id)
            release(session, row.id, token, status=OutboxStatus.QUEUED)
            return "stopped"
        attempts = row.attempts + 1
        if attempts >= config.sending.max_attempts:
            _fail(session, config, mailbox, row, token, attempts, str(exc), clock())
            return "failed"
        wait = backoff(attempts, config.sending.retry_base_seconds)
        log.warning("outbox #%d to %s: %s; retry %d/%d in %s", row.id, row.recipient, exc, attempts,
                    config.sending.max_attempts, wait)
        release(session, row.id, token, status=OutboxStatus.QUEUED, attempts=attempts, last_error=str(exc),
                next_attempt_at=clock() + wait)
        return "stalled" if getattr(exc, "stalled", False) else "retrying"
    except PermanentSendError as exc:
        _fail(session, config, mailbox, row, token, row.attempts + 1, str(exc), clock())
        return "failed"
    except (TransportError, ConfigError) as exc:
        # The account, not the message: keep the row as it was and stop using this account.
        log.error("mailbox %s cannot send: %s", mailbox.name, exc)
        if row.kind == alarms.KIND and alarms.reroute(session, config, row, clock()):
            release(session, row.id, token, status=OutboxStatus.FAILED,
                    last_error=f"{exc} (queued again through another mailbox)")
        else:
            release(session, row.id, token, status=OutboxStatus.QUEUED, last_error=str(exc))
        alarms.send_account(session, config, mailbox, error=str(exc), now=clock())
        session.commit()
        return str(exc)
    except Exception:
        # A bug of ours, before or while talking to the server: the row was not sent by us
        # knowingly; give it back rather than leave it in `sending`.
        release(session, row.id, token, status=OutboxStatus.QUEUED)
        raise
    record(row.id, refused)
    log.info("sent outbox #%d %s to %s via %s", row.id, row.kind, ", ".join(row.to_addrs), mailbox.name)
    return "sent"


def _fail(session: Session, config: Config, mailbox: MailboxConfig, row: Outbox, token: str, attempts: int,
          error: str, now: datetime) -> None:
    log.error("outbox #%d to %s failed for good after %d attempt(s): %s", row.id, row.recipient, attempts, error)
    release(session, row.id, token, status=OutboxStatus.FAILED, attempts=attempts, last_error=error)
    if row.kind == alarms.KIND:  # an alarm about a failed alarm would fail the same way: send it elsewhere
        alarms.reroute(session, config, row, now)
    else:
        alarms.send_refused(session, config, mailbox, row_id=row.id, recipients=list(row.to_addrs),
                            subject=row.subject, attempts=attempts, error=error, now=now)
    session.commit()
