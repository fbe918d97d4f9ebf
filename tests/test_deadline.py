"""The overall deadline of one server operation holds against a trickling peer (issue 11 point 4):
the mechanism, on a raw socket; the IMAP and SMTP adapters are tested in test_trickle_*."""

from __future__ import annotations

import pytest

from mailbot.transports.deadline import Deadline, DeadlineExceeded, connect_tcp
from support.trickle import TricklingPeer


def read_line(sock) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed")
        line += chunk
    return line


def test_a_trickled_line_is_cut_at_the_deadline_not_after_each_read():
    with TricklingPeer(interval=0.05) as peer:
        deadline = Deadline(per_operation=0.5)
        # Each byte arrives well within the per-read timeout of 5 s: only the deadline can stop it.
        sock = connect_tcp("127.0.0.1", peer.port, 5.0, deadline)
        with pytest.raises(DeadlineExceeded, match="greeting"):
            with deadline.limit("greeting"):
                read_line(sock)
        assert deadline.expired
        sock.close()


def test_an_operation_that_finishes_in_time_is_untouched():
    with TricklingPeer(b"* OK ready\r\n", interval=0.05) as peer:
        deadline = Deadline(per_operation=30)
        sock = connect_tcp("127.0.0.1", peer.port, 5.0, deadline)
        with deadline.limit("greeting"):
            assert read_line(sock) == b"* OK ready\r\n"
        assert not deadline.expired
        sock.close()


def test_no_operation_starts_after_the_overall_end():
    now = [100.0]
    deadline = Deadline(per_operation=60, overall_end=130.0, clock=lambda: now[0])
    assert deadline.remaining() == 30.0
    now[0] = 131.0
    with pytest.raises(DeadlineExceeded, match="overall deadline"):
        with deadline.limit("FETCH"):
            pytest.fail("must not run")
    with pytest.raises(DeadlineExceeded):
        connect_tcp("127.0.0.1", 9, 5.0, deadline)


def test_other_errors_pass_through_unchanged():
    deadline = Deadline(per_operation=30)
    with pytest.raises(KeyError):
        with deadline.limit("parse"):
            raise KeyError("x")


def test_a_stop_abandons_the_reading_sessions_in_hand_and_no_send():
    # SIGTERM to `mailbot run` (mailbot.app.daemon's on_stop): an IMAP session's Deadline is made
    # abandon_on_stop and is cut at once; a send's is left to its own deadline (cut after the
    # server took the message, it would be sent again).
    import threading

    from mailbot.transports.deadline import abandon_for_stop
    with TricklingPeer(interval=0.05) as peer:
        reading, sending = Deadline(per_operation=600, abandon_on_stop=True), Deadline(per_operation=600)
        socks = [connect_tcp("127.0.0.1", peer.port, 5.0, d) for d in (reading, sending)]
        raised, entered = [], [threading.Event(), threading.Event()]

        def read(deadline, sock, inside):
            try:
                with deadline.limit("FETCH"):
                    inside.set()
                    read_line(sock)
            except DeadlineExceeded as exc:
                raised.append(str(exc))

        threads = [threading.Thread(target=read, args=args, daemon=True)
                   for args in zip((reading, sending), socks, entered)]
        for thread in threads:
            thread.start()
        assert all(inside.wait(30) for inside in entered)  # the stop comes in the middle of both reads
        assert abandon_for_stop() >= 1
        threads[0].join(10)
        assert raised == ["FETCH: abandoned, mailbot is stopping; connection dropped"]
        assert threads[1].is_alive() and not sending.expired  # the send goes on
        sending.abandon()  # (only to end the test)
        threads[1].join(10)
        for sock in socks:
            sock.close()
