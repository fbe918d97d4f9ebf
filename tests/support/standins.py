"""Stand-ins on loopback: a recording TCP proxy (what the client really sent), one that also stops
forwarding at a chosen command (to kill a client at a known point), and a server that accepts
connections and never says a word."""

from __future__ import annotations

import re
import select
import socket
import threading
from dataclasses import dataclass

from mailbot.config import ServerConfig
from support.loopback import HOST

_TAGGED = re.compile(r"^[A-Za-z]+\d+ (\S+)(?: (\S+))?")  # imaplib tags look like "KPAB12"


class RecordingProxy:
    """Forwards 127.0.0.1:<port> to a target and records both directions (plain IMAP only)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.client_bytes = bytearray()
        self.server_bytes = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def client_lines(self) -> list[str]:
        return bytes(self.client_bytes).decode("utf-8", errors="replace").splitlines()

    def commands(self) -> list[str]:
        """Command names the client sent ("LOGIN", "ID", "UID SEARCH", ...), tags stripped."""
        names = []
        for line in self.client_lines():
            match = _TAGGED.match(line)
            if match:
                verb, arg = match.group(1).upper(), (match.group(2) or "").upper()
                names.append(f"UID {arg}" if verb == "UID" else verb)
        return names

    def reset(self) -> None:
        self.client_bytes.clear()
        self.server_bytes.clear()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                continue
            upstream = socket.create_connection((HOST, self.target_port))
            threading.Thread(target=self._pump, args=(downstream, upstream), daemon=True).start()

    def _forward(self, data: bytes, from_client: bool) -> bool:
        """Whether to pass these bytes on (subclasses may hold them back)."""
        return True

    def _pump(self, downstream: socket.socket, upstream: socket.socket) -> None:
        pairs = {downstream: (upstream, self.client_bytes), upstream: (downstream, self.server_bytes)}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(pairs), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    other, record = pairs[sock]
                    record.extend(data)
                    if self._forward(data, sock is downstream):
                        other.sendall(data)
        except OSError:
            return
        finally:
            downstream.close()
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(timeout=2)


class HoldingProxy(RecordingProxy):
    """A RecordingProxy that stops forwarding when the client sends the `nth` command line
    containing `marker` (case-insensitive): that command never reaches the server, the client waits
    for its answer, and `held` is set. Everything the client did before it is over and answered, so
    a test can kill the client at exactly that point."""

    def __init__(self, target_port: int, marker: str, nth: int):
        super().__init__(target_port)
        self.marker, self.nth = marker.upper().encode(), nth
        self.seen = 0
        self.held = threading.Event()

    def _forward(self, data: bytes, from_client: bool) -> bool:
        if self.held.is_set():
            return False
        if from_client:
            self.seen += data.upper().count(self.marker)
            if self.seen >= self.nth:
                self.held.set()
                return False
        return True


@dataclass
class SilentServer:
    host: str
    port: int

    def server_config(self, security: str = "plain", timeout: float = 0.5) -> ServerConfig:
        return ServerConfig(host=self.host, port=self.port, security=security, username="nobody@example.test",
                            password_env=None, timeout=timeout)

