"""SMTP sender (SPEC 5): one connection per batch, errors sorted by what the outbox should do.

    with SmtpSender(mailbox.smtp) as smtp:
        for row in due:
            smtp.send(row.from_addr, row.to_addrs, row.raw)

What each error means for the outbox:
- `TemporarySendError` (4xx, dropped connection, timeout, server unreachable): retry later with
  back-off; the message was not accepted.
- `PermanentSendError` (5xx for this message, e.g. 163's `554 DT:SPM` anti-spam answer): record
  it and alert the operator; resending the same bytes will not help.
- `TransportError` itself (neither of the above): our account or TLS set-up is wrong (login
  refused with 535, certificate not trusted, STARTTLS or AUTH not offered, a 5xx greeting). No
  message is at fault: keep the queue, alert the operator, retry once the configuration is fixed.
Errors carry `.code` (the SMTP reply code, or None) and `.text` (the server's words).

Connecting (greeting, EHLO, STARTTLS, LOGIN) and each send have an overall deadline besides the
per-read socket timeout, so a trickling server is cut off (`mailbot.transports.deadline`). That is
a `TemporarySendError` with `.stalled = True`: the outbox stops using the server for this run. A
stop cuts a connection still being made (`.stopping = True`: not the message's fault, no attempt
counted), never a send.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from typing import Any, Iterable

from mailbot.config import ServerConfig
from mailbot.errors import ConfigError, DeadlineExceeded, PermanentSendError, TemporarySendError, TransportError
from mailbot.transports.deadline import Deadline, connect_tcp
from mailbot.transports.tls import tls_context, untrusted_certificate

log = logging.getLogger(__name__)

_BARE_LINE_END = re.compile(rb"\r?\n|\r")
LOOPBACK = ("127.0.0.1", "::1", "localhost")  # where "plain" is fine: tests and local relays


class SmtpSender:
    """Sends raw messages through one SMTP account; connects lazily and reconnects after errors."""

    def __init__(self, server: ServerConfig, *, local_hostname: str | None = None):
        if server.security not in ("ssl", "starttls", "plain"):
            raise ConfigError(f"smtp.security must be ssl, starttls or plain, not {server.security!r}")
        if server.security == "plain" and server.host not in LOOPBACK:
            log.warning("SMTP to %s without TLS: the password travels in clear text", server.host)
        self.server = server
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self._deadline = Deadline(server.deadline)

    def __enter__(self) -> "SmtpSender":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def send(self, from_addr: str, to_addrs: Iterable[str], raw: bytes) -> dict[str, tuple[int, str]]:
        """Hand one message to the server. Returns the recipients the server refused while
        accepting others ({address: (code, text)}, usually empty): the message went out, so it
        must not be retried, but the operator should hear about them."""
        recipients = [address for address in to_addrs if address]
        if not recipients:
            raise PermanentSendError("no recipients")
        message = normalise_line_ends(raw)
        smtp = self._connection()
        options = []
        if not message.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            # finished_counts: sendmail returned, so the server took the message; a deadline that
            # passed at that moment must not call it a failure, or it would be sent again.
            with self._deadline.limit(f"sending to {', '.join(recipients)} via {self.server.host}",
                                      finished_counts=True):
                refused = smtp.sendmail(from_addr, recipients, message, mail_options=options)
        except Exception as exc:
            self._drop()  # after any failure the session state is unknown: start afresh next time
            raise _translate(exc, f"sending to {', '.join(recipients)} via {self.server.host}") from exc
        except BaseException:
            self._drop()
            raise
        if self._deadline.expired:  # the message stands; the connection, cut, does not
            self._drop()
        return {address: (code, _text(reply)) for address, (code, reply) in refused.items()}

    def close(self) -> None:
        """QUIT politely; never raises."""
        if self._smtp is None:
            return
        try:
            with self._deadline.limit(f"QUIT on {self.server.host}", seconds=min(self.server.deadline, 10.0)):
                self._smtp.quit()
        except Exception as exc:
            log.debug("SMTP QUIT to %s failed: %r", self.server.host, exc)
            self._drop()
        self._smtp = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            # A fresh connection, a fresh deadline. A stop may cut it until the connection is made
            # (nothing is sent yet); not from then on (mailbot.transports.deadline).
            self._deadline = Deadline(self.server.deadline, abandon_on_stop=True)
            where = f"connecting to {self.server.host}:{self.server.port}"
            try:
                with self._deadline.limit(where):
                    self._smtp = self._connect()
                if not self._deadline.keep_on_stop():  # the stop came just as it was made
                    self._drop()
                    raise DeadlineExceeded(f"{where}: abandoned, mailbot is stopping")
            except DeadlineExceeded as exc:
                error = _translate(exc, where)
                error.stopping = self._deadline.abandoned  # type: ignore[attr-defined]
                raise error from exc
            except (TransportError, ConfigError):
                raise
            except Exception as exc:
                error = _translate(exc, f"connecting to {self.server.host}:{self.server.port}")
                if isinstance(error, PermanentSendError):
                    # A 5xx before any message (greeting, EHLO, STARTTLS) refuses the account or
                    # our address, not this message: no message is to be marked failed for it.
                    error = _error(TransportError, str(error), error.code, error.text)  # type: ignore[attr-defined]
                raise error from exc
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        server, timeout = self.server, self.server.timeout
        if server.security == "ssl":
            smtp: smtplib.SMTP = _DeadlineSMTP_SSL(server.host, server.port, local_hostname=self.local_hostname,
                                                   timeout=timeout, context=tls_context(server),
                                                   deadline=self._deadline)
        else:
            smtp = _DeadlineSMTP(server.host, server.port, local_hostname=self.local_hostname, timeout=timeout,
                                 deadline=self._deadline)
        try:
            smtp.ehlo()
            if server.security == "starttls":
                smtp.starttls(context=tls_context(server))  # refuses if not offered: never plain text
                smtp.ehlo()
            if server.username:
                password = server.password()
                if not (server.username + password).isascii():
                    # smtplib would die with UnicodeEncodeError; 163 授权码 are ASCII letters.
                    raise _error(TransportError, f"smtp username or password of {server.host} contains non-ASCII "
                                 "characters; check password_file / password_env", None, "non-ASCII credentials")
                smtp.login(server.username, password)
            return smtp
        except BaseException:
            _close_quietly(smtp)
            raise

    def _drop(self) -> None:
        if self._smtp is not None:
            _close_quietly(self._smtp)
        self._smtp = None


class _DeadlineSMTP(smtplib.SMTP):
    """smtplib.SMTP whose socket is under the deadline from the TCP connect on (the constructor
    already reads the greeting); after STARTTLS the deadline follows the new TLS socket."""

    def __init__(self, *args, deadline: Deadline, **kwargs):
        self._deadline = deadline
        deadline.follow(lambda: getattr(self, "sock", None))
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        return connect_tcp(host, port, timeout, self._deadline, self.source_address)


class _DeadlineSMTP_SSL(smtplib.SMTP_SSL):
    def __init__(self, *args, deadline: Deadline, **kwargs):
        self._deadline = deadline
        deadline.follow(lambda: getattr(self, "sock", None))
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        raw = connect_tcp(host, port, timeout, self._deadline, self.source_address)
        sock = self.context.wrap_socket(raw, server_hostname=self._host, do_handshake_on_connect=False)
        self._deadline.attach(sock)
        sock.do_handshake()
        return sock


def normalise_line_ends(raw: bytes) -> bytes:
    """SMTP needs CRLF everywhere; messages written by hand or on Unix may have bare LF."""
    return _BARE_LINE_END.sub(b"\r\n", raw)


def classify_reply(code: int | None, text: str, where: str) -> TransportError:
    """4xx -> TemporarySendError, 5xx -> PermanentSendError (both with code and text)."""
    cls = PermanentSendError if code is not None and 500 <= code < 600 else TemporarySendError
    return _error(cls, f"{where}: {code} {text}".rstrip(), code, text)


def _translate(exc: Exception, where: str) -> Exception:
    """Map smtplib/socket/TLS failures onto the outbox's three cases (see the module doc)."""
    if isinstance(exc, DeadlineExceeded):
        error = _error(TemporarySendError, f"{where}: {exc}", None, "deadline")
        error.stalled = True  # type: ignore[attr-defined]
        return error
    if isinstance(exc, (TransportError, ConfigError)):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _error(TransportError, f"{where}: login refused ({exc.smtp_code} {_text(exc.smtp_error)}); "
                      "check username and password (授权码)", exc.smtp_code, _text(exc.smtp_error))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return _error(TransportError, f"{where}: {exc} (check security and port)", None, str(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _error(TransportError, untrusted_certificate(where, exc), None, str(exc))
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        # Only a refusal that holds for every recipient is final.
        code = next((c for c in codes if not 500 <= c < 600), codes[0] if codes else None)
        text = "; ".join(f"{addr}: {c} {_text(reply)}" for addr, (c, reply) in exc.recipients.items())
        return classify_reply(code, text, where)
    if isinstance(exc, smtplib.SMTPResponseException):  # SenderRefused, DataError, ConnectError, ...
        code = exc.smtp_code if isinstance(exc.smtp_code, int) and exc.smtp_code > 0 else None
        if code is None or not 400 <= code < 600:
            return _error(TemporarySendError, f"{where}: unexpected reply {exc.smtp_code} {_text(exc.smtp_error)}",
                          code, _text(exc.smtp_error))
        return classify_reply(code, _text(exc.smtp_error), where)
    if isinstance(exc, TimeoutError):
        return _error(TemporarySendError, f"{where}: no answer within the timeout", None, "timeout")
    # Dropped, refused or reset connections, TLS failures, and hostile replies confusing smtplib.
    return _error(TemporarySendError, f"{where}: {exc!r}", None, str(exc))


def _error(cls: type[TransportError], message: str, code: int | None, text: str) -> TransportError:
    error = cls(message)
    error.code = code  # type: ignore[attr-defined]
    error.text = text  # type: ignore[attr-defined]
    return error


def _text(reply: Any) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", errors="replace")
    return str(reply)


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except Exception as exc:
        log.debug("closing the SMTP socket failed: %r", exc)
