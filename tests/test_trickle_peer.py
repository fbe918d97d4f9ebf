"""The trickling peer used by the deadline tests really trickles: every read gets one byte before a
per-read timeout would fire, and no line ever ends."""

from __future__ import annotations

import socket

from support.trickle import IMAP_GREETING, TricklingPeer


def test_the_greeting_trickles_one_byte_per_read():
    with TricklingPeer(interval=0.05) as peer:
        with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as conn:
            received = b"".join(conn.recv(1) for _ in range(8))
    assert received == b"* OK ..."
    assert peer.connections == 1


def test_a_healthy_greeting_then_the_answer_trickles():
    with TricklingPeer(IMAP_GREETING, interval=0.05, prefix=b"a1 ") as peer:
        with socket.create_connection(("127.0.0.1", peer.port), timeout=5) as conn:
            assert conn.makefile("rb").readline() == IMAP_GREETING
            conn.sendall(b"a1 LOGIN user pass\r\n")
            answer = b"".join(conn.recv(1) for _ in range(6))
    assert answer == b"a1 ..."
