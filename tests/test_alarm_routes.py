"""Alarms that arrive (issue 11 point 3): when 163 refuses everything from one mailbox
(`554 DT:SPM`), the operator hears about it once, through the other mailbox, and `outbox send`
says that mail was refused."""

from __future__ import annotations

import email
import email.policy

import pytest

from mailbot.outbound import alarms
from support.configs import ACCOUNTS
from support.sending_world import World
from support.smtp_server import SmtpServer

SPAM = "554 DT:SPM 163 smtp7, the message looks like spam"


@pytest.fixture
def blocked_server(tmp_path):
    """A second SMTP server for chuyoujiao's account that refuses every message."""
    (tmp_path / "blocked").mkdir()
    server = SmtpServer(tmp_path / "blocked")
    server.start()
    for _ in range(50):
        server.fail("DATA", SPAM)
    yield server
    server.stop()


def test_a_blocked_account_is_alarmed_once_through_the_other_mailbox(tmp_path, smtp_server, blocked_server):
    world = World(tmp_path, smtp_server)
    world.config.mailbox("chuyoujiao").smtp = blocked_server.smtp_config(ACCOUNTS["chuyoujiao"], "ssl")
    world.queue(5, "chuyoujiao")

    report = world.send()
    world.send()

    assert report.failed == 5 and not report.ok  # `outbox send` exits 1
    rows = world.rows()
    assert [r.status for r in rows if r.kind == "receipt"] == ["failed"] * 5
    alarm_rows = [r for r in rows if r.kind == alarms.KIND]
    assert [(r.mailbox, r.status) for r in alarm_rows] == [("zjg", "sent")]  # one, and it arrived
    (delivered,) = smtp_server.received
    assert delivered.rcpt_tos == ["operator@example.test"]
    body = email.message_from_bytes(delivered.data, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "554" in body and "chuyoujiao@163.com" in body
    assert blocked_server.received == []
    world.engine.dispose()


def test_an_alarm_its_mailbox_refuses_goes_through_the_other(tmp_path, smtp_server, blocked_server):
    world = World(tmp_path, smtp_server)
    world.config.mailbox("chuyoujiao").smtp = blocked_server.smtp_config(ACCOUNTS["chuyoujiao"], "ssl")
    with world.sessions() as session:  # an alarm not about a mailbox: queued on the first one
        alarms.raise_alarm(session, world.config, key="test:calendar", problem="send_account", now=world.now,
                           mailbox="-", address="-", error="test")
        session.commit()
    assert world.rows()[0].mailbox == "chuyoujiao"

    world.send()
    world.send()

    rows = world.rows()
    assert [(r.mailbox, r.status) for r in rows] == [("chuyoujiao", "failed"), ("zjg", "sent")]
    assert [m.rcpt_tos for m in smtp_server.received] == [["operator@example.test"]]
    world.engine.dispose()
