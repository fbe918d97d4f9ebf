"""The daemon: jobs fire on their triggers, systemd hears READY/WATCHDOG/STOPPING, SIGTERM exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mailbot.config import load_config
from mailbot.app.daemon import Daemon, job_triggers, sd_notify, watchdog_seconds
from test_reminders import make_config

TZ = ZoneInfo("Asia/Shanghai")


class NotifyListener:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.path, self.messages = str(path), []

    def drain_in_background(self) -> threading.Thread:
        """Read while the daemon runs, as systemd does (an unread socket fills up after ~10 messages)."""
        self.done = threading.Event()

        def loop():
            while not self.done.is_set():
                self.drain()
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def drain(self, until: str | None = None, timeout: float = 10.0) -> list[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                if until is None:
                    break
            if until is not None and until in self.messages:
                break
        return self.messages


@pytest.fixture
def listener(tmp_path):
    notify = NotifyListener(tmp_path / "notify.sock")
    yield notify
    notify.sock.close()


def fast_config(tmp_path):
    config = make_config(tmp_path)
    config.schedule.poll_interval_minutes = 0.3 / 60  # every 0.3 s
    return config


def test_jobs_fire_systemd_is_told_and_sigterm_stops_cleanly(tmp_path, listener):
    runs = {"poll": 0, "remind": 0}
    finished_in_hand = threading.Event()

    def poll(should_stop):
        runs["poll"] += 1
        if runs["poll"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            # The message in hand is finished even though the stop was asked for meanwhile.
            deadline = time.monotonic() + 5
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            finished_in_hand.set()

    def remind(should_stop):
        runs["remind"] += 1

    environ = {"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"}
    daemon = Daemon(fast_config(tmp_path), {"poll": poll, "remind": remind}, environ=environ)
    reader = listener.drain_in_background()
    started = time.monotonic()
    status = daemon.run()
    listener.done.set()
    reader.join()
    assert status == 0
    assert time.monotonic() - started < 10
    assert finished_in_hand.is_set()
    assert runs["poll"] == 3  # nothing new started after SIGTERM
    assert runs["remind"] == 1  # the start-up catch-up run
    messages = listener.messages
    assert messages[0] == "READY=1" and "WATCHDOG=1" in messages and messages[-1] == "STOPPING=1"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back


def test_a_failing_job_is_logged_and_runs_again(tmp_path, caplog):
    calls = []

    def poll(should_stop):
        calls.append(time.monotonic())
        if len(calls) >= 3:
            daemon.request_stop()
        raise ConnectionError("imap.163.com timed out")

    daemon = Daemon(fast_config(tmp_path), {"poll": poll}, environ={})
    assert daemon.run(install_signals=False) == 0
    assert len(calls) == 3
    assert "job poll failed after" in caplog.text and "ConnectionError: imap.163.com timed out" in caplog.text


def test_unknown_job_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown daemon jobs"):
        Daemon(fast_config(tmp_path), {"pol": lambda s: None})


def test_triggers_fire_at_the_configured_local_times():
    config = make_config()
    triggers = job_triggers(config)
    start = datetime(2022, 10, 24, 8, 30, tzinfo=TZ)
    assert triggers["remind"].get_next_fire_time(None, start) == datetime(2022, 10, 24, 9, 0, tzinfo=TZ)
    # The summary job runs hourly (it checks its own day and time) and at the configured time.
    assert triggers["summary"].get_next_fire_time(None, datetime(2022, 10, 25, 9, 45, tzinfo=TZ)) == \
        datetime(2022, 10, 25, 10, 0, tzinfo=TZ)
    config.schedule.stages[1].at = config.schedule.stages[1].at.replace(minute=45)
    assert job_triggers(config)["remind"].get_next_fire_time(None, datetime(2022, 10, 24, 9, 30, tzinfo=TZ)) == \
        datetime(2022, 10, 24, 9, 45, tzinfo=TZ)


def test_sd_notify_and_watchdog_settings(listener):
    assert sd_notify("READY=1", {}) is False
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": "relative/path"}) is False
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": listener.path}) is True
    assert listener.drain() == ["READY=1"]
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "soon"}) is None and watchdog_seconds({}) is None


def test_mailbot_run_exits_0_promptly_on_sigterm(config_path, listener, tmp_path):
    launcher = "import sys; from mailbot.app.cli import main; sys.argv[0] = 'mailbot'; main()"
    env = {**os.environ, "NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000", "PYTHONUTF8": "1"}
    proc = subprocess.Popen([sys.executable, "-c", launcher, "--config", str(config_path), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        assert "READY=1" in listener.drain(until="READY=1", timeout=30), "".join(lines)
        deadline = time.monotonic() + 30  # let the start-up reminder check finish first
        while not any("job remind" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        proc.wait(timeout=20)
        reader.join(timeout=5)
    finally:
        proc.kill() if proc.poll() is None else None
    stderr = "".join(lines)
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started < 10
    assert "mailbot daemon ready" in stderr and "mailbot daemon stopped" in stderr
    assert "job remind done" in stderr
    assert load_config(config_path)  # the config the daemon ran on is untouched


def test_new_mail_announced_by_idle_runs_the_poll_at_once(tmp_path):
    config = fast_config(tmp_path)
    config.schedule.poll_interval_minutes = 60.0  # only the start-up poll and the wake-up
    polls = []

    def poll(should_stop):
        polls.append(time.monotonic())

    def watch(wake, stopping):  # stands in for mailbot.ingest.idle.start_watchers (tested on Dovecot)
        def announce():
            time.sleep(0.5)
            wake("chuyoujiao")
            time.sleep(1.0)
            daemon.request_stop()
        threading.Thread(target=announce, daemon=True).start()

    daemon = Daemon(config, {"poll": poll}, environ={}, watch=watch)
    assert daemon.run(install_signals=False) == 0
    assert len(polls) == 2 and polls[1] - polls[0] < 1.5
