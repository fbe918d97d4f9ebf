"""mailbot killed with SIGKILL at random points of a poll, again and again (SPEC 5).

In the end every message is processed exactly once and every reply is sent at least once; a reply
reaches the school twice only when the kill fell inside the send window (after the SMTP server
accepted it, before mailbot recorded that; see mailbot.outbound.sending). The test counts those and
reports them.
"""

from __future__ import annotations

import collections
import email
import os
import random
import shutil
import signal
import subprocess
import time

from sqlalchemy import func, select

from builders import submission
from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Message, Outbox, Submission
from support.cli import start_process
from support.configs import ACCOUNTS, ROSTER, server_config

MESSAGES = 50
MIN_KILLS = 10
MAX_RUNS = 60
SEED = int(os.environ.get("MAILBOT_CRASH_SEED", "20221020"))


def school_submissions() -> list[bytes]:
    schools = [(s["emails"][0], s["name"]) for s in ROSTER["school"] if s["emails"]]
    raws = []
    for number in range(MESSAGES):
        sender, name = schools[number % len(schools)]
        raws.append(submission(sender, "chuyoujiao@163.com", [[name, 1, 1000 + number, 900 + number, "是", "科普"]],
                               message_id=f"crash{number}"))
    return raws


def run_poll(config, kill_after: float | None) -> bool:
    """One `mailbot poll` in its own process group; True when it was killed. The mail is there
    before the first poll, so that poll records it as baseline (SPEC 5); `--since ... --reply`
    imports it on purpose and answers it, as the crash test wants every message processed."""
    proc = start_process(config, "poll", "--since", "2000-01-01", "--reply", stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=kill_after)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its table-reader workers, mid-step
        proc.wait()
        return True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw)["Message-ID"].strip("<>")


def test_sigkill_at_random_points_processes_once_and_replies_at_least_once(tmp_path, dovecot, smtp_server,
                                                                          record_property):
    rng = random.Random(SEED)
    config = server_config(tmp_path, dovecot, smtp_server,
                           "[sending]\nthrottle_seconds = 0\nretry_base_seconds = 0\nmax_attempts = 50\n")
    dovecot.append_many(ACCOUNTS["chuyoujiao"], school_submissions())
    # One undisturbed run measures how long a whole poll takes; then start again from nothing so
    # that the kills fall all over a real run.
    started = time.monotonic()
    assert run_poll(config, None) is False
    whole = time.monotonic() - started
    shutil.rmtree(tmp_path / "state")
    smtp_server.received.clear()

    accepted_before_kill: list[int] = []  # messages the SMTP server had accepted at each kill
    runs = 0
    while runs < MAX_RUNS and (len(accepted_before_kill) < MIN_KILLS or not all_done(config)):
        runs += 1
        if len(accepted_before_kill) >= MIN_KILLS:
            run_poll(config, None)
            continue
        if run_poll(config, rng.uniform(0.05, whole)):
            accepted_before_kill.append(len(smtp_server.received))
    assert run_poll(config, None) is False

    assert len(accepted_before_kill) >= MIN_KILLS
    assert all_done(config)
    cfg = load_config(config)
    engine = prepare_database(cfg)
    with make_sessionmaker(engine)() as session:
        ledger = session.execute(select(Message.uid, Message.outcome)).all()
        receipts = session.scalars(select(Outbox).where(Outbox.kind == "receipt")).all()
        submissions = session.scalar(select(func.count()).select_from(Submission))
    engine.dispose()
    assert sorted(int(uid) for uid, _ in ledger) == list(range(1, MESSAGES + 1))  # each message once
    assert {outcome for _, outcome in ledger} == {"accepted"}
    assert submissions == MESSAGES
    assert len(receipts) == MESSAGES and {r.status for r in receipts} == {"sent"}

    copies = collections.defaultdict(list)
    for index, mail in enumerate(smtp_server.received):
        copies[message_id(mail.data)].append(index)
    assert {r.message_id for r in receipts} <= set(copies)  # every reply sent at least once
    in_window = {count - 1 for count in accepted_before_kill}
    twice = {mid: where for mid, where in copies.items() if len(where) > 1}
    for mid, where in twice.items():
        assert all(index in in_window for index in where[:-1]), (mid, where, sorted(in_window))
    report = (f"{len(accepted_before_kill)} kills in {runs} runs (seed {SEED}): {len(twice)} replies sent twice, "
              f"each after a kill inside the send window")
    record_property("crash_report", report)
    print(report)


def all_done(config) -> bool:
    cfg = load_config(config)
    engine = prepare_database(cfg)
    try:
        with make_sessionmaker(engine)() as session:
            processed = session.scalar(select(func.count()).select_from(Message).where(Message.outcome == "accepted"))
            waiting = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status != "sent"))
        return processed == MESSAGES and waiting == 0
    finally:
        engine.dispose()
