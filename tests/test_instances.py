"""Several instances on one PostgreSQL database (issue 14 point 3): the poll lease, and the daily
sending cap counted across instances."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.leases import LeaseKeeper, acquire, poll_lease_name, release, renew
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Lease, Outbox
from mailbot.outbound.compose import Composed
from mailbot.outbound.outbox import queue_mail
from mailbot.outbound.sending import send_outbox
from support.shared_db import postgres_config

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
TTL = timedelta(seconds=45)


def shared(tmp_path, postgres, extra: str = ""):
    config = load_config(postgres_config(tmp_path, postgres, extra))
    engine = prepare_database(config)
    return config, engine, make_sessionmaker(engine)


def test_one_holder_at_a_time_and_a_dead_one_loses_it_at_expiry(tmp_path, postgres):
    _config, engine, sessions = shared(tmp_path, postgres)
    name = poll_lease_name("chuyoujiao")
    with sessions() as a, sessions() as b:
        assert acquire(a, name, "host-a:1:x", T0, TTL)
        assert not acquire(b, name, "host-b:2:y", T0 + timedelta(seconds=30), TTL)
        assert renew(a, name, "host-a:1:x", T0 + timedelta(seconds=30), TTL)  # A works on: until 01:01:15
        assert not acquire(b, name, "host-b:2:y", T0 + timedelta(seconds=70), TTL)
        # A dies (stops renewing): at its expiry B takes over, and A's next renewal says it lost it.
        assert acquire(b, name, "host-b:2:y", T0 + timedelta(seconds=76), TTL)
        assert not renew(a, name, "host-a:1:x", T0 + timedelta(seconds=77), TTL)
        release(a, name, "host-a:1:x")  # releasing what is no longer yours changes nothing
        assert a.scalar(select(Lease.holder).where(Lease.name == name)) == "host-b:2:y"
        release(b, name, "host-b:2:y")
        assert acquire(a, name, "host-a:1:x", T0 + timedelta(seconds=80), TTL)
    engine.dispose()


def test_a_holder_known_to_be_gone_is_replaced_before_its_expiry(tmp_path, postgres):
    _config, engine, sessions = shared(tmp_path, postgres)
    with sessions() as session:
        assert acquire(session, "poll:zjg", "host-a:1:x", T0, TTL)
        assert not acquire(session, "poll:zjg", "host-a:2:y", T0, TTL, abandoned=lambda holder: False)
        assert acquire(session, "poll:zjg", "host-a:2:y", T0, TTL, abandoned=lambda holder: holder == "host-a:1:x")
        assert not renew(session, "poll:zjg", "host-a:1:x", T0, TTL)
    engine.dispose()


def test_two_instances_racing_for_a_new_lease_one_wins(tmp_path, postgres):
    _config, engine, sessions = shared(tmp_path, postgres)
    barrier = threading.Barrier(8)
    won: list[str] = []

    def contender(i: int) -> None:
        with sessions() as session:
            barrier.wait()
            if acquire(session, "poll:zjg", f"host:{i}:r", T0, TTL):
                won.append(str(i))

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    engine.dispose()


def test_the_keeper_renews_while_the_work_runs_and_releases_after(tmp_path, postgres):
    _config, engine, sessions = shared(tmp_path, postgres)
    keeper = LeaseKeeper(sessions, "poll:zjg", "host:1:r", timedelta(seconds=1.5))
    assert keeper.acquire()

    def expiry():
        with sessions() as session:
            return session.scalar(select(Lease.expires_at).where(Lease.name == "poll:zjg"))

    first = expiry()
    deadline = time.monotonic() + 20
    while expiry() == first and time.monotonic() < deadline:
        time.sleep(0.1)
    assert expiry() > first, "the keeper never renewed the lease"
    assert not keeper.lost
    keeper.release()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lease)) == 0
    engine.dispose()


def test_the_daily_cap_is_counted_across_instances(tmp_path, postgres):
    """Four senders at once on one mailbox capped at 5 a day send exactly 5 of 12."""
    config, engine, sessions = shared(tmp_path, postgres, "[sending]\nthrottle_seconds = 0\n")
    mailbox = config.mailbox("chuyoujiao")
    mailbox.daily_send_cap = 5
    now = datetime(2022, 10, 20, 3, 0, tzinfo=timezone.utc)
    with sessions() as session:
        for n in range(12):
            queue_mail(session, key=f"test:{n}", kind="receipt", mailbox=mailbox, to=["beimenxx@163.com"],
                       composed=Composed(f"回执 {n}", "您好！\n", "<p>您好！</p>"), now=now)
        session.commit()
    barrier = threading.Barrier(4)
    reports, errors = [], []

    class SlowTransport:
        """Sends take a while, so the four senders overlap."""

        def send(self, row):
            time.sleep(0.05)
            return {}

        def close(self):
            pass

    def instance() -> None:
        own = make_sessionmaker(prepare_database(config))  # an engine of its own, as another process has
        barrier.wait()
        try:
            reports.append(send_outbox(config, own, lambda: now, transport_for=lambda mb: SlowTransport()))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=instance) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as session:
        sent = session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status == "sent", Outbox.kind == "receipt"))
        queued = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "queued",
                                                                             Outbox.kind == "receipt"))
        alarms = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == "operator_alarm"))
    assert errors == []
    assert sum(r.sent for r in reports) == sent + alarms  # the alarm is exempt from the cap
    assert (sent, queued) == (5, 7)
    assert alarms == 1  # the operator is told once, whichever instance reached the cap
    engine.dispose()


def test_two_instances_queueing_a_reminder_stage_at_once_queue_each_reminder_once(tmp_path, postgres):
    """The remind job of two instances at 09:00 on the 20th: one after the other (the advisory
    lock of in_write_transaction), so every reminder is queued once and neither fails."""
    from zoneinfo import ZoneInfo

    from mailbot.db.write_retry import in_write_transaction
    from mailbot.outbound.reminders import queue_reminders
    config, engine, sessions = shared(tmp_path, postgres)
    at = datetime(2022, 10, 20, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    barrier = threading.Barrier(2)
    queued, errors = [], []

    def instance() -> None:
        own = make_sessionmaker(prepare_database(config))
        barrier.wait()
        try:
            report = in_write_transaction(own, lambda session: queue_reminders(session, config, at), within=30)
            queued.append(sum(1 for item in report if item["queued"]))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as session:
        keys = session.scalars(select(Outbox.key).where(Outbox.kind == "reminder_upcoming")).all()
    assert errors == []
    assert len(keys) == len(set(keys)) == len(config.schools) and sorted(queued) == [0, len(keys)]
    engine.dispose()


def test_a_deadlock_or_serialization_failure_is_retried_like_a_locked_sqlite():
    from sqlalchemy.exc import OperationalError

    from mailbot.db.write_retry import is_locked

    class Orig(Exception):
        def __init__(self, sqlstate):
            super().__init__("conflict")
            self.sqlstate = sqlstate

    assert is_locked(OperationalError("UPDATE", {}, Orig("40P01")))
    assert is_locked(OperationalError("UPDATE", {}, Orig("40001")))
    assert not is_locked(OperationalError("UPDATE", {}, Orig("28P01")))  # a wrong password is not retried


def test_a_renewal_that_fails_with_any_error_is_tried_again_and_the_lease_lost_past_its_expiry(tmp_path, postgres):
    # Only OperationalError was caught: an InterfaceError (or a pool's TimeoutError) ended the
    # renewal thread with `lost` still false, and the work went on while the lease ran out.
    from sqlalchemy.exc import InterfaceError
    _config, engine, sessions = shared(tmp_path, postgres)
    now = [T0]
    keeper = LeaseKeeper(sessions, "poll:zjg", "host:1:r", timedelta(seconds=0.3), clock=lambda: now[0])
    assert keeper.acquire()
    failures = []

    def broken_sessions():
        failures.append(now[0])
        now[0] += timedelta(seconds=0.2)  # each failed try takes the clock past part of the lease
        raise InterfaceError("SELECT 1", {}, Exception("connection already closed"))
    keeper.sessions = broken_sessions
    deadline = time.monotonic() + 30
    while not keeper.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert keeper.lost and len(failures) >= 2  # tried again, then given up once past the expiry
    keeper.sessions = sessions
    keeper.release()
    with sessions() as session:  # lost: not released by us (it expires, or another holds it)
        assert session.scalar(select(func.count()).select_from(Lease)) == 1
    engine.dispose()
