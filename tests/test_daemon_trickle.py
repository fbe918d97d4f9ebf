"""The daemon against a trickling IMAP peer, end to end (issue 11 point 4).

A real `mailbot run` process (forked from one that has imported mailbot: tests/support/zygote.py)
whose first mailbox's IMAP server is a TricklingPeer (one byte every 0.2 s, never a whole line:
each read beats the 5 s socket timeout) and whose second is the real Dovecot; both send through the
real SMTP server. It shows:
- the second mailbox is still polled: two submissions sent to it during the run, one after the
  other, each get their receipt at the SMTP server (each poll abandons the first mailbox at its
  poll deadline, then reads the second);
- the "no successful poll" alarm for the first mailbox reaches the operator once, through the second
  mailbox's account, soon after the configured period counted from its last successful poll (the
  watch job looks every quarter of the period; a failed poll returning may raise it first: the
  report says which did); the healthy mailbox is not alarmed;
- SIGTERM while a poll is trickling stops the daemon within a few seconds, exit 0: the stop
  abandons the IMAP session in hand (before, it waited for the rest of the poll deadline).

Generous bounds, conditions polled with long timeouts: the figures are printed with -s.
"""

from __future__ import annotations

import email
import email.policy
import re
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from builders import submission
from mailbot.config import load_config
from mailbot.db.migrate import prepare_database
from mailbot.db.models import MailboxState
from support.cli import run_cli
from support.configs import ACCOUNTS, ROSTER, server_config
from support.notify import NotifyListener
from support.trickle import IMAP_GREETING, TricklingPeer

# The mailboxes are polled one after the other, so the healthy one is read every trickling poll
# deadline plus the poll interval (3 s): the alarm period must be longer than that, or the healthy
# mailbox would be alarmed as well (as it should then be).
POLL_DEADLINE = 8.0  # the trickling mailbox's whole poll (and each of its operations)
ALARM_AFTER_MINUTES = 0.35  # 21 s: the watch job then looks every 5.25 s (a quarter of it)
# The stop is sent 1 s into a trickling session that its deadline would end 7 s later: well under
# that shows the session was cut (as the log line checked below says), with room for a busy machine.
STOP_WITHIN_SECONDS = 5.0
MIDDLE = [s for s in ROSTER["school"] if s["level"] == "middle" and s["emails"]]
OPERATOR = "operator@example.test"


def trickling_first_mailbox(config: Path, dovecot_port: int, trickle_port: int) -> None:
    """Point chuyoujiao's IMAP at the trickling peer, with its deadlines; the rest as it was."""
    text = config.read_text(encoding="utf-8")
    block = re.search(r'\[mailbox\.imap\]\nhost = "127\.0\.0\.1"\nport = (\d+)\n[^\[]*?username = "'
                      + re.escape(ACCOUNTS["chuyoujiao"]) + '"', text)
    assert block and int(block.group(1)) == dovecot_port
    trickled = block.group(0).replace(f"port = {dovecot_port}\n", f"port = {trickle_port}\n"
                                      f"deadline = {POLL_DEADLINE:g}\npoll_deadline = {POLL_DEADLINE:g}\n")
    config.write_text(text.replace(block.group(0), trickled), encoding="utf-8")


def school_mail(number: int) -> tuple[str, bytes]:
    school = MIDDLE[number % len(MIDDLE)]
    raw = submission(school["emails"][0], "zjg23236764@163.com",
                     [[school["name"], 1, 700 + number, 650 + number, "是", "科普、阅读"]],
                     date=datetime.now(timezone.utc), message_id=f"trickle-run{number}")
    return school["emails"][0], raw


def wait_for(condition, timeout: float, what: str, log: Path):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    said = log.read_text(encoding="utf-8", errors="replace")[-4000:] if log is not None else ""
    raise AssertionError(f"{what} not seen within {timeout:g} s; the daemon said:\n{said}")


class Arrivals:
    """When each message reached the SMTP server (seconds after `started`), noted by a thread."""

    def __init__(self, smtp_server, started: float):
        self.smtp_server, self.started, self.at = smtp_server, started, []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            while len(self.at) < len(self.smtp_server.received):
                self.at.append(time.monotonic() - self.started)

    def of(self, mail) -> float:
        wait_for(lambda: len(self.at) > self.smtp_server.received.index(mail), 10, "the arrival's time", None)
        return self.at[self.smtp_server.received.index(mail)]

    def stop(self) -> None:
        self.done.set()
        self._thread.join(10)


