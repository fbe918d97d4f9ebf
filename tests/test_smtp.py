"""Sending: SmtpSender against aiosmtpd (and through dovecot-lda into IMAP), DirectoryOutbox."""

from __future__ import annotations

import dataclasses
import os
import smtplib
import socket
import threading
import time
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.config import ServerConfig
from mailbot.errors import PermanentSendError, TemporarySendError, TransportError
from mailbot.transports.dirout import DirectoryOutbox, safe_key
from mailbot.transports.imap import ImapInbox
from mailbot.transports.smtp import SmtpSender, normalise_line_ends
from support.smtp_server import DROP

SENDER = "chuyoujiao@example.test"
SCHOOL = "school1@example.test"


def raw_message(subject: str = "关于10月份课后服务汇总表的回复", body: str = "北门小学：您好！表格已收到。\n",
                ) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"安溪县教育局 <{SENDER}>"
    message["To"] = SCHOOL
    message["Subject"] = subject
    message["Message-ID"] = "<reply-1@example.test>"
    message.set_content(body, cte="8bit")  # raw UTF-8 bytes on the wire, not base64
    return message.as_bytes()


def sender(smtp_server, security: str = "ssl", **kwargs) -> SmtpSender:
    return SmtpSender(smtp_server.smtp_config(SENDER, security, **kwargs))


# -- sending -------------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["ssl", "starttls", "plain"])
def test_message_arrives_byte_for_byte(smtp_server, security):
    raw = raw_message()
    assert not raw.isascii()
    with sender(smtp_server, security) as smtp:
        assert smtp.send(SENDER, [SCHOOL], raw) == {}
    [received] = smtp_server.received
    assert received.data == raw
    assert (received.mail_from, received.rcpt_tos) == (SENDER, [SCHOOL])
    assert received.port == smtp_server.port_for(security)


def test_a_batch_shares_one_connection(smtp_server):
    with sender(smtp_server) as smtp:
        for number in range(3):
            smtp.send(SENDER, [SCHOOL], raw_message(subject=f"第{number}封"))
    assert len(smtp_server.received) == 3
    assert len({mail.peer for mail in smtp_server.received}) == 1


def test_bare_line_feeds_are_sent_as_crlf(smtp_server):
    with sender(smtp_server) as smtp:
        smtp.send(SENDER, [SCHOOL], b"Subject: unix\n\nline one\nline two\n")
    assert smtp_server.received[0].data == b"Subject: unix\r\n\r\nline one\r\nline two\r\n"


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_untrusted_certificate_is_a_configuration_problem(smtp_server, security):
    with pytest.raises(TransportError, match="certificate") as caught:
        with sender(smtp_server, security, ca_file=None) as smtp:
            smtp.send(SENDER, [SCHOOL], raw_message())
    assert not isinstance(caught.value, (TemporarySendError, PermanentSendError))
    assert smtp_server.received == []


def test_wrong_password_is_a_configuration_problem_not_a_message_problem(smtp_server, tmp_path):
    config = smtp_server.smtp_config(SENDER, "ssl")
    config.password_file = tmp_path / "wrong"
    config.password_file.write_text("not-the-password")
    with pytest.raises(TransportError, match="login refused") as caught:
        SmtpSender(config).send(SENDER, [SCHOOL], raw_message())
    assert type(caught.value) is TransportError
    assert caught.value.code == 535
    config.password_file.write_text("授权码")  # pasted from the wrong place
    with pytest.raises(TransportError, match="non-ASCII") as caught:
        SmtpSender(config).send(SENDER, [SCHOOL], raw_message())
    assert type(caught.value) is TransportError


@pytest.mark.parametrize("stage, reply, error, code", [
    ("MAIL", "421 4.7.0 too many connections, try later", TemporarySendError, 421),
    ("RCPT", "451 4.3.0 try later", TemporarySendError, 451),
    ("RCPT", "550 5.1.1 no such user", PermanentSendError, 550),
    ("DATA", "451 4.3.0 try later", TemporarySendError, 451),
    ("DATA", "554 DT:SPM 163 smtp1,GdxpCgCnx8e5 spam content", PermanentSendError, 554),
])
def test_server_refusals_are_sorted_by_what_to_do_next(smtp_server, stage, reply, error, code):
    smtp_server.fail(stage, reply)
    with sender(smtp_server) as smtp:
        with pytest.raises(error) as caught:
            smtp.send(SENDER, [SCHOOL], raw_message())
        assert caught.value.code == code
        assert reply.split(" ", 1)[1] in caught.value.text
        smtp.send(SENDER, [SCHOOL], raw_message())  # the same sender recovers for the next one
    assert len(smtp_server.received) == 1


def test_dropped_connection_is_temporary(smtp_server):
    smtp_server.fail("DATA", DROP)
    with sender(smtp_server) as smtp:
        with pytest.raises(TemporarySendError):
            smtp.send(SENDER, [SCHOOL], raw_message())
        smtp.send(SENDER, [SCHOOL], raw_message())
    assert len(smtp_server.received) == 1


def test_one_refused_recipient_among_several_is_reported_not_raised(smtp_server):
    smtp_server.fail("RCPT", "550 5.1.1 mailbox unavailable")
    with sender(smtp_server) as smtp:
        refused = smtp.send(SENDER, ["gone@example.test", SCHOOL], raw_message())
    assert list(refused) == ["gone@example.test"] and refused["gone@example.test"][0] == 550
    assert smtp_server.received[0].rcpt_tos == [SCHOOL]


