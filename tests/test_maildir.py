"""MaildirInbox: lists and reads, never touches (staff read the same Maildir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailbot.errors import TransportError
from mailbot.transports.maildir import MaildirInbox, message_key


def make_maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    return root


def put(root: Path, sub: str, name: str, data: bytes, mtime: float) -> Path:
    path = root / sub / name
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def snapshot(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_mtime) for p in root.rglob("*")}


def test_lists_new_and_read_mail_oldest_first_without_flags(tmp_path):
    root = make_maildir(tmp_path / "Maildir")
    put(root, "cur", "1666000300.M3P1.host:2,S", b"third", 1666000300)
    put(root, "new", "1666000100.M1P1.host", b"first", 1666000100)
    put(root, "cur", "1666000200.M2P1.host:2,RS", b"second", 1666000200)
    put(root, "tmp", "1666000400.M4P1.host", b"still being delivered", 1666000400)
    put(root, "new", ".hidden", b"not mail", 1666000000)
    inbox = MaildirInbox(root)
    assert inbox.list_keys() == ["1666000100.M1P1.host", "1666000200.M2P1.host", "1666000300.M3P1.host"]
    assert [inbox.read(key) for key in inbox.list_keys()] == [b"first", b"second", b"third"]


def test_reading_changes_nothing_in_the_maildir(tmp_path):
    root = make_maildir(tmp_path / "Maildir")
    put(root, "new", "1.M1P1.host", b"unread", 1000)
    put(root, "cur", "2.M2P1.host:2,", b"read", 2000)
    before = snapshot(root)
    inbox = MaildirInbox(root)
    for key in inbox.list_keys():
        inbox.read(key)
    assert snapshot(root) == before


def test_key_survives_staff_reading_the_message(tmp_path):
    root = make_maildir(tmp_path / "Maildir")
    put(root, "new", "1.M1P1.host", b"message", 1000)
    inbox = MaildirInbox(root)
    [key] = inbox.list_keys()
    os.rename(root / "new" / "1.M1P1.host", root / "cur" / "1.M1P1.host:2,S")  # what a mail client does
    assert inbox.list_keys() == [key]
    assert inbox.read(key) == b"message"


def test_missing_and_hostile_keys_raise_transport_error(tmp_path):
    root = make_maildir(tmp_path / "Maildir")
    (tmp_path / "secret").write_bytes(b"not yours")
    inbox = MaildirInbox(root)
    for key in ("gone", "../../secret", "../secret", "", ".", "a\0b", "x:2,S"):
        with pytest.raises(TransportError):
            inbox.read(key)


def test_a_folder_that_is_not_a_maildir_is_a_transport_error(tmp_path):
    with pytest.raises(TransportError, match="not a Maildir"):
        MaildirInbox(tmp_path / "nowhere").list_keys()


def test_message_key_drops_only_the_info_suffix():
    assert message_key("1666.M1P2.host:2,FS") == "1666.M1P2.host"
    assert message_key("1666.M1P2.host") == "1666.M1P2.host"


def test_reads_a_maildir_that_dovecot_delivered_into(dovecot):
    user = "chuyoujiao@example.test"
    raw = b"From: a@example.test\r\nSubject: =?utf-8?B?5rGH5oC76KGo?=\r\n\r\nbody\r\n"
    dovecot.deliver(user, raw)
    dovecot.deliver(user, raw.replace(b"body", b"second"))
    inbox = MaildirInbox(dovecot.maildir(user))
    keys = inbox.list_keys()
    assert len(keys) == 2
    # Bytes exactly as stored: Dovecot writes Maildir files with LF line ends.
    assert inbox.read(keys[0]).endswith(raw.replace(b"\r\n", b"\n"))


def test_a_maildir_is_an_inbox_whose_session_skips_what_vanished(tmp_path):
    root = make_maildir(tmp_path / "Maildir")
    put(root, "new", "1.M1P1.host", b"one", 1)
    put(root, "cur", "2.M2P1.host:2,S", b"two", 2)
    inbox = MaildirInbox(root)
    with inbox.session() as session:
        assert (inbox.source, session.folder, session.uidvalidity) == ("maildir", "Maildir", 0)
        keys = session.list_keys()
        (root / "new" / "1.M1P1.host").unlink()  # staff deleted it after the listing
        assert list(session.fetch_raw(keys)) == [("2.M2P1.host", b"two")]
