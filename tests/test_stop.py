"""A stop that is prompt and safe (issue 9, list item 2): SIGTERM at any point of `mailbot run`
(a poll of 100 messages, a send of 12 emails with a real 1 s throttle) exits 0 within 10 s, and
over all the stops and restarts nothing is lost, processed twice or sent twice. (No watchdog ping
after STOPPING=1 is tested with the daemon's own tests.)"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from builders import submission
from ops_world import Database, parsed
from support.cli import run_cli
from support.configs import ROSTER, server_config
from support.notify import NotifyListener

STOP_WITHIN_SECONDS = 10.0
# 12 s of sending at the real throttle: room for stops in a send, in a pause, between. Issue 9 asked for
# 30; MAILBOT_STOP_EMAILS=30 (and MAILBOT_STOP_RUNS=20) runs that size, outside the suite's time budget.
EMAILS = int(os.environ.get("MAILBOT_STOP_EMAILS", "12"))
MAX_STOPS = int(os.environ.get("MAILBOT_STOP_RUNS", "8"))
SCHOOLS = [(s["name"], s["level"], s["emails"][0]) for s in ROSTER["school"]]
BOXES = {"primary": "chuyoujiao@example.test", "middle": "zjg@example.test"}


def school_mail(number: int) -> tuple[str, bytes]:
    name, level, sender = SCHOOLS[number % len(SCHOOLS)]
    return BOXES[level], submission(sender, BOXES[level], [[name, 1, 1000 + number, 900 + number, "是", "科普、阅读"]],
                                    date=datetime.now(timezone.utc), message_id=f"stop{number}")


class Run:
    """`mailbot run` as systemd starts it: its own process (forked from one that has imported
    mailbot, so a restart costs a fork), told READY through $NOTIFY_SOCKET."""

    def __init__(self, zygote, config: Path, tmp_path: Path, number: int):
        self.listener = NotifyListener(tmp_path / f"notify{number}.sock")
        self.log = tmp_path / f"run{number}.log"
        self.proc = zygote.start(config, "run", env={"NOTIFY_SOCKET": self.listener.path}, stderr=self.log)

    @property
    def lines(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def wait_ready(self) -> None:
        assert "READY=1" in self.listener.drain(until="READY=1", timeout=60), self.lines

    def stop(self) -> tuple[int, float]:
        """SIGTERM; (exit status, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill_group(signal.SIGKILL)
            self.listener.sock.close()
        return self.proc.returncode, time.monotonic() - started


def stop_at_random_points(zygote, config: Path, tmp_path: Path, done, begun, rng: random.Random, max_runs: int = 12,
                          longest_pause: float = 5.0) -> list[tuple[int, float, bool]]:
    """Start and SIGTERM the daemon until `done()`: the first time as soon as `begun()` (the work
    is under way: a random pause alone let a fast machine finish everything before the first stop,
    and no stop came in the middle), then at random moments; every stop's (status, seconds,
    whether work was left)."""
    stops = []
    for number in range(max_runs):
        run = Run(zygote, config, tmp_path, number)
        run.wait_ready()
        if number == 0:
            give_up = time.monotonic() + 60
            while not begun() and time.monotonic() < give_up:
                time.sleep(0.01)
        else:
            time.sleep(rng.uniform(0.0, longest_pause))
        status, seconds = run.stop()
        assert status == 0, run.lines
        report_if_slow(run, seconds)
        finished = done()
        stops.append((status, seconds, not finished))
        if finished:
            return stops
    # A last run, left alone until the work is done, then stopped: what the stops left is finished.
    run = Run(zygote, config, tmp_path, max_runs)
    run.wait_ready()
    deadline = time.monotonic() + 120
    while not done() and time.monotonic() < deadline:
        time.sleep(0.5)
    status, seconds = run.stop()
    report_if_slow(run, seconds)
    stops.append((status, seconds, False))
    return stops


def report_if_slow(run: Run, seconds: float) -> None:
    """A slow stop's log (with the daemon's thread stacks, written after 10 s) goes to the test's
    output, to show what held it."""
    if seconds >= STOP_WITHIN_SECONDS:
        print(f"--- a stop took {seconds:.1f} s; the end of its log:\n{run.lines[-20000:]}")


def test_sigterm_during_a_long_send_stops_within_10_s_and_sends_nothing_twice(tmp_path, dovecot, smtp_server, zygote):
    config = server_config(tmp_path, dovecot, smtp_server, extra="\n[sending]\nthrottle_seconds = 1\n")
    run_cli(config, "poll", "--no-send")  # the baseline: both mailboxes are empty
    files = []
    for number in range(EMAILS):
        path = tmp_path / f"m{number}.eml"
        path.write_bytes(school_mail(number)[1])
        files.append(str(path))
    run_cli(config, "ingest", *files)
    db = Database(config)
    assert Counter(o.status for o in db.outbox()) == {"queued": EMAILS}
    rng = random.Random(9)

    stops = stop_at_random_points(zygote, config, tmp_path, lambda: all(o.status == "sent" for o in db.outbox()),
                                  lambda: any(o.status == "sent" for o in db.outbox()), rng, max_runs=MAX_STOPS,
                                  longest_pause=3.0)

    print("stops (exit status, seconds):", stops)
    assert all(status == 0 and seconds < STOP_WITHIN_SECONDS for status, seconds, _left in stops), stops
    ids = Counter(parsed(mail.data)["Message-ID"] for mail in smtp_server.received)
    assert len(ids) == EMAILS and set(ids.values()) == {1}, ids  # all sent, none twice
    assert all(o.status == "sent" for o in db.outbox())
    assert any(left for _status, _seconds, left in stops)  # stops really came in the middle of the send


def test_sigterm_during_a_long_poll_stops_within_10_s_and_loses_nothing(tmp_path, dovecot, smtp_server, zygote):
    config = server_config(tmp_path, dovecot, smtp_server, extra="\n[sending]\nthrottle_seconds = 0\n")
    run_cli(config, "poll")  # the baseline
    by_box: dict[str, list[bytes]] = {}
    for number in range(100):
        box, raw = school_mail(number)
        by_box.setdefault(box, []).append(raw)
    for box, raws in by_box.items():
        dovecot.append_many(box, raws)
    db = Database(config)

    def done() -> bool:
        processed = [m for m in db.ledger() if m.outcome not in ("baseline", None)]
        return len(processed) == 100 and all(o.status == "sent" for o in db.outbox())

    def begun() -> bool:
        return any(m.outcome not in ("baseline", None) for m in db.ledger())

    stops = stop_at_random_points(zygote, config, tmp_path, done, begun, random.Random(11), max_runs=MAX_STOPS,
                                  longest_pause=2.0)

    print("stops (exit status, seconds):", stops)
    assert all(status == 0 and seconds < STOP_WITHIN_SECONDS for status, seconds, _left in stops), stops
    assert done(), db.outcomes()
    ledger = [m for m in db.ledger() if m.outcome != "baseline"]
    assert Counter(m.outcome for m in ledger) == {"accepted": 100}  # none failed, none twice
    assert len({m.message_id for m in ledger}) == 100
    assert len({s.message_pk for s in db.submissions()}) == len(db.submissions()) == 100
    ids = Counter(parsed(mail.data)["Message-ID"] for mail in smtp_server.received)
    assert set(ids.values()) == {1} and len(ids) == len(db.outbox()) == 100
    assert any(left for _status, _seconds, left in stops)  # stops really came in the middle of the poll