@pytest.mark.parametrize("security", ["ssl", "plain"])
def test_silent_server_is_a_temporary_failure_within_the_timeout(silent_server, security):
    config = silent_server.server_config(security=security, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TemporarySendError):
        SmtpSender(config).send(SENDER, [SCHOOL], raw_message())
    assert time.monotonic() - started < 10  # the configured 0.3 s, not the 60 s default


@pytest.mark.parametrize("greeting, error", [
    (b"554 5.7.1 your IP is blocked\r\n", TransportError),  # the account's problem, not a message's
    (b"421 4.3.2 busy, try later\r\n", TemporarySendError),
    (b"\x00\xffgarbage\r\n", TemporarySendError),
])
def test_a_refusing_or_confused_greeting(greeting, error):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def answer_once():
            connection, _ = listener.accept()
            with connection:
                connection.sendall(greeting)
                connection.recv(1024)

        thread = threading.Thread(target=answer_once, daemon=True)
        thread.start()
        # The server answers at once: a long timeout costs nothing, and a late thread is not a 4xx.
        config = ServerConfig(host="127.0.0.1", port=listener.getsockname()[1], security="plain",
                              username="", timeout=30)
        with pytest.raises(error) as caught:
            SmtpSender(config).send(SENDER, [SCHOOL], raw_message())
        assert type(caught.value) is error
        thread.join(timeout=30)


def test_nobody_listening_is_temporary(smtp_server):
    config = smtp_server.smtp_config(SENDER, "plain")
    smtp_server.stop()
    with pytest.raises(TemporarySendError):
        SmtpSender(config).send(SENDER, [SCHOOL], raw_message())


def test_sent_mail_arrives_in_the_schools_imap_inbox(smtp_server, dovecot):
    smtp_server.deliver_into = dovecot
    raw = raw_message()
    with sender(smtp_server, "starttls") as smtp:
        smtp.send(SENDER, [SCHOOL], raw)
    with ImapInbox(dovecot.mailbox_config(SCHOOL)).session() as session:
        [(_uid, stored)] = list(session.fetch_raw(session.uids_after(0)))
    assert stored.endswith(raw)  # dovecot-lda only prepends Return-Path and Delivered-To


def test_unknown_local_user_is_refused_for_good(smtp_server, dovecot):
    smtp_server.deliver_into = dovecot
    with pytest.raises(PermanentSendError):
        with sender(smtp_server) as smtp:
            smtp.send(SENDER, ["nobody@example.test"], raw_message())


def test_line_end_normalisation():
    assert normalise_line_ends(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"


# -- the directory outbox ------------------------------------------------------------------------


def test_directory_outbox_writes_each_key_once(tmp_path):
    outbox = DirectoryOutbox(tmp_path / "outbox")
    first = outbox.send("reply:42", SENDER, [SCHOOL], raw_message())
    again = outbox.send("reply:42", SENDER, [SCHOOL], b"different bytes")
    assert first == again and first.read_bytes() == raw_message()
    assert first.parent == tmp_path / "outbox" and first.suffix == ".eml"
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no temporary leftovers
    assert first.stat().st_mode & 0o777 == 0o600  # other users of the machine read none of it


def test_directory_outbox_keeps_hostile_keys_inside_and_apart(tmp_path):
    outbox = DirectoryOutbox(tmp_path)
    paths = [outbox.send(key, SENDER, [SCHOOL], key.encode("utf-8", "surrogatepass"))
             for key in ("../../etc/passwd", ".hidden", "a/b", "a_b", "汇总表", "", "x" * 500)]
    assert len(set(paths)) == 7
    for path in paths:
        assert path.parent == tmp_path and not path.name.startswith(".") and len(path.name) < 200


def test_directory_outbox_failure_is_temporary(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TemporarySendError):
        DirectoryOutbox(blocker / "outbox").send("k", SENDER, [SCHOOL], b"x")


@settings(max_examples=200)
@given(st.text(max_size=300), st.text(max_size=300))
def test_safe_keys_are_plain_file_names_and_distinct(one, other):
    for key in (one, other):
        name = safe_key(key)
        assert name and "/" not in name and "\0" not in name and not name.startswith(".")
        assert len(name.encode()) < 255 - len(".eml")
        assert name == os.path.basename(name)
    if one != other:
        assert safe_key(one) != safe_key(other)


def test_a_send_the_server_took_just_as_its_deadline_passed_counts_as_sent(smtp_server, monkeypatch):
    # sendmail returned (the server said 250) and the deadline's timer fired before the block ended:
    # that was reported as a stalled send, so the row was queued again and the school got it twice.
    sender = SmtpSender(dataclasses.replace(smtp_server.smtp_config(SENDER, "plain"), deadline=1.0))
    real_sendmail = smtplib.SMTP.sendmail

    def taken_then_the_deadline_passes(self, *args, **kwargs):
        refused = real_sendmail(self, *args, **kwargs)
        give_up = time.monotonic() + 30
        while not sender._deadline.expired and time.monotonic() < give_up:
            time.sleep(0.01)
        return refused
    monkeypatch.setattr(smtplib.SMTP, "sendmail", taken_then_the_deadline_passes)
    assert sender.send(SENDER, [SCHOOL], raw_message()) == {}
    assert sender._deadline.expired and len(smtp_server.received) == 1
    monkeypatch.undo()
    assert sender.send(SENDER, [SCHOOL], raw_message("再一封")) == {}  # on a new connection: the cut one is dropped
    assert len(smtp_server.received) == 2
    sender.close()
