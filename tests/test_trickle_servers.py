"""A trickling IMAP or SMTP peer cannot hang mailbot (issue 11 point 4): every operation has an
overall deadline, enforced however slowly the peer keeps sending.

Each peer sends a byte every 0.2 s, far inside the 30 s per-read timeout, so before the fix these
waited for ever. The deadline is 2 s; "returns within the deadline plus 10 s" is the issue's bound.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from builders import submission
from mailbot.config import MailboxConfig, ServerConfig
from mailbot.errors import TemporarySendError, TransportError
from mailbot.transports.imap import ImapInbox
from mailbot.transports.deadline import abandon_for_stop
from mailbot.transports.smtp import SmtpSender
from support.cli import Result, run_process
from support.sending_world import World
from support.trickle import IMAP_GREETING, SMTP_GREETING, TricklingPeer

DEADLINE = 2.0
BOUND = DEADLINE + 10.0
READ_TIMEOUT = 30.0


def server(port: int, **kwargs) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=port, security="plain", username="zjg@example.test",
                        password_env="MAILBOT_TEST_PASSWORD", timeout=READ_TIMEOUT, deadline=DEADLINE, **kwargs)


@pytest.fixture(autouse=True)
def password(monkeypatch):
    monkeypatch.setenv("MAILBOT_TEST_PASSWORD", "secret")


def imap_mailbox(port: int) -> MailboxConfig:
    return MailboxConfig(name="zjg", address="zjg@example.test", levels=["middle"], imap=server(port))


@pytest.mark.parametrize("greeting", [None, IMAP_GREETING], ids=["greeting", "login"])
def test_imap_session_is_cut_at_its_deadline(greeting):
    with TricklingPeer(greeting, interval=0.2, prefix=b"* OK " if greeting is None else b"a1 ") as peer:
        started = time.monotonic()
        with pytest.raises(TransportError, match="deadline"):
            with ImapInbox(imap_mailbox(peer.port)).session():
                pass
        assert time.monotonic() - started < BOUND


def test_imap_poll_deadline_bounds_the_whole_session():
    with TricklingPeer(IMAP_GREETING, interval=0.2, prefix=b"a1 ") as peer:
        mailbox = imap_mailbox(peer.port)
        mailbox.imap.deadline = 600.0  # each operation alone would wait long ...
        started = time.monotonic()
        with pytest.raises(TransportError):
            with ImapInbox(mailbox, session_seconds=DEADLINE).session():  # ... the session may not
                pass
        assert time.monotonic() - started < BOUND


@pytest.mark.parametrize("greeting", [None, SMTP_GREETING], ids=["greeting", "ehlo"])
def test_smtp_send_is_cut_at_its_deadline(greeting):
    with TricklingPeer(greeting, interval=0.2, prefix=b"220" if greeting is None else b"250") as peer:
        started = time.monotonic()
        with SmtpSender(server(peer.port)) as sender:
            with pytest.raises(TemporarySendError) as caught:
                sender.send("zjg@example.test", ["school@example.test"], b"Subject: x\r\n\r\nhello\r\n")
        assert caught.value.stalled
        assert time.monotonic() - started < BOUND


def test_a_stop_cuts_an_smtp_connection_being_made_and_counts_no_attempt(tmp_path):
    """What `mailbot run` does at a stop (`abandon_for_stop`), during a send job whose server
    trickles its greeting: the job returns at once, not after the deadline (600 s here), and the
    row is queued again as it was (nothing was sent)."""
    with TricklingPeer(None, interval=0.2, prefix=b"220") as peer:
        world = World(tmp_path, None)
        for mailbox in world.config.mailboxes:
            mailbox.smtp = server(peer.port)
            mailbox.smtp.deadline = 600.0
        world.queue(1)
        stopping = threading.Event()

        def stop_once_connected():
            while peer.connections == 0 and time.monotonic() < started + 30:
                time.sleep(0.05)
            stopping.set()  # the daemon's flag, then its on_stop
            abandon_for_stop()

        started = time.monotonic()
        threading.Thread(target=stop_once_connected, daemon=True).start()
        report = world.send(should_stop=stopping.is_set)
        took = time.monotonic() - started
    assert peer.connections == 1 and stopping.is_set()
    assert took < BOUND, f"the stop waited {took:.1f} s"
    assert report.stopped and (report.sent, report.retrying, report.failed) == (0, 0, 0)
    (row,) = world.rows()
    assert (row.status, row.attempts, row.claimed_by, row.last_error) == ("queued", 0, None, None)


# -- through the CLI: the other mailbox is still read, `outbox send` returns -----------------------

SCHOOL = ("安溪县北门小学", "beimenxx@163.com")


def config_file(tmp_path: Path, imap_port: int, smtp_port: int) -> Path:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "maildir" / sub).mkdir(parents=True, exist_ok=True)
    server_block = (f'host = "127.0.0.1"\nsecurity = "plain"\nusername = "zjg@example.test"\n'
                    f'password_env = "MAILBOT_TEST_PASSWORD"\ntimeout = {READ_TIMEOUT}\ndeadline = {DEADLINE}\n')
    path = tmp_path / "config.toml"
    path.write_text(f"""[general]
