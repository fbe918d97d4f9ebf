"""imapclient's client with its socket under a `Deadline` from the first byte (issue 11 point 4).

imapclient makes the socket inside its constructor, which also reads the greeting and asks for
CAPABILITY: a trickling server stretches those as much as any command. These subclasses hand the
TCP socket to the deadline as soon as it is connected, and for TLS the TLS socket before its
handshake, so the deadline can cut any of it; after STARTTLS it follows imaplib's new socket.

They also spare the CAPABILITY command imaplib sends after the greeting when the greeting itself
carried the list (`* OK [CAPABILITY ...]`: Dovecot, Gmail, Coremail): one round trip fewer per
connection, which an empty poll opens for every mailbox.
"""

from __future__ import annotations

from imapclient import IMAPClient
from imapclient import imap4, tls

from mailbot.transports.deadline import Deadline, connect_tcp


class _GreetingCapabilities:
    """imaplib's `_get_capabilities`, answered from the greeting's CAPABILITY response code when
    it had one. After STARTTLS (`_tls_established`) the list is always asked for again: what came
    in clear text before the handshake is not to be trusted (RFC 2595 section 3.1). The code is
    taken out of the untagged responses either way, as the CAPABILITY command would have done, so
    imapclient later reads the list LOGIN sent (or asks), never this pre-login one."""

    def _get_capabilities(self):
        greeted = self.untagged_responses.pop("CAPABILITY", None)
        if greeted and greeted[-1] and not self._tls_established:
            self.capabilities = tuple(str(greeted[-1], self._encoding).upper().split())
            return
        super()._get_capabilities()


class _PlainIMAP4(_GreetingCapabilities, imap4.IMAP4WithTimeout):
    def __init__(self, host: str, port: int, timeout: float | None, deadline: Deadline):
        self._deadline = deadline
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout=None):
        return connect_tcp(self.host, self.port, timeout if timeout is not None else self._timeout, self._deadline)


class _TlsIMAP4(_GreetingCapabilities, tls.IMAP4_TLS):
    def __init__(self, host: str, port: int, ssl_context, timeout: float | None, deadline: Deadline):
        self._deadline = deadline
        super().__init__(host, port, ssl_context, timeout)

    def _create_socket(self, timeout=None):
        raw = connect_tcp(self.host, self.port, timeout if timeout is not None else self._timeout, self._deadline)
        # Always mailbot's own context (mailbot.transports.tls: CA file, minimum version), never
        # imapclient's default: a client made without one is a bug, not a reason to trust less.
        if self.ssl_context is None:
            raise ValueError("an IMAP TLS connection needs mailbot's TLS context (transports.tls)")
        sock = self.ssl_context.wrap_socket(raw, server_hostname=self.host, do_handshake_on_connect=False)
        self._deadline.attach(sock)  # the raw socket's descriptor now belongs to the TLS socket
        sock.do_handshake()
        return sock


class DeadlineIMAPClient(IMAPClient):
    def __init__(self, *args, deadline: Deadline, **kwargs):
        self._deadline = deadline
        super().__init__(*args, **kwargs)
        deadline.follow(lambda: getattr(self._imap, "sock", None))

    def _create_IMAP4(self):
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TlsIMAP4(self.host, self.port, self.ssl_context, connect_timeout, self._deadline)
        return _PlainIMAP4(self.host, self.port, connect_timeout, self._deadline)