def text_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return str(message["Subject"]) + message.get_body(("plain",)).get_content()


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def test_daemon_keeps_polling_the_other_mailbox_alarms_by_the_clock_and_stops_promptly(
        tmp_path, dovecot, smtp_server, zygote, record_property):
    config = server_config(tmp_path, dovecot, smtp_server, "[sending]\nthrottle_seconds = 0\n")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[general]\n", f"[general]\nalarm_after_minutes = {ALARM_AFTER_MINUTES}\n", 1)
                      .replace("[schedule]\n", "[schedule]\npoll_interval_minutes = 0.05\n", 1), encoding="utf-8")
    run_cli(config, "poll", "--no-send")  # first contact while both are healthy: the baseline (SPEC 5)
    engine = prepare_database(load_config(config))

    def first_mailbox_state():
        with engine.connect() as conn:
            return conn.execute(select(MailboxState.last_attempt_at, MailboxState.last_success_at)
                                .where(MailboxState.mailbox == "chuyoujiao")).one()

    def received(to: str, sender: str):
        return [m for m in smtp_server.received if to in m.rcpt_tos and m.mail_from == sender]

    def receipt_for(message_id: bytes):
        return [m for m in smtp_server.received if m.mail_from == zjg_address and OPERATOR not in m.rcpt_tos
                and message_id in m.data]

    zjg_address = "zjg23236764@163.com"
    with TricklingPeer(IMAP_GREETING, interval=0.2, prefix=b"a1 ") as peer:
        trickling_first_mailbox(config, dovecot.port, peer.port)
        polled_before = first_mailbox_state()
        listener = NotifyListener(tmp_path / "notify.sock")
        log = tmp_path / "run.log"
        started = time.monotonic()
        proc = zygote.start(config, "run", env={"NOTIFY_SOCKET": listener.path}, stderr=log)
        try:
            assert "READY=1" in listener.drain(until="READY=1", timeout=60), log.read_text()
            drainer = listener.drain_in_background()
            arrivals = Arrivals(smtp_server, started)
            dovecot.append(ACCOUNTS["zjg"], school_mail(0)[1])
            first = wait_for(lambda: receipt_for(b"trickle-run0@test"), 120, "the first receipt", log)[0]
            dovecot.append(ACCOUNTS["zjg"], school_mail(1)[1])  # after the first: a later poll reads it
            second = wait_for(lambda: receipt_for(b"trickle-run1@test"), 120, "the second receipt", log)[0]
            alarm = wait_for(lambda: received(OPERATOR, zjg_address), 120, "the operator's alarm", log)[0]
            assert "chuyoujiao" in text_of(alarm.data)

            # stop the daemon in the middle of the next poll's trickling session
            connections = peer.connections
            wait_for(lambda: peer.connections > connections, 120, "another trickling session", log)
            time.sleep(1.0)
            stop_sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=60)
            stop_seconds = time.monotonic() - stop_sent
        finally:
            if proc.poll() is None:
                proc.kill_group(signal.SIGKILL)
                proc.wait(60)
            if hasattr(listener, "done"):
                listener.done.set()
                drainer.join(10)
            listener.sock.close()
    arrivals.stop()
    last_success_at = (as_utc(polled_before[1]) - datetime.now(timezone.utc)).total_seconds() + time.monotonic() \
        - started  # in seconds after the start (negative: before it)
    alarm_late = arrivals.of(alarm) - last_success_at
    first_receipt_at, second_receipt_at = arrivals.of(first), arrivals.of(second)
    attempt, success = first_mailbox_state()
    engine.dispose()

    stopped = log.read_text(encoding="utf-8", errors="replace")
    by_clock = re.search(r"job watch done in [\d.]+ s: [1-9]", stopped) is not None  # else a failed poll raised it
    healthy_polls = stopped.count("job poll done")
    report = (f"alarm {alarm_late:.1f} s after the last successful poll (period {ALARM_AFTER_MINUTES * 60:g} s, "
              f"raised by {'the watch job (the clock)' if by_clock else 'a failed poll'}); trickling poll deadline "
              f"{POLL_DEADLINE:g} s; receipts from the healthy mailbox at {first_receipt_at:.1f} s and "
              f"{second_receipt_at:.1f} s after the start; {healthy_polls} polls done in "
              f"{time.monotonic() - started:.0f} s; {peer.connections} trickling connections; SIGTERM exit {status} "
              f"in {stop_seconds:.1f} s")
    record_property("trickle_daemon_report", report)
    print(report)
    assert status == 0, stopped
    assert "abandoned, mailbot is stopping" in stopped, stopped  # the stop came inside a trickling poll
    assert stop_seconds < STOP_WITHIN_SECONDS, report
    assert attempt > polled_before[0] and success == polled_before[1]  # chuyoujiao's polls counted as failed
    assert len(received(OPERATOR, zjg_address)) == 1, report  # one alarm, not one per poll
    assert received(OPERATOR, "chuyoujiao@163.com") == [], stopped  # the healthy mailbox was never alarmed
    assert ALARM_AFTER_MINUTES * 60 <= alarm_late < ALARM_AFTER_MINUTES * 60 + 30, report
