"""A full disk at the archive is alarmed once, by a path that needs no disk, and the message is
read again later, not lost (issue 11 point 9).

Two ways of filling the disk:
- in this process, the archive's write raises ENOSPC (as tests/test_archive_full_disk.py does):
  there a Python audit hook shows that sending the alarm opens no file for writing and no
  database connection (it is composed in memory and handed to the SMTP server);
- in a real `mailbot poll` process, the archive directory is a real, full tmpfs of 64 KiB, so the
  kernel itself answers ENOSPC (mounting needs CAP_SYS_ADMIN: skipped without it). RLIMIT_FSIZE
  would be simpler but gives EFBIG, which is not a full disk.
"""

from __future__ import annotations

import email
import email.policy
import errno
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from builders import submission
from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Message, Outbox
from mailbot.outbound import disk_alarm
from mailbot.outbound.disk_alarm import DiskFullAlarm
from support.cli import run_cli, run_process
from support.configs import ACCOUNTS, ROSTER, server_config

OPERATOR = "operator@example.test"
DISK_FULL_SUBJECT = "磁盘已满"
PRIMARY = next(s for s in ROSTER["school"] if s["level"] == "primary" and s["emails"])


def school_mail(number: int) -> bytes:
    return submission(PRIMARY["emails"][0], "chuyoujiao@163.com",
                      [[PRIMARY["name"], 1, 800 + number, 700 + number, "是", "科普"]],
                      date=datetime.now(timezone.utc), message_id=f"diskfull{number}")


def subject(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])


def disk_full_alarms(smtp_server) -> list:
    return [m for m in smtp_server.received if OPERATOR in m.rcpt_tos and DISK_FULL_SUBJECT in subject(m.data)]


def accepted(config: Path) -> int:
    engine = prepare_database(load_config(config))
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalar(select(func.count()).select_from(Message).where(Message.outcome == "accepted"))
    finally:
        engine.dispose()


class WritesWatched:
    """A Python audit hook (it cannot be removed, so it only looks while `.on`): every file opened
    for writing and every SQLite connection made while on."""

    installed: "WritesWatched | None" = None

    def __init__(self):
        self.on, self.writes = False, []

    @classmethod
    def get(cls) -> "WritesWatched":
        if cls.installed is None:
            cls.installed = cls()
            sys.addaudithook(cls.installed._hook)
        cls.installed.writes = []
        return cls.installed

    def _hook(self, event: str, args) -> None:
        if not self.on:
            return
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and flags & (0o1 | 0o2 | 0o100))  # O_WRONLY, O_RDWR, O_CREAT
            if writing:
                self.writes.append(str(path))
        elif event == "sqlite3.connect":
            self.writes.append(f"sqlite3.connect {args}")


