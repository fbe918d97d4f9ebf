"""aiosmtpd on loopback with implicit TLS, STARTTLS and plain listeners, AUTH required; records
what it accepts and plays faults on request. The `smtp_server` fixture (tests/servers.py)."""

from __future__ import annotations

import asyncio
import collections
import errno
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mailbot.config import ServerConfig
from support.installed import require
from support.loopback import HOST, USERS, ServerCertificates, free_port, write_password_files

if TYPE_CHECKING:
    from support.dovecot import Dovecot


# The listeners' own start-up connection checks nothing (it is to our own server on loopback).
_TRIGGER_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_TRIGGER_CONTEXT.check_hostname = False
_TRIGGER_CONTEXT.verify_mode = ssl.CERT_NONE


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # exactly the message bytes the client sent (after dot-unstuffing)
    port: int  # the listener it came in on
    peer: tuple  # the client's (host, port): one value per connection


@dataclass
class _Faults:
    """Replies to give instead of accepting, one per command, in order."""

    queues: dict[str, collections.deque] = field(
        default_factory=lambda: {stage: collections.deque() for stage in ("MAIL", "RCPT", "DATA")})

    def take(self, stage: str) -> str | None:
        try:
            return self.queues[stage].popleft()
        except IndexError:
            return None


DROP = "DROP"  # a fault that closes the connection instead of answering


