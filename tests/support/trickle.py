"""A peer that trickles: it accepts on loopback, then sends one byte every `interval` seconds and
never finishes a line, so every read succeeds just before a per-read socket timeout and a client
that only has such timeouts waits for ever (issue 11 point 4).

`greeting`, when given, is sent at once and whole (a server that looks healthy); the trickle then
answers the client's first command. Without it the greeting itself trickles.

    with TricklingPeer(b"* OK IMAP4rev1 ready\\r\\n", interval=0.5) as peer:
        ... connect to ("127.0.0.1", peer.port) ...
"""

from __future__ import annotations

import socket
import threading
import time

IMAP_GREETING = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] trickle ready\r\n"
SMTP_GREETING = b"220 trickle.test ESMTP ready\r\n"


class TricklingPeer:
    def __init__(self, greeting: bytes | None = None, *, interval: float = 0.5, prefix: bytes = b"* OK "):
        self.greeting = greeting
        self.interval = interval
        self.prefix = prefix  # the start of the line that never ends
        self.connections = 0
        # (accepted, given up by the client) in time.monotonic() per connection: how long the client
        # really stayed, without the start-up of the process around it
        self.stays: list[list[float | None]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="trickle-accept", daemon=True)

    def __enter__(self) -> "TricklingPeer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def longest_stay(self, settle: float = 5.0) -> float:
        """Seconds from accepting to the client giving up, the longest of the connections; inf for one
        the client has not given up. The peer notices a closed connection only at its next writes (a
        write or two after the close), so this waits up to `settle` seconds for that."""
        give_up = time.monotonic() + settle
        while True:
            with self._lock:
                stays = [gone - came if gone is not None else float("inf") for came, gone in self.stays]
            if float("inf") not in stays or time.monotonic() >= give_up:
                return max(stays, default=0.0)
            time.sleep(self.interval / 2)

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            for conn in self._sockets:
                try:
                    conn.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            stay = [time.monotonic(), None]
            with self._lock:
                self.connections += 1
                self._sockets.append(conn)
                self.stays.append(stay)
            threading.Thread(target=self._serve, args=(conn, stay), name="trickle-conn", daemon=True).start()

    def _serve(self, conn: socket.socket, stay: list) -> None:
        try:
            if self.greeting is not None:
                conn.sendall(self.greeting)
                if not conn.recv(4096):  # the client's first command: answered by the trickle
                    raise ConnectionResetError("the client closed before its first command")
            for byte in self._endless_line():
                if self._stopped.wait(self.interval):
                    return
                conn.sendall(byte)
        except OSError:
            stay[1] = time.monotonic()  # the client gave up (noticed within one interval): the point
            return
        finally:
            conn.close()

    def _endless_line(self):
        for i in range(len(self.prefix)):
            yield self.prefix[i:i + 1]
        while True:
            yield b"."
