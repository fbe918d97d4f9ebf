"""IMAP inbox adapter (SPEC 5): a thin, timeout-guarded layer over imapclient.

One `ImapInbox.session()` is one fresh connection: TLS as configured, LOGIN, the IMAP ID command
(163.com refuses SELECT without it), then SELECT (EXAMINE unless processed mail is moved). Reading
uses BODY.PEEK only, so nothing is marked read; staff read the same mailbox.

Every operation (connect with the greeting, LOGIN, each command) has an overall deadline besides
the per-read socket timeout, and a whole session may have one too (a poll): a peer that trickles
one byte at a time is cut off at the deadline (`mailbot.transports.deadline`), never waited for.

Every library, socket and TLS failure surfaces as `mailbot.errors.TransportError`. A login the
server refuses is a `TransportError` too: it is a configuration problem (wrong 授权码), not a
problem of any one message. What to do about a message is decided elsewhere; reading the replies
is pure and lives in `mailbot.transports.imap_responses`.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import logging
import ssl
import time
from datetime import date
from typing import Any, Callable, Iterator, TypeVar

from mailbot import __version__
from mailbot.config import MailboxConfig, ServerConfig
from mailbot.errors import ConfigError, MailbotError, TransportError
from mailbot.mail.structure import header_block
from mailbot.transports.deadline import Deadline
from mailbot.transports.imap_responses import (DESCRIBE_ITEMS, HEADER_ITEM, RemoteMessage, at, chunks, header_of,
                                               int_or, is_exists, plan_batches, remote_message, text_of, unique)
from mailbot.transports.fetched import Fetched
from mailbot.transports.tls import tls_context, untrusted_certificate

log = logging.getLogger(__name__)

UIDS_PER_COMMAND = 500  # keeps command lines short (some servers cap them near 8 KB)
ID_FIELDS = {"name": "mailbot", "version": __version__, "vendor": "mailbot"}

T = TypeVar("T")


class ImapInbox:
    """Opens sessions on one configured IMAP mailbox (an `Inbox`)."""

    source = "imap"

    def __init__(self, mailbox: MailboxConfig, *, timeout: float | None = None,
                 session_seconds: float | None = None):
        """`session_seconds`: how long a whole session may last (a poll's deadline); None: no
        limit beyond each operation's own (an IDLE watcher)."""
        if mailbox.imap is None:
            raise ConfigError(f"mailbox {mailbox.name!r} has no [mailbox.imap] section")
        self.mailbox = mailbox
        self.server: ServerConfig = mailbox.imap
        if self.server.security == "plain" and self.server.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("IMAP to %s without TLS: the password travels in clear text", self.server.host)
        self.timeout = timeout if timeout is not None else self.server.timeout
        self.session_seconds = session_seconds

    @contextlib.contextmanager
    def session(self) -> Iterator["ImapSession"]:
        """A fresh connection, logged in, identified and with the folder selected.

        LOGOUT is attempted on exit even after errors; the socket is closed in any case.
        """
        server = self.server
        deadline = Deadline(server.deadline, None if self.session_seconds is None
                            else time.monotonic() + self.session_seconds, abandon_on_stop=True)
        what = f"connect to {server.host}:{server.port}"
        with deadline.limit(what):
            client = _guard(what, lambda: _connect(server, self.timeout, deadline))
        session = None
        failed = False
        try:
            session = ImapSession(client, server, readonly=self.mailbox.move_processed_to is None, deadline=deadline)
            yield session
        except TransportError:
            failed = True
            raise
        finally:
            if failed or deadline.expired or (session is not None and session.broken):
                _close(client)  # after a timeout or a dropped connection LOGOUT would only wait again
            else:
                try:
                    with deadline.limit(f"LOGOUT on {server.host}", seconds=min(server.deadline, 10.0)):
                        _logout(client)
                except TransportError:
                    _close(client)


class ImapSession:
    """A logged-in connection with the configured folder selected."""

    def __init__(self, client: Any, server: ServerConfig, *, readonly: bool, deadline: Deadline | None = None):
        self._client = client
        self._deadline = deadline or Deadline(server.deadline)
        self.server = server
        self.folder = server.folder
        self.readonly = readonly
        self._sizes: dict[int, int] = {}
        self.broken = False  # set once a call failed: the connection is not to be trusted again
        where = f"{server.username} on {server.host}:{server.port}"  # the user is often an address itself
        password = server.password()
        if not (server.username + password).isascii():
            # imaplib would raise UnicodeEncodeError, whose text includes the password itself.
            raise TransportError(f"imap username or password of {server.host} contains non-ASCII characters; "
                                 "check password_file / password_env")
        try:
            with self._deadline.limit(f"LOGIN on {server.host}"):
                client.login(server.username, password)
        except MailbotError:
            raise
        except imaplib.IMAP4.abort as exc:
            raise TransportError(f"IMAP connection to {server.host} dropped during login: {exc}") from exc
        except imaplib.IMAP4.error as exc:
            raise TransportError(
                f"IMAP login refused for {where}: {text_of(exc)}; check username and password (授权码)") from exc
        except Exception as exc:
            raise TransportError(f"IMAP login to {server.host} failed: {exc!r}") from exc
        self.capabilities: frozenset[str] = self._call(
            "CAPABILITY", lambda: frozenset(text_of(c).upper() for c in client.capabilities()))
        # 163.com answers SELECT with "NO Unsafe Login" to clients that did not identify.
        self._call("ID", lambda: _send_id(client, "ID" in self.capabilities, server.host))
        selected = self._call(f"SELECT {server.folder}", lambda: client.select_folder(server.folder, readonly=readonly))
        try:
            self.uidvalidity: int = int(selected[b"UIDVALIDITY"])
        except (KeyError, TypeError, ValueError):
            raise TransportError(f"{server.host} sent no UIDVALIDITY for {server.folder}") from None
        self.exists: int = int_or(selected.get(b"EXISTS"), 0)
        self.uidnext: int | None = int_or(selected.get(b"UIDNEXT"), None)  # Coremail may omit it

    @property
    def commands_sent(self) -> int:
        """Every IMAP command sent on this connection so far (imaplib numbers each one's tag)."""
        return int(getattr(self._client._imap, "tagnum", 0))

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid`, ascending, in one command whatever the mailbox size.

        `UID SEARCH UID n:*` also returns the highest UID when it is below n (RFC 3501: `*` is
        the largest UID and the range has no order), so that one is filtered out.
        """
        first = max(int(last_uid), 0) + 1
        found = self._call("UID SEARCH", lambda: self._client.search([b"UID", f"{first}:*".encode()]))
        return sorted(uid for uid in (int_or(u, 0) for u in found) if uid > last_uid)

    def uids_since(self, day: date) -> list[int]:
        """UIDs of the messages that reached the folder on or after `day` (IMAP SEARCH SINCE, by
        INTERNALDATE, which servers compare in their own zone: a day's edge is approximate)."""
        found = self._call("UID SEARCH SINCE", lambda: self._client.search([b"SINCE", day]))
        return sorted(uid for uid in (int_or(u, 0) for u in found) if uid > 0)

    def describe(self, uids: list[int], *, for_download: bool = True) -> list[RemoteMessage]:
        """Size, flags, structure and a few headers of each message, in batched FETCHes.

        UIDs that no longer exist (expunged meanwhile) are simply missing from the result. Sizes
        are kept for `fetch_raw` unless `for_download` is False (a baseline of 100,000 messages
        that will not be downloaded).
        """
        described: list[RemoteMessage] = []
        for chunk in chunks(unique(uids), UIDS_PER_COMMAND):
            response = self._call("FETCH (describe)", lambda: self._client.fetch(chunk, DESCRIBE_ITEMS))
            for uid in chunk:
                item = response.get(uid)
                if item is None:
                    continue
                message = remote_message(uid, item)
                if for_download:
                    self._sizes[uid] = message.size
                described.append(message)
        return described

    def fetch_raw(self, uids: list[int], batch_bytes: int = 8_000_000) -> Iterator[tuple[int, bytes]]:
        """(uid, exact message bytes) in the order given, several messages per FETCH.

        BODY.PEEK[] never sets \\Seen. Batches hold up to `batch_bytes` (a bigger message goes
        alone), so a first poll of a full mailbox costs a few round trips, not one per message.
        Messages expunged meanwhile are skipped.
        """
        for uid, fetched in self.fetch(uids, batch_bytes):
            yield uid, fetched.raw

    def fetch(self, uids: list[int], batch_bytes: int = 8_000_000, max_bytes: int | None = None
              ) -> Iterator[tuple[int, Fetched]]:
        """As fetch_raw, by RFC822.SIZE first (from `describe`, else asked now): a message over
        `max_bytes` is read as its header section only (BODY.PEEK[HEADER], at most
        MAX_HEADER_BYTES of it), so its body is never downloaded."""
        wanted = unique(uids)
        unknown = [uid for uid in wanted if uid not in self._sizes]
        for chunk in chunks(unknown, UIDS_PER_COMMAND):
            sizes = self._call("FETCH (size)", lambda: self._client.fetch(chunk, [b"RFC822.SIZE"]))
            for uid, item in sizes.items():
                self._sizes[uid] = int_or(item.get(b"RFC822.SIZE"), 0)
        present = [uid for uid in wanted if uid in self._sizes]
        for oversized, run in itertools.groupby(present, lambda uid: max_bytes is not None
                                                and self._sizes[uid] > max_bytes):
            yield from self._fetch_headers(list(run)) if oversized else self._fetch_whole(list(run), batch_bytes)

    def _fetch_whole(self, uids: list[int], batch_bytes: int) -> Iterator[tuple[int, Fetched]]:
        for batch in plan_batches(uids, self._sizes, batch_bytes, UIDS_PER_COMMAND):
            response = self._call("FETCH (body)", lambda: self._client.fetch(batch, [b"BODY.PEEK[]"]))
            for uid in batch:
                data = (response.get(uid) or {}).get(b"BODY[]")
                if isinstance(data, bytes):
                    yield uid, Fetched(data, len(data), whole=True)

    def _fetch_headers(self, uids: list[int]) -> Iterator[tuple[int, Fetched]]:
        for chunk in chunks(uids, UIDS_PER_COMMAND):
            response = self._call("FETCH (header)", lambda: self._client.fetch(chunk, [HEADER_ITEM]))
            for uid in chunk:
                data = header_of(response.get(uid))
                if data is not None:
                    yield uid, Fetched(header_block(data), self._sizes[uid], whole=False)

    def move(self, uid: int, folder: str) -> None:
        """Move one message: MOVE where advertised, else COPY + \\Deleted + UID EXPUNGE.

        Without UIDPLUS the message is copied and flagged \\Deleted but not expunged: a plain
        EXPUNGE would also remove whatever staff flagged deleted.
        """
        if self.readonly:
            raise TransportError(f"{self.server.folder} was opened read-only; configure move_processed_to to move mail")
        if "MOVE" in self.capabilities:
            self._call("UID MOVE", lambda: self._client.move([uid], folder))
            return
        self._call("UID COPY", lambda: self._client.copy([uid], folder))
        self._call("UID STORE", lambda: self._client.add_flags([uid], [b"\\Deleted"], silent=True))
        if "UIDPLUS" in self.capabilities:
            self._call("UID EXPUNGE", lambda: self._client.uid_expunge([uid]))
        else:
            log.warning("%s has no UIDPLUS: UID %s copied to %s and flagged deleted, not expunged",
                        self.server.host, uid, folder)

    def idle_wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds in IDLE; True as soon as new mail (EXISTS) arrives.

        Only where the server advertises IDLE (163.com does not); keep timeout under 29 minutes.
        """
        if "IDLE" not in self.capabilities:
            raise TransportError(f"{self.server.host} does not support IDLE")
        deadline = time.monotonic() + max(float(timeout), 0.0)
        self._call("IDLE", self._client.idle)
        arrived = False
        while not arrived:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            responses = self._call("IDLE wait", lambda: self._client.idle_check(timeout=remaining),
                                   seconds=remaining + self.server.deadline)
            arrived = any(is_exists(response) for response in responses)
            if not responses and deadline - time.monotonic() > 1.0:
                # Nothing, well before the timeout: the socket was readable without a whole line.
                # That is the end of the stream (imapclient swallows the EOF and would return at once
                # again and again, a core spinning until the round's end) or, rarely, a line split
                # across packets. DONE tells them apart: it fails on a closed connection.
                break
        done = self._call("DONE", self._client.idle_done)
        # Responses that arrived between the last check and DONE count as well.
        return arrived or any(is_exists(response) for response in (at(done, 1) or ()))

    def _call(self, what: str, action: Callable[[], T], seconds: float | None = None) -> T:
        """One command, within its deadline; after any failure the connection is not used again."""
        if self.broken:
            raise TransportError(f"{what} on {self.server.host}: the connection already failed; open a new session")
        where = f"{what} on {self.server.host}"
        try:
            with self._deadline.limit(where, seconds):
                return _guard(where, action)
        except TransportError:
            self.broken = True
            raise


# -- the network edge ---------------------------------------------------------------------------


def _guard(what: str, action: Callable[[], T]) -> T:
    """Run one library call; every failure becomes a TransportError naming what was tried."""
    try:
        return action()
    except MailbotError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise TransportError(untrusted_certificate(what, exc)) from exc
    except TimeoutError as exc:  # socket.timeout is TimeoutError since Python 3.10
        raise TransportError(f"{what}: no answer within the timeout") from exc
    except imaplib.IMAP4.error as exc:
        raise TransportError(f"{what}: {text_of(exc)}") from exc
    except Exception as exc:  # socket, TLS and parser errors from a broken or hostile server
        raise TransportError(f"{what}: {exc!r}") from exc


def _connect(server: ServerConfig, timeout: float, deadline: Deadline) -> Any:
    from mailbot.transports.imap_deadline import DeadlineIMAPClient

    if server.security == "ssl":
        client = DeadlineIMAPClient(server.host, port=server.port, ssl=True, ssl_context=tls_context(server),
                                    timeout=timeout, deadline=deadline)
        _quiet(client)
        return client
    client = DeadlineIMAPClient(server.host, port=server.port, ssl=False, timeout=timeout, deadline=deadline)
    _quiet(client)
    if server.security == "starttls":
        try:
            client.starttls(tls_context(server))  # the deadline follows the new TLS socket
        except BaseException:
            _logout(client)  # never fall back to plain text
            raise
    elif server.security != "plain":
        _logout(client)
        raise ConfigError(f"imap.security must be ssl, starttls or plain, not {server.security!r}")
    return client


def _send_id(client: Any, advertised: bool, host: str) -> None:
    """Identify ourselves (RFC 2971). Sent even where not advertised; a refusal is only logged."""
    if advertised:
        client.id_(ID_FIELDS)
        return
    fields = " ".join(f'"{key}" "{value}"' for key, value in ID_FIELDS.items())
    try:
        client._imap.xatom("ID", f"({fields})")  # imapclient's id_() insists on the capability
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        log.info("%s does not accept the ID command: %s", host, text_of(exc))


def _quiet(client: Any) -> None:
    # imapclient turns on imaplib's debug level 5 so it can log through `logging`; imaplib then
    # formats every response with repr() even when nothing is logged, which made fetching
    # 16 MB take three times as long as mbsync. Commands are still logged by imapclient.
    imap = getattr(client, "_imap", None)
    if imap is not None and hasattr(imap, "debug"):
        imap.debug = 0


def _close(client: Any) -> None:
    try:
        client.shutdown()
    except Exception as exc:
        log.debug("closing the IMAP socket failed: %r", exc)


def _logout(client: Any) -> None:
    """LOGOUT politely, or at least close the socket; never raises."""
    try:
        client.logout()
    except Exception:
        _close(client)
