"""The daemon's jobs over a whole simulated October 2022, against real Dovecot and SMTP servers.

Both section mailboxes, the schools, the section staff and the leader are Dovecot users; mailbot
sends through aiosmtpd, which delivers into their INBOXes, so every assertion reads what a person
really got. The clock is fake: the jobs (`DaemonJobs`, exactly what `mailbot run` schedules) are
run at the times the scheduler would run them, so a month takes seconds. A "restart" is a new
Context with new jobs on the same state directory, as a new process would have.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from builders import submission
from mailbot.app.jobs import DaemonJobs
from mailbot.app.options import Context
from mailbot.config import ServerConfig, load_config
from mailbot.app.daemon import Daemon
from mailbot.db.models import Submission
from support import loopback

TZ = ZoneInfo("Asia/Shanghai")
PRIMARY_BOX, MIDDLE_BOX = "chuyoujiao@example.test", "zjg@example.test"
LEADER, STAFF = "leader@example.test", "staff@example.test"
BEIMEN, CHENGNAN, CNZX = "安溪县北门小学", "安溪县城南实验小学", "安溪县城南中学"
SCHOOLS = {  # name -> (level, the school's Dovecot user)
    BEIMEN: ("primary", "school1@example.test"),
    CHENGNAN: ("primary", "school2@example.test"),
    CNZX: ("middle", "school3@example.test"),
}
# What each kind of email mailbot sends says in its subject (mailbot/templates/*/subject.txt).
SUBJECT_KINDS = [("回执", "receipt"), ("报送提醒", "upcoming"), ("截止，请及时报送", "due"),
                 ("尚未收到，请尽快补报", "overdue"), ("未报送学校名单", "staff_missing"),
                 ("城区学校课后服务开展情况汇总", "summary")]


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2022, 10, day, hour, minute, tzinfo=TZ)


@pytest.fixture(autouse=True)
def people_are_mail_users(monkeypatch):
    """The leader and the staff get mail too. Autouse, so it runs before the server fixtures,
    which create their password files from support.loopback.USERS."""
    monkeypatch.setitem(loopback.USERS, LEADER, "pw-leader")
    monkeypatch.setitem(loopback.USERS, STAFF, "pw-staff")


def write_config(tmp_path: Path, imap, smtp) -> Path:
    """A config file for two Dovecot section mailboxes sending through the SMTP fixture."""
    def server_lines(prefix: str, server, folder: bool) -> list[str]:
        return [f"[{prefix}]", f'host = "{server.host}"', f"port = {server.port}", 'security = "plain"',
                f'username = "{server.username}"', f'password_file = "{server.password_file}"',
                *(['folder = "INBOX"'] if folder else []), ""]

    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{tmp_path / "state"}"', "",
             "[schedule]", "deadline_day = 24", "summary_day = 25", 'summary_time = "10:00"', "",
             "[sending]", "throttle_seconds = 0", "", "[summary]", f'recipients = ["{LEADER}"]', "",
             "[security]", 'sender_auth = "evidence"', ""]  # the test mail is unsigned
    for user, level in ((PRIMARY_BOX, "primary"), (MIDDLE_BOX, "middle")):
        lines += ["[[mailbox]]", f'name = "{user.split("@")[0]}"', f'address = "{user}"',
                  f'levels = ["{level}"]', f'staff = ["{STAFF}"]', ""]
        lines += server_lines("mailbox.imap", imap(user), True) + server_lines("mailbox.smtp", smtp(user), False)
    for name, (level, user) in SCHOOLS.items():
        lines += ["[[school]]", f"name = {json.dumps(name, ensure_ascii=False)}", f'level = "{level}"',
                  f'emails = ["{user}"]', ""]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Machine:
    """One run of `mailbot run`: a Context and its jobs, with a clock the test sets."""

    def __init__(self, config_path: Path, now: datetime):
        self.context = Context(str(config_path), now.isoformat())
        self.daemon_jobs = DaemonJobs(self.context.config, self.context.sessions(), self.context.clock)
        self.jobs = self.daemon_jobs.by_name()

    def at(self, now: datetime, *names: str) -> dict[str, object]:
        """Run these jobs at `now`, in this order (the daemon's start-up runs all of them)."""
        self.context._now = now  # what `--now` sets; the jobs read it through Context.clock
        return {name: self.jobs[name](lambda: False) for name in names or ("remind", "summary", "poll")}

    def hourly(self, start: datetime, end: datetime) -> None:
        """The hourly remind/summary checks and a poll after each, from `start` up to `end`."""
        when = start
        while when <= end:
            self.at(when)
            when += timedelta(hours=1)

    def stop(self) -> None:
        self.daemon_jobs.close()
        self.context.close()


def inbox_kinds(server, user: str) -> Counter:
    """How many emails of each kind `user` has in the INBOX (read without marking anything)."""
    client = server.client(user)
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    kinds: Counter = Counter()
    for item in client.fetch(uids, ["BODY.PEEK[]"]).values() if uids else []:
        message = email.message_from_bytes(item[b"BODY[]"], policy=email.policy.default)
        subject = str(message["Subject"])
        kinds[next((kind for marker, kind in SUBJECT_KINDS if marker in subject), f"other: {subject}")] += 1
    return kinds


def school_mail(name: str, sent: datetime, number: int) -> bytes:
    level, user = SCHOOLS[name]
    to = PRIMARY_BOX if level == "primary" else MIDDLE_BOX
    return submission(user, to, [[name, 1, 1800 + number, 1700 + number, "是", "科普、阅读"]], date=sent,
                      message_id=f"e2e-{number}")


def submissions(config_path: Path) -> dict[str, bool]:
    """school -> late, for the October submissions in force."""
    context = Context(str(config_path), None)
    try:
        with context.sessions()() as session:
            rows = session.scalars(select(Submission).where(Submission.month == "2022-10",
                                                            Submission.replaced_by.is_(None)))
            return {row.school: row.late for row in rows}
    finally:
        context.close()


def test_a_month_of_the_daemon_with_a_restart_on_the_deadline_day(tmp_path, dovecot, smtp_server):
    smtp_server.deliver_into = dovecot
    config_path = write_config(tmp_path, dovecot.imap_config, lambda u: smtp_server.smtp_config(u, "plain"))
    school = {name: user for name, (_level, user) in SCHOOLS.items()}

    machine = Machine(config_path, local(1, 8))
    machine.at(local(1, 8))  # start-up: nothing is due on the 1st
    dovecot.append(PRIMARY_BOX, school_mail(BEIMEN, local(10, 15), 1))
    machine.at(local(10, 15, 5), "poll")
    assert inbox_kinds(dovecot, school[BEIMEN]) == {"receipt": 1}

    machine.hourly(local(20, 7), local(20, 10))  # 09:00 on the 20th: `upcoming` to the two missing
    assert inbox_kinds(dovecot, school[BEIMEN]) == {"receipt": 1}
    assert inbox_kinds(dovecot, school[CHENGNAN]) == {"upcoming": 1}
    assert inbox_kinds(dovecot, school[CNZX]) == {"upcoming": 1}

    dovecot.append(PRIMARY_BOX, school_mail(CHENGNAN, local(22, 16), 2))
    machine.hourly(local(22, 16), local(24, 8))  # the machine goes down at 08:30 on the deadline day
    machine.stop()
    assert inbox_kinds(dovecot, school[CHENGNAN]) == {"upcoming": 1, "receipt": 1}
    assert inbox_kinds(dovecot, school[CNZX]) == {"upcoming": 1}

    # It comes back at 11:00: the start-up run catches up the 09:00 `due` stage, for CNZX only.
    machine = Machine(config_path, local(24, 11))
    machine.at(local(24, 11))
    assert inbox_kinds(dovecot, school[CNZX]) == {"upcoming": 1, "due": 1}
    machine.stop()
    machine = Machine(config_path, local(24, 11, 20))  # restarted again at once: nothing repeats
    machine.at(local(24, 11, 20))
    machine.hourly(local(24, 12), local(25, 9, 30))  # 09:00 on the 25th: `overdue` and the staff list
    assert inbox_kinds(dovecot, school[CNZX]) == {"upcoming": 1, "due": 1, "overdue": 1}
    assert inbox_kinds(dovecot, STAFF) == {"staff_missing": 1}  # the middle section only misses CNZX
    assert inbox_kinds(dovecot, LEADER) == {}  # the summary waits for 10:00

    machine.at(local(25, 10), "summary", "remind", "poll")
    machine.hourly(local(25, 11), local(25, 13))
    assert inbox_kinds(dovecot, LEADER) == {"summary": 1}

    dovecot.append(MIDDLE_BOX, school_mail(CNZX, local(26, 9, 40), 3))  # a late submission
    machine.hourly(local(26, 10), local(26, 12))
    machine.stop()
    machine = Machine(config_path, local(31, 23))  # a last restart at the end of the month
    machine.at(local(31, 23))
    machine.stop()

    assert submissions(config_path) == {BEIMEN: False, CHENGNAN: False, CNZX: True}
    # Over the month, every person got each kind of email exactly once, and only what was due.
    assert inbox_kinds(dovecot, school[BEIMEN]) == {"receipt": 1}
    assert inbox_kinds(dovecot, school[CHENGNAN]) == {"upcoming": 1, "receipt": 1}
    assert inbox_kinds(dovecot, school[CNZX]) == {"upcoming": 1, "due": 1, "overdue": 1, "receipt": 1}
    assert inbox_kinds(dovecot, STAFF) == {"staff_missing": 1}
    assert inbox_kinds(dovecot, LEADER) == {"summary": 1}
    receipt = dovecot.client(school[CNZX])
    receipt.select_folder("INBOX", readonly=True)
    subjects = [str(email.message_from_bytes(item[b"BODY[]"], policy=email.policy.default)["Subject"])
                for item in receipt.fetch(receipt.search("ALL"), ["BODY.PEEK[]"]).values()]
    assert any("回执" in s and "逾期报送" in s for s in subjects), subjects  # the school is told it was late


def fire_times(trigger, start: datetime, end: datetime) -> list[datetime]:
    times, previous, now = [], None, start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire >= end:
            return times
        times.append(fire)
        previous, now = fire, fire + timedelta(microseconds=1)


def test_the_scheduler_fires_the_month_s_stages_and_summary_on_time(tmp_path):
    def account(user: str) -> ServerConfig:  # the scheduler never connects: no server needed
        return ServerConfig(host="127.0.0.1", port=1, security="plain", username=user,
                            password_file=tmp_path / "secret")
    config = load_config(write_config(tmp_path, account, account))
    config.schedule.stages[1].at = config.schedule.stages[1].at.replace(hour=14, minute=45)  # due at 14:45
    scheduler = Daemon(config, {"poll": print, "remind": print, "summary": print}, environ={}).build()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs.keys() == {"poll", "remind", "summary"}
    start, end = local(1, 0), datetime(2022, 11, 1, tzinfo=TZ)

    remind = fire_times(jobs["remind"].trigger, start, end)
    # Hourly (the catch-up) and at every stage's time of day, in Shanghai time; the job itself
    # decides which stage is due on which day, so firing at 14:45 on other days costs one query.
    assert {t.time() for t in remind if t.minute != 0} == {local(24, 14, 45).time()}
    assert len(remind) == 31 * 24 + 31 and len(set(remind)) == len(remind)
    assert {local(20, 9), local(24, 14, 45), local(25, 9)} <= set(remind)
    assert all(t.utcoffset() == timedelta(hours=8) for t in remind)

    summary = fire_times(jobs["summary"].trigger, start, end)
    assert [t for t in summary if t.minute != 30] == [local(25, 10)]
    assert len(summary) == 31 * 24 + 1

    # Polling counts from the start-up (which runs every job at once), every 5 minutes.
    assert jobs["poll"].next_run_time <= datetime.now(TZ)
    first = jobs["poll"].trigger.start_date
    poll = fire_times(jobs["poll"].trigger, first, first + timedelta(hours=1))
    assert [b - a for a, b in zip(poll, poll[1:])] == [timedelta(minutes=5)] * 11
