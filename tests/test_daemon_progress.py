"""The daemon when a poll hangs (issue 11 point 4): the "no successful poll" alarm is raised by
the clock, through the other mailbox, and the systemd watchdog is no longer pinged once a job has
run for longer than any healthy one can."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from support.configs import write_config
from mailbot.app.daemon import Daemon
from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import MailboxState, Outbox
from mailbot.ingest.poll_health import raise_due_poll_alarms
from mailbot.transports.maildir import MaildirInbox

NOW = datetime(2022, 10, 24, 2, 0, tzinfo=timezone.utc)


def test_no_successful_poll_is_alarmed_by_the_clock_through_the_other_mailbox(tmp_path):
    config = load_config(write_config(tmp_path))
    engine = prepare_database(config)
    sessions = make_sessionmaker(engine)
    stalled, other = config.mailboxes[0], config.mailboxes[1]
    with sessions.begin() as session:  # a poll of `stalled` started two hours ago and never returned
        session.add(MailboxState(mailbox=stalled.name, folder=MaildirInbox.folder, uidvalidity=None, last_uid=0,
                                 created_at=NOW - timedelta(hours=2), last_attempt_at=NOW - timedelta(hours=2)))
        session.add(MailboxState(mailbox=other.name, folder=MaildirInbox.folder, uidvalidity=None, last_uid=0,
                                 created_at=NOW - timedelta(hours=2), last_success_at=NOW - timedelta(minutes=5)))

    assert raise_due_poll_alarms(config, sessions, NOW) == 1
    assert raise_due_poll_alarms(config, sessions, NOW + timedelta(minutes=1)) == 0  # once, not every minute
    with sessions() as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == "operator_alarm")).all()
    engine.dispose()
    assert [(r.mailbox, r.recipient) for r in rows] == [(other.name, config.operator_email)]
    assert rows[0].key.startswith(f"alarm:poll_stalled:{stalled.name}:")


def test_the_watchdog_is_not_pinged_while_a_job_is_stuck(tmp_path):
    config = load_config(write_config(tmp_path))
    now = [1000.0]
    pings = []
    daemon = Daemon(config, {"poll": lambda s: None}, environ={}, hung_after=600, monotonic=lambda: now[0])
    daemon.notifier._send = lambda state, environ: pings.append(state) or True
    release, started = threading.Event(), threading.Event()

    def hanging_poll(should_stop):
        started.set()
        release.wait(30)

    job = threading.Thread(target=daemon._guarded("poll", hanging_poll))
    job.start()
    started.wait(10)
    assert daemon.ping_watchdog()  # running, but not for long
    now[0] += 601
    assert daemon.stuck_jobs() == ["poll"]
    assert not daemon.ping_watchdog()  # systemd's WatchdogSec will restart the daemon
    release.set()
    job.join(10)
    assert daemon.ping_watchdog()
    assert pings == ["WATCHDOG=1", "WATCHDOG=1"]
