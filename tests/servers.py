"""Real mail servers on loopback as pytest fixtures (see /work/shared/TESTING.md). This module is a
pytest plugin (conftest.py lists it in `pytest_plugins`): a test requests a fixture by name, with
no import. The servers themselves live in tests/support/.

- `dovecot` (support.dovecot.Dovecot): a private instance on free ports with its own CA. `.port`,
  `.ssl_port`, `.ca_file`, `.append(user, raw, flags=())` -> uid, `.append_many(user, raws)`,
  `.deliver(user, raw)` (dovecot-lda), `.kick(user)`, `.kill()` / `.start()` (same ports),
  `.reset_uids(user, folder)` (the folder gets a new UIDVALIDITY and new UIDs), `.maildir(user)`,
  `.reconfigure("imap_capability = IMAP4rev1 UIDPLUS")` (restart with extra settings),
  `.imap_config(user, security="plain"|"ssl"|"starttls")` -> ServerConfig,
  `.mailbox_config(user, security, move_to=None)` -> MailboxConfig, `.client(user)` (IMAPClient
  for assertions), `.log_tail()`, `.log_errors()`. Users: support.loopback.USERS.
- `imap_proxy` (support.standins.RecordingProxy): forwards to dovecot's plain port and records the
  traffic; `.commands()` lists the IMAP commands the client really sent.
- `smtp_server` (support.smtp_server.SmtpServer): aiosmtpd with implicit TLS, STARTTLS and plain
  listeners, AUTH required; `.received` (ReceivedMail list), `.fail("MAIL"|"RCPT"|"DATA",
  "451 4.3.0 ..." or support.smtp_server.DROP)`, `.deliver_into = dovecot` (accepted mail goes to
  the users' INBOX through dovecot-lda), `.smtp_config(user, security)`.
- `silent_server` (support.standins.SilentServer): accepts TCP connections and never says a word.
- `postgres` (support.postgres.Postgres, one per session): a private PostgreSQL on a free loopback
  port, run as an unprivileged user; `.url(name)`, `.password_file`, `.new_database(name, template)`,
  `.sql(statement)`. With `--database=postgresql` every test's database lives there (conftest.py).

When Dovecot or aiosmtpd is missing its tests are skipped on a developer machine and fail under
CI=true (support/installed.py).
"""

from __future__ import annotations

import shutil
import socket
from typing import Iterator

import pytest

from support.dovecot import Dovecot, running_dovecot
from support.postgres import Postgres, running_postgres
from support.loopback import HOST, private_dir
from support.smtp_server import SmtpServer
from support.standins import RecordingProxy, SilentServer


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        try:
            yield server
        finally:
            print("---- postgresql server.log (tail) ----\n" + server.log_tail())


@pytest.fixture
def imap_proxy(dovecot) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(dovecot.port)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    directory = private_dir("mailbot-smtp-")
    try:
        server = SmtpServer(directory)
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    # The kernel completes the TCP handshake for queued connections; we never accept or answer.
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(16)
    try:
        yield SilentServer(HOST, listener.getsockname()[1])
    finally:
        listener.close()