class _RecordingHandler:
    def __init__(self, owner: "SmtpServer"):
        self.owner = owner

    async def _fault(self, server, stage: str) -> str | None:
        reply = self.owner.faults.take(stage)
        if reply == DROP:
            server.transport.close()
            return "421 4.4.2 connection dropped"  # never reaches the client
        return reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = await self._fault(server, "MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await self._fault(server, "RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await self._fault(server, "DATA")
        if reply:
            return reply
        data = envelope.original_content or b""
        port = server.transport.get_extra_info("sockname")[1]
        self.owner.received.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), data, port, tuple(session.peer)))
        if self.owner.deliver_into is not None:
            return await self._deliver(envelope, data)
        return "250 2.0.0 queued"

    async def _deliver(self, envelope, data: bytes) -> str:
        dove = self.owner.deliver_into
        for rcpt in envelope.rcpt_tos:
            proc = await asyncio.create_subprocess_exec(
                dove.lda, "-c", str(dove.conf), "-d", rcpt, "-f", envelope.mail_from,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            _, stderr = await proc.communicate(data)
            if proc.returncode == 67:
                return f"550 5.1.1 <{rcpt}> unknown user"
            if proc.returncode != 0:
                return f"451 4.3.0 delivery failed: {stderr.decode(errors='replace')[:100]}"
        return "250 2.0.0 delivered"


class _Connections:
    """The client connections the listeners have open: a killed client's last message may still be
    in the server's socket buffer, recorded only when the server reads it, so a test that counts what
    was received at a kill waits for the connections to close first (settle)."""

    def __init__(self):
        self.open = 0
        self.changed = threading.Condition()

    def counting(self, smtp_class):
        connections = self

        class CountingSMTP(smtp_class):
            def connection_made(self, transport):
                with connections.changed:
                    connections.open += 1
                super().connection_made(transport)

            def connection_lost(self, error):
                try:
                    super().connection_lost(error)
                finally:
                    with connections.changed:
                        connections.open -= 1
                        connections.changed.notify_all()

        return CountingSMTP


class SmtpServer:
    """aiosmtpd controllers sharing one recording, fault-injecting handler."""

    def __init__(self, directory: Path):
        Controller = require("aiosmtpd.controller").Controller
        SMTP = require("aiosmtpd.smtp").SMTP
        self.connections = _Connections()
        counting_smtp = self.connections.counting(SMTP)

        class CountingController(Controller):
            def factory(self):
                return counting_smtp(self.handler, **self.SMTP_kwargs)

            def _run(self, ready_event):
                try:
                    super()._run(ready_event)
                finally:
                    # A failed bind (a port another worker took meanwhile) ends this thread at once, but
                    # aiosmtpd's start() would go on waiting its whole ready_timeout (60 s) before saying
                    # so; waking it here makes `_trigger_server` raise the bind error at once.
                    if self._thread_exception is not None:
                        ready_event.set()

            def _trigger_server(self):
                if self._thread_exception is not None:
                    raise self._thread_exception
                # aiosmtpd's own first connection (which makes the server build its SMTP instance) uses a
                # client context loaded from the system CA store, about 20 ms of CPU per server and so per
                # test, only to switch verification off: the same connection with an empty context.
                # (`_trigger_server` is the hook aiosmtpd's BaseController leaves to its subclasses.)
                with socket.create_connection((self.hostname, self.port), 30.0) as connection:
                    if self.ssl_context:
                        with _TRIGGER_CONTEXT.wrap_socket(connection) as tls:
                            tls.recv(1024)
                    else:
                        connection.recv(1024)

        self.dir = directory
        self.certs = ServerCertificates.create(directory)
        self.password_files = write_password_files(directory)
        self.received: list[ReceivedMail] = []
        self.faults = _Faults()
        self.deliver_into: Dovecot | None = None
        handler = _RecordingHandler(self)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(self.certs.cert_file), str(self.certs.key_file))
        # ready_timeout: aiosmtpd's 5 s for its thread to start and answer is an error a busy machine
        # can reach, and costs nothing when it is not.
        common = dict(hostname=HOST, authenticator=_authenticate, auth_required=True, ready_timeout=60.0)
        # One listener each; aiosmtpd only counts STARTTLS as TLS: implicit TLS needs auth_require_tls=False.
        self._listeners = {
            "ssl": lambda port: CountingController(handler, port=port, ssl_context=server_ctx, auth_require_tls=False,
                                                   **common),
            "starttls": lambda port: CountingController(handler, port=port, tls_context=server_ctx,
                                                        require_starttls=True, **common),
            "plain": lambda port: CountingController(handler, port=port, auth_require_tls=False, **common),
        }
        self.ports = {security: free_port() for security in self._listeners}
        self.controllers = []

    @property
    def ca_file(self) -> Path:
        return self.certs.ca_file

    @property
    def ssl_port(self) -> int:
        return self.ports["ssl"]

    @property
    def starttls_port(self) -> int:
        return self.ports["starttls"]

    @property
    def plain_port(self) -> int:
        return self.ports["plain"]

    def start(self, attempts: int = 5) -> None:
        """Start the three listeners. A port found free may be taken by another test worker before
        the listener binds it: that listener then starts on another free port."""
        for security, make in self._listeners.items():
            for attempt in range(attempts):
                controller = make(self.ports[security])
                try:
                    controller.start()
                except OSError as exc:
                    controller.loop.close()  # its thread ended at the failed bind
                    if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                        raise
                    self.ports[security] = free_port()
                    continue
                self.controllers.append(controller)
                break

    def stop(self) -> None:
        for controller in self.controllers:
            try:
                controller.stop()
            except (AssertionError, RuntimeError):  # never started
                pass

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every client connection has closed, so `received` holds all the server took."""
        deadline = time.monotonic() + timeout
        with self.connections.changed:
            while self.connections.open > 0:
                left = deadline - time.monotonic()
                assert left > 0, f"{self.connections.open} SMTP connections still open after {timeout} s"
                self.connections.changed.wait(left)

    def fail(self, stage: str, reply: str) -> None:
        """Answer the next MAIL, RCPT or DATA with `reply` ("451 4.3.0 try later", DROP, ...)."""
        self.faults.queues[stage.upper()].append(reply)

    def port_for(self, security: str) -> int:
        return self.ports[security]

    def smtp_config(self, user: str, security: str = "ssl", timeout: float = 10.0,
                    ca_file: Path | None | str = "fixture") -> ServerConfig:
        return ServerConfig(
            host=HOST, port=self.port_for(security), security=security, username=user,
            password_file=self.password_files[user],
            ca_file=self.ca_file if ca_file == "fixture" else ca_file, timeout=timeout,
        )


def _authenticate(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and USERS.get(
        auth_data.login.decode("utf-8", "replace")) == auth_data.password.decode("utf-8", "replace")
    return AuthResult(success=ok, handled=False)

