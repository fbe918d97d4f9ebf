"""mailbot killed with SIGKILL at chosen points of a poll, again and again (SPEC 5): half of the
kills a few messages into the processing, half a few emails into the sending, each a random few
milliseconds after the chosen event, so that it falls inside a step.

In the end every message is processed exactly once and every reply is sent at least once; a reply
reaches the school twice only when the kill fell inside the send window (after the SMTP server
accepted it, before mailbot recorded that; see mailbot.outbound.sending). The test counts those and
reports them.
"""

from __future__ import annotations

import collections
import contextlib
import email
import os
import random
import signal
import sqlite3
import time

from sqlalchemy import func, select
from sqlalchemy.exc import ProgrammingError

from builders import submission
from mailbot.config import load_config
from mailbot.db.engine import engine_for, make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Message, Outbox, Submission
from support.configs import ACCOUNTS, ROSTER, server_config

MESSAGES = 80  # enough work left for MIN_KILLS kills however fast a poll has become
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


def run_poll(zygote, config, kill_when=None, rng: random.Random | None = None) -> bool:
    """One `mailbot poll` in its own process group (forked from a process that has imported mailbot:
    a start costs a fork, not an interpreter start-up); killed with SIGKILL, it and its table-reader
    workers, a random few milliseconds after `kill_when()` first holds. True when it was killed.
    The mail is there before the first poll, so that poll records it as baseline (SPEC 5); `--since
    ... --reply` imports it on purpose and answers it, as the crash test wants every message processed."""
    proc = zygote.start(config, "poll", "--since", "2000-01-01", "--reply")
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if kill_when is not None and kill_when():
                time.sleep(rng.uniform(0, 0.02))
                killed = proc.kill_group(signal.SIGKILL)  # False: it finished first
                proc.wait()
                return killed
            time.sleep(0.005)
        assert proc.poll() is not None, "a poll did not finish in 300 s"
        return False
    finally:
        if proc.poll() is None:
            proc.kill_group(signal.SIGKILL)
            proc.wait()


_engines: dict = {}


def processed(config) -> int:
    """Messages recorded as accepted, read as another process would (the test never holds a lock)."""
    cfg = load_config(config)
    if cfg.database_backend == "postgresql":  # --database=postgresql
        engine = _engines.get(config) or _engines.setdefault(config, engine_for(cfg))
        try:
            with engine.connect() as conn:
                return conn.exec_driver_sql("SELECT count(*) FROM messages WHERE outcome = 'accepted'").scalar()
        except ProgrammingError:  # the schema is not there yet
            return 0
    database = cfg.state_dir / "mailbot.sqlite3"
    if not database.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as db:
            return db.execute("SELECT count(*) FROM messages WHERE outcome = 'accepted'").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw)["Message-ID"].strip("<>")


def test_sigkill_at_random_points_processes_once_and_replies_at_least_once(tmp_path, dovecot, smtp_server, zygote,
                                                                          record_property):
    rng = random.Random(SEED)
    config = server_config(tmp_path, dovecot, smtp_server,
                           "[sending]\nthrottle_seconds = 0\nretry_base_seconds = 0\nmax_attempts = 50\n")
    dovecot.append_many(ACCOUNTS["chuyoujiao"], school_submissions())
    accepted_before_kill: list[int] = []  # messages the SMTP server had accepted at each kill
    runs = 0
    while runs < MAX_RUNS and (len(accepted_before_kill) < MIN_KILLS or not all_done(config)):
        runs += 1
        if len(accepted_before_kill) >= MIN_KILLS:
            run_poll(zygote, config)
            continue
        if len(accepted_before_kill) < MIN_KILLS // 2 and processed(config) < MESSAGES - 4:
            # in the processing: a few more messages recorded
            target = processed(config) + rng.randint(1, 4)
            kill_when = lambda: processed(config) >= target  # noqa: E731
        else:  # in the sending: a few more emails accepted by the server
            target = len(smtp_server.received) + rng.randint(1, 4)
            kill_when = lambda: len(smtp_server.received) >= target  # noqa: E731
        if run_poll(zygote, config, kill_when, rng):
            smtp_server.settle()  # what the killed client had already written is read and recorded
            accepted_before_kill.append(len(smtp_server.received))
    assert run_poll(zygote, config) is False

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