def test_the_archive_full_alarms_once_from_memory_and_the_message_is_read_again(tmp_path, dovecot, smtp_server,
                                                                                 monkeypatch):
    config = server_config(tmp_path, dovecot, smtp_server, "[sending]\nthrottle_seconds = 0\n")
    run_cli(config, "poll")  # first contact: the baseline
    dovecot.append(ACCOUNTS["chuyoujiao"], school_mail(0))
    real_write = Path.write_bytes

    def disk_full(self, data):
        if self.name.endswith(".tmp"):  # the archive's temporary file
            real_write(self, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    watched = WritesWatched.get()
    watched.on = True  # the hook sees a write when there is one
    (tmp_path / "seen.txt").write_text("x")
    watched.on = False
    assert watched.writes == [str(tmp_path / "seen.txt")]
    watched.writes.clear()
    real_send = DiskFullAlarm._send

    def watched_send(self, *args, **kwargs):
        watched.on = True
        try:
            return real_send(self, *args, **kwargs)
        finally:
            watched.on = False

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    monkeypatch.setattr(DiskFullAlarm, "_send", watched_send)
    polls = [run_cli(config, "poll", check=False) for _ in range(3)]  # three processes' worth of polls
    monkeypatch.undo()

    assert all(p.exit_code == 1 for p in polls), polls[0]  # chuyoujiao failed ...
    assert all("disk full" in p.stderr for p in polls)
    assert all("polling zjg failed" not in p.stderr for p in polls)  # ... zjg was polled all the same
    alarms = disk_full_alarms(smtp_server)
    assert len(alarms) == 1, [subject(m.data) for m in smtp_server.received]  # once, not once per attempt
    assert alarms[0].mail_from == "chuyoujiao@163.com"  # the first mailbox whose server takes it
    assert watched.writes == []  # composed and sent without writing a file or opening the database
    assert "alarm sent to operator@example.test through chuyoujiao, from memory" in polls[0].stderr
    assert accepted(config) == 0
    assert [p for p in (tmp_path / "state" / "archive").rglob("*.tmp")] == []

    run_cli(config, "poll")  # space again: the message was left unread, so it is read now
    assert accepted(config) == 1
    receipts = [m for m in smtp_server.received if PRIMARY["emails"][0] in m.rcpt_tos]
    assert len(receipts) == 1 and b"diskfull0@test" in receipts[0].data


def test_the_daemon_remembers_its_alarm_for_the_period_without_the_database(tmp_path, dovecot, smtp_server):
    # The daemon is one process: when the database cannot be read or written either, the process's
    # memory coalesces; after the period the alarm is sent again.
    config = load_config(server_config(tmp_path, dovecot, smtp_server))
    now = [1000.0]
    alarm = DiskFullAlarm(config, None, monotonic=lambda: now[0])
    full = OSError(errno.ENOSPC, "No space left on device")
    at = datetime(2022, 10, 24, 2, 0, tzinfo=timezone.utc)
    assert alarm.alarm(full, mailbox="zjg", directory="/var/lib/mailbot/archive", now=at)
    now[0] += 60
    assert not alarm.alarm(full, mailbox="zjg", directory="/var/lib/mailbot/archive", now=at + timedelta(minutes=1))
    now[0] += config.alarm_after_minutes * 60
    assert alarm.alarm(full, mailbox="zjg", directory="/var/lib/mailbot/archive", now=at + timedelta(hours=2))
    assert len(disk_full_alarms(smtp_server)) == 2


def test_a_mailbox_whose_server_refuses_is_skipped_for_the_next(tmp_path, dovecot, smtp_server):
    config = load_config(server_config(tmp_path, dovecot, smtp_server))
    smtp_server.fail("MAIL", "554 DT:SPM 163 smtp refused")  # the first mailbox's account is blocked
    alarm = DiskFullAlarm(config, None)
    assert alarm.alarm(OSError(errno.ENOSPC, "No space left on device"), mailbox="chuyoujiao",
                       directory="/var/lib/mailbot/archive", now=datetime.now(timezone.utc))
    (sent,) = disk_full_alarms(smtp_server)
    assert sent.mail_from == "zjg23236764@163.com"


# -- a real full filesystem under a real process ---------------------------------------------------

def mount_full_tmpfs(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {done.stderr.strip()}")
    filler = directory / "filler"
    try:
        with filler.open("wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def test_a_real_full_filesystem_under_mailbot_poll(tmp_path, dovecot, smtp_server):
    config = server_config(tmp_path, dovecot, smtp_server, "[sending]\nthrottle_seconds = 0\n")
    run_cli(config, "poll")  # the baseline, with the archive still on the ordinary disk
    archive = tmp_path / "state" / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    mount_full_tmpfs(archive)
    try:
        dovecot.append(ACCOUNTS["chuyoujiao"], school_mail(1))
        first = run_process(config, "poll", check=False, timeout=300)
        second = run_process(config, "poll", check=False, timeout=300)
        assert first.exit_code == 1 and "disk full" in first.stderr, str(first)
        assert len(disk_full_alarms(smtp_server)) == 1, str(second)  # the second process honours the first's
        assert accepted(config) == 0
        assert [p.name for p in archive.rglob("*") if p.is_file()] == ["filler"]  # no partial file left
        (archive / "filler").unlink()  # space again
        run_process(config, "poll", timeout=300)
    finally:
        subprocess.run(["umount", "-l", str(archive)], capture_output=True)
    assert accepted(config) == 1
    engine = prepare_database(load_config(config))
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(select(Outbox).where(Outbox.key.startswith(disk_alarm.KEY_PREFIX))).all()
    engine.dispose()
    assert [(r.status, r.recipient) for r in rows] == [("sent", OPERATOR)]  # recorded, since the database could be