state_dir = "{tmp_path / 'state'}"

[operator]
email = "operator@example.test"

[replies]
reply_max_age_days = 0

[[mailbox]]
name = "zjg"
address = "zjg@example.test"
levels = ["middle"]
outbox_dir = "{tmp_path / 'out-zjg'}"
[mailbox.imap]
port = {imap_port}
poll_deadline = {DEADLINE * 2}
{server_block}
[[mailbox]]
name = "chuyoujiao"
address = "chuyoujiao@163.com"
levels = ["primary"]
maildir = "{tmp_path / 'maildir'}"
[mailbox.smtp]
port = {smtp_port}
{server_block}
[[school]]
name = "{SCHOOL[0]}"
level = "primary"
emails = ["{SCHOOL[1]}"]
""", encoding="utf-8")
    return path


def mailbot(config: Path, *args: str) -> Result:
    return run_process(config, *args, check=False, timeout=120, env={"MAILBOT_TEST_PASSWORD": "secret"})


def test_poll_returns_and_reads_the_other_mailbox_then_outbox_send_returns(tmp_path):
    with TricklingPeer(IMAP_GREETING, interval=0.2, prefix=b"a1 ") as imap, \
            TricklingPeer(interval=0.2, prefix=b"220") as smtp:
        config = config_file(tmp_path, imap.port, smtp.port)
        mailbot(config, "poll", "--no-send")  # first contact: what is there is a baseline (SPEC 5)
        raw = submission(SCHOOL[1], "chuyoujiao@163.com", [[SCHOOL[0], 1, 1878, 1797, "是", "科普、美术"]])
        (tmp_path / "maildir" / "new" / "1.eml").write_bytes(raw)

        connections = imap.connections
        poll = mailbot(config, "poll", "--no-send")
        poll_seconds = imap.longest_stay()  # the poll's time at the server, not the process's start-up
        assert imap.connections > connections
        send = mailbot(config, "outbox", "send")
        send_seconds = smtp.longest_stay()
        assert smtp.connections >= 1

    assert poll.exit_code == 1, poll.stderr  # the zjg mailbox failed ...
    assert "zjg" in poll.stderr and "deadline" in poll.stderr
    assert poll_seconds < DEADLINE * 2 + 10
    status = mailbot(config, "status", "--month", "2022-10", "--json")
    assert '"on_time"' in status.stdout  # ... and chuyoujiao was read all the same
    assert send.exit_code == 1, send.stdout + send.stderr  # the receipt could not leave
    assert send_seconds < BOUND + 10  # one stalled connection, not one per row
