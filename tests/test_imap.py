"""The IMAP inbox against a real Dovecot (tests/servers.py), plus its pure helpers."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbot.errors import TransportError
from mailbot.transports.imap import ImapInbox
from mailbot.transports.imap_responses import plan_batches, remote_message

CASES = Path("/work/shared/samples/cases")
USER = "zjg@example.test"


def message(number: int, body: bytes = b"hello", extra_headers: bytes = b"") -> bytes:
    return (b"From: School <school1@example.test>\r\nTo: zjg@example.test\r\n"
            b"Subject: test %d\r\nMessage-ID: <m%d@example.test>\r\n" % (number, number)
            + extra_headers + b"\r\n" + body + b"\r\n")


def via_proxy(dovecot, proxy, user=USER, **kwargs):
    mailbox = dovecot.mailbox_config(user, **kwargs)
    mailbox.imap = dataclasses.replace(mailbox.imap, port=proxy.port)
    return ImapInbox(mailbox)


def flags_of(client, uids):
    return {uid: set(item[b"FLAGS"]) for uid, item in client.fetch(uids, ["FLAGS"]).items()}


# -- connection set-up ---------------------------------------------------------------------------


def test_login_then_id_then_read_only_select(dovecot, imap_proxy):
    with via_proxy(dovecot, imap_proxy).session() as session:
        assert session.uidvalidity > 0
        assert {"IDLE", "MOVE", "UIDPLUS"} <= session.capabilities
    commands = imap_proxy.commands()
    assert commands.index("LOGIN") < commands.index("ID") < commands.index("EXAMINE")
    assert "SELECT" not in commands  # nothing is written without move_processed_to
    assert commands[-1] == "LOGOUT"
    assert dovecot.logged("ID sent: name=mailbot"), dovecot.log_tail()


def test_the_greetings_capabilities_spare_the_capability_command(dovecot, imap_proxy):
    # Dovecot greets with `* OK [CAPABILITY ...]`; the list after LOGIN is the one that counts.
    with via_proxy(dovecot, imap_proxy).session() as session:
        assert {"IDLE", "MOVE", "UIDPLUS"} <= session.capabilities  # post-login ones, not the greeting's
    assert imap_proxy.commands()[:3] == ["LOGIN", "ID", "EXAMINE"]


def test_a_greeting_without_capabilities_gets_the_command(monkeypatch):
    """A server that greets with a bare `* OK` is asked for CAPABILITY, as imaplib always did (and
    again after a LOGIN that did not send the list)."""
    import socket

    answers = {b"CAPABILITY": b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n", b"LOGIN": b"",
               b"ID": b"* ID NIL\r\n", b"LOGOUT": b"* BYE bye\r\n",
               b"EXAMINE": b"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n"}
    heard = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve():
            connection, _ = listener.accept()
            with connection, connection.makefile("rb") as lines:
                connection.sendall(b"* OK ready\r\n")
                for line in lines:
                    tag, command = line.split()[:2]
                    heard.append(command.decode())
                    connection.sendall(answers[command.upper()] + tag + b" OK done\r\n")
                    if command.upper() == b"LOGOUT":
                        return

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        from mailbot.config import ServerConfig

        server = ServerConfig(host="127.0.0.1", port=listener.getsockname()[1], security="plain",
                              username="u@example.test", password_env="MAILBOT_TEST_IMAP_PASSWORD", timeout=5)
        monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", "pw")
        with ImapInbox(dovecot_free_mailbox(server)).session() as session:
            assert session.uidvalidity == 7 and "AUTH=PLAIN" in session.capabilities
        thread.join(timeout=5)
    assert heard == ["CAPABILITY", "LOGIN", "CAPABILITY", "ID", "EXAMINE", "LOGOUT"]


def test_select_read_write_only_when_moving_is_configured(dovecot, imap_proxy):
    with via_proxy(dovecot, imap_proxy, move_to="Archive").session():
        pass
    assert "SELECT" in imap_proxy.commands() and "EXAMINE" not in imap_proxy.commands()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_works_with_the_configured_ca(dovecot, security):
    dovecot.append(USER, message(1))
    with ImapInbox(dovecot.mailbox_config(USER, security)).session() as session:
        assert session.uids_after(0) == [1]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_refuses_a_server_the_system_store_does_not_trust(dovecot, security):
    inbox = ImapInbox(dovecot.mailbox_config(USER, security, ca_file=None))
    with pytest.raises(TransportError, match="certificate"):
        with inbox.session():
            pass


def test_wrong_password_is_a_transport_error_naming_the_account(dovecot, tmp_path):
    wrong = tmp_path / "pw"
    wrong.write_text("not-the-password")
    mailbox = dovecot.mailbox_config(USER)
    mailbox.imap.password_file = wrong
    with pytest.raises(TransportError, match="login refused for zjg@example.test"):
        with ImapInbox(mailbox).session():
            pass
    wrong.write_text("授权码-abc")
    with pytest.raises(TransportError, match="non-ASCII") as caught:
        with ImapInbox(mailbox).session():
            pass
    assert "abc" not in str(caught.value)  # never log the secret


def test_silent_server_times_out_within_the_configured_timeout(silent_server):
    mailbox = dovecot_free_mailbox(silent_server.server_config(timeout=0.3))
    started = time.monotonic()
    with pytest.raises(TransportError):
        with ImapInbox(mailbox).session():
            pass
    assert time.monotonic() - started < 10  # the configured 0.3 s, not the 60 s default


def test_silent_server_times_out_during_the_tls_handshake_too(silent_server):
    mailbox = dovecot_free_mailbox(silent_server.server_config(security="ssl", timeout=0.3))
    started = time.monotonic()
    with pytest.raises(TransportError):
        with ImapInbox(mailbox).session():
            pass
    assert time.monotonic() - started < 10  # the configured 0.3 s, not the 60 s default


@pytest.mark.parametrize("script", [
    [b"garbage\r\n"],
    [b"* OK ready\r\n"],  # then hangs up
    [b"* OK ready\r\n", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n", b"\x00\xff{99999999}\r\n"],
    [b"* BYE go away\r\n"],
])
def test_a_confused_or_hostile_server_is_a_transport_error(script):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def play():
            connection, _ = listener.accept()
            with connection:
                for line in script:
                    connection.sendall(line)
                    time.sleep(0.01)

        thread = threading.Thread(target=play, daemon=True)
        thread.start()
        from mailbot.config import ServerConfig

        server = ServerConfig(host="127.0.0.1", port=listener.getsockname()[1], security="plain",
                              username="u@example.test", timeout=2)
        with pytest.raises(TransportError):
            with ImapInbox(dovecot_free_mailbox(server)).session():
                pass
        thread.join(timeout=3)


def dovecot_free_mailbox(server):
    from mailbot.config import MailboxConfig

    return MailboxConfig(name="silent", address="x@example.test", levels=["primary"], imap=server)


def test_killed_server_fails_the_call_promptly_and_a_new_session_works_after_restart(dovecot):
    dovecot.append(USER, message(1))
    inbox = ImapInbox(dovecot.mailbox_config(USER, timeout=30))
    with pytest.raises(TransportError):
        with inbox.session() as session:
            dovecot.kill()
            started = time.monotonic()
            try:
                session.uids_after(0)
            finally:
                assert time.monotonic() - started < 10  # the socket closed; not the 30 s timeout
    dovecot.start()
    with inbox.session() as session:
        assert session.uids_after(0) == [1]


def test_kicked_session_fails_with_transport_error(dovecot):
    inbox = ImapInbox(dovecot.mailbox_config(USER))
    with pytest.raises(TransportError):
        with inbox.session() as session:
            dovecot.kick(USER)
            time.sleep(0.1)
            session.describe([1, 2])
            session.uids_after(0)


# -- polling -------------------------------------------------------------------------------------


def test_uids_after_lists_only_newer_messages(dovecot):
    for number in range(1, 6):
        dovecot.append(USER, message(number))
    with ImapInbox(dovecot.mailbox_config(USER)).session() as session:
        assert session.uids_after(0) == [1, 2, 3, 4, 5]
        assert session.uids_after(2) == [3, 4, 5]
        assert session.uids_after(5) == []  # "6:*" matches UID 5 on the server; filtered out
        assert session.uids_after(99) == []


def test_empty_poll_costs_the_same_on_2000_messages_as_on_20(dovecot, imap_proxy):
    dovecot.append_many("school1@example.test", [message(n) for n in range(20)])
    dovecot.append_many("school2@example.test", [message(n) for n in range(2000)])
    costs = {}
    for user, last in (("school1@example.test", 20), ("school2@example.test", 2000)):
        imap_proxy.reset()
        with via_proxy(dovecot, imap_proxy, user=user).session() as session:
            before = session.commands_sent
            assert session.uids_after(last) == []
            poll_commands = session.commands_sent - before
            total_commands = session.commands_sent
        costs[user] = (poll_commands, total_commands, len(imap_proxy.commands()), len(imap_proxy.server_bytes))
    small, big = costs["school1@example.test"], costs["school2@example.test"]
    assert small[:3] == big[:3]
    assert small[0] == 1
    assert big[3] < small[3] + 200  # the server's answers do not grow with the mailbox either


# -- reading without side effects -----------------------------------------------------------------


def test_reading_leaves_flags_exactly_as_they_were(dovecot):
    seeded = {
        dovecot.append(USER, message(1)): set(),
        dovecot.append(USER, message(2), flags=[b"\\Flagged"]): {b"\\Flagged"},
        dovecot.append(USER, message(3), flags=[b"\\Seen", b"$Label1"]): {b"\\Seen", b"$Label1"},
        # Not ours: a citizen's complaint that staff have not opened yet.
        dovecot.append(USER, (CASES / "016-public-complaint" / "message.eml").read_bytes()): set(),
    }
    uids = sorted(seeded)
    with ImapInbox(dovecot.mailbox_config(USER, move_to="Archive")).session() as session:  # read-write
        session.describe(uids)
        assert len(list(session.fetch_raw(uids))) == len(uids)
    assert flags_of(dovecot.client(USER, folder="INBOX"), uids) == seeded


def test_batched_fetch_returns_every_byte_in_few_commands(dovecot, imap_proxy):
    raws = [message(n, body=("第%d封 " % n).encode("utf-8") * (n * 37 % 3000) + bytes(range(32, 127)))
            for n in range(300)]
    dovecot.append_many(USER, raws)
    with via_proxy(dovecot, imap_proxy).session() as session:
        uids = session.uids_after(0)
        imap_proxy.reset()
        fetched = dict(session.fetch_raw(uids, batch_bytes=1_000_000))
    assert [fetched[uid] for uid in uids] == raws
    fetches = [c for c in imap_proxy.commands() if c == "UID FETCH"]
    size_query, batches_needed = 1, -(-sum(map(len, raws)) // 1_000_000)
    assert len(fetches) <= size_query + batches_needed + 1  # a few round trips, not 300


def test_fetch_raw_skips_messages_that_vanished(dovecot):
    first = dovecot.append(USER, message(1))
    with ImapInbox(dovecot.mailbox_config(USER)).session() as session:
        assert [uid for uid, _ in session.fetch_raw([first, 999])] == [first]


def test_describe_judges_the_sample_messages(dovecot):
    uid_to_case = {}
    for path in sorted(CASES.glob("*/message.eml")):
        uid_to_case[dovecot.append(USER, path.read_bytes())] = path.parent.name
    with ImapInbox(dovecot.mailbox_config(USER)).session() as session:
        described = {uid_to_case[m.uid]: m for m in session.describe(sorted(uid_to_case))}
    assert len(described) == 17
    no_attachment = {"008-qq-big-attachment-link", "015-reply-without-attachment", "016-public-complaint"}
    for case, remote in described.items():
        assert remote.has_candidate == (case not in no_attachment), case
        assert bool(remote.automatic) == (case == "010-auto-reply-with-table"), case
        assert remote.size == len((CASES / case / "message.eml").read_bytes())
        assert "\\Seen" not in remote.flags
        assert "@" in remote.from_addr and remote.from_addr == remote.from_addr.lower()
    assert described["001-163-webmail-xlsx"].from_addr == "beimenxx@163.com"
    assert described["001-163-webmail-xlsx"].message_id == "272f7dc8.e4bd.183f852fda0.Coremail.beimenxx@163.com"
    assert described["005-iphone-rfc2231-continuations"].part_names == (
        "安溪县玉湖小学课后服务开展情况汇总表（已填）.xlsx",)
    assert json.loads((CASES / "010-auto-reply-with-table" / "expect.json").read_text())["outcome"] == "ignored"


# -- moving and waiting ---------------------------------------------------------------------------


def test_move_uses_move_when_advertised(dovecot):
    uid = dovecot.append(USER, message(1))
    with ImapInbox(dovecot.mailbox_config(USER, move_to="Archive")).session() as session:
        session.move(uid, "Archive")
        assert session.uids_after(0) == []
    archive = dovecot.client(USER, folder="Archive")
    assert len(archive.search()) == 1


def test_move_falls_back_to_copy_delete_expunge(dovecot):
    keep = dovecot.append(USER, message(1), flags=[b"\\Deleted"])  # staff's, must survive
    uid = dovecot.append(USER, message(2))
    with ImapInbox(dovecot.mailbox_config(USER, move_to="Archive")).session() as session:
        session.capabilities = session.capabilities - {"MOVE"}  # as on 163.com
        session.move(uid, "Archive")
        assert session.uids_after(0) == [keep]
    assert len(dovecot.client(USER, folder="Archive").search()) == 1


def test_a_server_advertising_little_still_gets_id_and_a_move(dovecot, imap_proxy):
    # Like 163.com (Coremail): no IDLE, MOVE or ID in CAPABILITY.
    dovecot.reconfigure("imap_capability = IMAP4rev1 LITERAL+ UIDPLUS")
    uid = dovecot.append(USER, message(1))
    with via_proxy(dovecot, imap_proxy, move_to="Archive").session() as session:
        assert not {"IDLE", "MOVE", "ID"} & session.capabilities
        session.move(uid, "Archive")
        with pytest.raises(TransportError, match="IDLE"):
            session.idle_wait(1)
    commands = imap_proxy.commands()
    assert commands.index("LOGIN") < commands.index("ID") < commands.index("SELECT")
    writes = [c for c in commands if c.startswith("UID ") and c != "UID SEARCH"]
    assert writes == ["UID COPY", "UID STORE", "UID EXPUNGE"]
    assert len(dovecot.client(USER, folder="Archive").search()) == 1


def test_move_in_a_read_only_session_is_refused(dovecot):
    uid = dovecot.append(USER, message(1))
    with pytest.raises(TransportError, match="read-only"):
        with ImapInbox(dovecot.mailbox_config(USER)).session() as session:
            session.move(uid, "Archive")


def test_idle_wakes_when_mail_arrives_and_times_out_when_none_does(dovecot):
    with ImapInbox(dovecot.mailbox_config(USER)).session() as session:
        started = time.monotonic()
        assert session.idle_wait(0.3) is False
        assert 0.25 < time.monotonic() - started < 10  # its own timeout, not the socket's
        timer = threading.Timer(0.1, dovecot.deliver, args=(USER, message(1)))
        timer.start()
        started = time.monotonic()
        assert session.idle_wait(60) is True
        assert time.monotonic() - started < 30  # woken by the arrival, not at the end of its 60 s
        timer.join()
        assert session.uids_after(0) == [1]  # the connection is usable after IDLE


def test_uidvalidity_changes_when_the_server_forgets_its_uids(dovecot):
    dovecot.append(USER, message(1))
    dovecot.append(USER, message(2))
    inbox = ImapInbox(dovecot.mailbox_config(USER))
    with inbox.session() as session:
        before = session.uidvalidity
    dovecot.reset_uids(USER)
    with inbox.session() as session:
        assert session.uidvalidity != before
        ids = [m.message_id for m in session.describe(session.uids_after(0))]
    assert sorted(ids) == ["m1@example.test", "m2@example.test"]


def test_other_folders_can_forget_their_uids_too(dovecot):
    dovecot.append(USER, message(1), folder="Archive")
    archive = ImapInbox(dovecot.mailbox_config(USER, folder="Archive"))
    with archive.session() as session:
        before = session.uidvalidity
    dovecot.reset_uids(USER, "Archive")
    with archive.session() as session:
        assert session.uidvalidity != before and len(session.uids_after(0)) == 1


# -- pure helpers ---------------------------------------------------------------------------------


def test_automatic_mail_is_recognised_from_headers():
    def auto(block: bytes) -> bool:
        return remote_message(1, {b"BODY[HEADER.FIELDS (X)]": b"From: a@b.c\r\n" + block}).automatic is not None

    assert auto(b"Auto-Submitted: auto-replied\r\n")
    assert auto(b"Auto-Submitted: auto-generated; owner-email=x@y\r\n")
    assert not auto(b"Auto-Submitted: no\r\n")
    assert auto(b"Precedence: bulk\r\n") and auto(b"Precedence: JUNK\r\n") and auto(b"Precedence: list\r\n")
    assert not auto(b"Precedence: first-class\r\n")
    assert auto(b"X-Autoreply: yes\r\n")
    assert auto(b"List-Id: <news.example.test>\r\n")
    assert not auto(b"From: a@b.c\r\n")


def test_remote_message_from_an_odd_fetch_item():
    item = {b"RFC822.SIZE": b"12", b"FLAGS": (b"\\Seen",),
            b"BODY[HEADER.FIELDS (FROM MESSAGE-ID)]": b"From: =?GBK?B?sbHDxQ==?= <A.B@Example.TEST>\r\n"
                                                      b"Message-ID:   <x@y>  \r\n\r\n"}
    remote = remote_message(7, item)
    assert (remote.uid, remote.size, remote.flags) == (7, 12, ("\\Seen",))
    assert remote.from_addr == "a.b@example.test" and remote.message_id == "x@y"
    assert remote.has_candidate is False and remote.automatic is None
    empty = remote_message(8, {})
    assert (empty.from_addr, empty.message_id, empty.size) == ("", None, 0)
    odd = remote_message(9, {b"FLAGS": 3, b"RFC822.SIZE": b"x", b"BODYSTRUCTURE": b"junk",
                             b"BODY[HEADER.FIELDS (FROM)]": b"From: \xff\xfe<<>>\r\n"})
    assert (odd.flags, odd.size, odd.has_candidate, odd.from_addr) == ((), 0, False, "")


@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=60), st.integers(min_value=1, max_value=8000),
       st.integers(min_value=1, max_value=10))
def test_batches_keep_order_and_limits(sizes, batch_bytes, max_count):
    uids = list(range(1, len(sizes) + 1))
    batches = plan_batches(uids, dict(zip(uids, sizes)), batch_bytes, max_count)
    assert [uid for batch in batches for uid in batch] == uids
    for batch in batches:
        assert 1 <= len(batch) <= max_count
        assert len(batch) == 1 or sum(sizes[uid - 1] for uid in batch) <= batch_bytes
