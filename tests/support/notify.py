"""A datagram socket standing in for systemd's $NOTIFY_SOCKET (READY=1, WATCHDOG=1, STOPPING=1)."""

from __future__ import annotations

import socket
import threading
import time


class NotifyListener:
    """Binds `path`; `.messages` collects what the daemon told "systemd"."""

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
