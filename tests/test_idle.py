"""IDLE against a real Dovecot: new mail wakes the poll at once; the connection is renewed, comes
back after the server died, and a server without IDLE is left to the scheduled polls."""

from __future__ import annotations

import threading
import time

from mailbot.errors import TransportError
from mailbot.ingest.idle import IdleWatcher
from mailbot.transports.deadline import abandon_for_stop

MESSAGE = b"From: school@example.test\r\nTo: chuyoujiao@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


def wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def watcher(dovecot, **options):
    woken: list[str] = []
    stop = threading.Event()
    w = IdleWatcher(dovecot.mailbox_config("chuyoujiao@example.test"), woken.append, stop,
                    check_seconds=1.0, retry_seconds=0.2, **options)
    w.start()
    return w, woken, stop


def test_new_mail_wakes_the_poll_at_once_and_stop_is_prompt(dovecot):
    w, woken, stop = watcher(dovecot)
    try:
        assert wait_for(lambda: w.connections == 1)
        time.sleep(0.3)
        dovecot.append("chuyoujiao@example.test", MESSAGE)
        assert wait_for(lambda: woken == ["chuyoujiao"], 30.0)
    finally:
        stop.set()
        w.join(10)
    assert not w.is_alive()


def test_connection_is_renewed_and_survives_a_server_restart(dovecot):
    w, woken, stop = watcher(dovecot, renew_seconds=1.0)
    try:
        assert wait_for(lambda: w.connections >= 2, 30.0)  # renewed, not held forever
        dovecot.kill()
        time.sleep(0.5)
        before = w.connections
        dovecot.start()
        assert wait_for(lambda: w.connections > before, 30.0)
        time.sleep(0.3)
        dovecot.append("chuyoujiao@example.test", MESSAGE)
        assert wait_for(lambda: "chuyoujiao" in woken, 30.0)
    finally:
        stop.set()
        w.join(5)


def test_a_server_without_idle_is_left_to_the_polls(dovecot):
    dovecot.reconfigure("imap_capability = IMAP4rev1 UIDPLUS")
    w, woken, stop = watcher(dovecot)
    try:
        w.join(10)
        assert not w.is_alive() and w.connections == 1 and woken == []
    finally:
        stop.set()


def test_a_session_cut_by_the_stop_is_not_logged_as_a_failure(dovecot, caplog):
    """A stop abandons the IMAP sessions in hand (their next read raises); the watcher then ends
    quietly instead of warning that IDLE failed, which would read as a fault in every stop's log."""
    stop = threading.Event()

    def cut_by_the_stop(mailbox):
        stop.set()
        raise TransportError("deadline: abandoned, mailbot is stopping")

    watcher = IdleWatcher(dovecot.mailbox_config("chuyoujiao@example.test"), lambda name: None, stop,
                          open_inbox=cut_by_the_stop, retry_seconds=0)
    with caplog.at_level("DEBUG", logger="mailbot.ingest.idle"):
        watcher.run()
    assert [r.levelname for r in caplog.records] == ["DEBUG"]


def test_the_daemons_stop_ends_a_long_idle_round_at_once(dovecot):
    """The IDLE round lasts minutes by default (CHECK_SECONDS); the daemon's stop does not wait for
    it: `abandon_for_stop`, which `mailbot run` calls at a stop, cuts the session."""
    stop = threading.Event()
    w = IdleWatcher(dovecot.mailbox_config("chuyoujiao@example.test"), lambda name: None, stop, retry_seconds=60)
    w.start()
    assert wait_for(lambda: w.connections == 1, 20)  # its session is open: IDLE for minutes from here
    stop.set()
    assert abandon_for_stop() >= 1
    w.join(10)
    assert not w.is_alive()


def test_a_connection_the_server_closes_during_idle_is_noticed_at_once(dovecot):
    """imapclient's idle_check swallows the end of the stream and returns nothing, at once, every
    time: the watcher spun a core until its round's end (4 minutes by default) before DONE failed
    and it connected again. Here the round is 10 minutes: the new connection must come long before."""
    stop = threading.Event()
    w = IdleWatcher(dovecot.mailbox_config("chuyoujiao@example.test"), lambda name: None, stop,
                    check_seconds=600, retry_seconds=0.2)
    w.start()
    try:
        assert wait_for(lambda: w.connections == 1)
        dovecot.kill()  # the server closes its end of the IDLE session
        dovecot.start()
        assert wait_for(lambda: w.connections >= 2, 60), "still in the closed session's round"
    finally:
        stop.set()
        abandon_for_stop()  # (ends the new session's round)
        w.join(10)
