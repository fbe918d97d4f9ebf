"""Real mail servers on loopback for the transport tests (see /work/shared/TESTING.md).

Test modules import the fixtures they use by name (pytest finds fixtures in the module's
namespace; a fixture's own dependencies must be imported too, e.g. `dovecot` with `imap_proxy`):

    from servers import dovecot, imap_proxy, smtp_server, silent_server  # noqa: F401, F811

- `dovecot` (Dovecot): a private instance on free ports with its own CA. `.port`, `.ssl_port`,
  `.ca_file`, `.append(user, raw, flags=())` -> uid, `.append_many(user, raws)`,
  `.deliver(user, raw)` (dovecot-lda), `.kick(user)`, `.kill()` / `.start()` (same ports),
  `.reset_uids(user, folder)` (the folder gets a new UIDVALIDITY and new UIDs), `.maildir(user)`,
  `.reconfigure("imap_capability = IMAP4rev1 UIDPLUS")` (restart with extra settings),
  `.imap_config(user, security="plain"|"ssl"|"starttls")` -> ServerConfig,
  `.mailbox_config(user, security, move_to=None)` -> MailboxConfig, `.client(user)` (IMAPClient
  for assertions), `.log_tail()`, `.log_errors()`. Users: see USERS.
- `imap_proxy` (RecordingProxy): forwards to dovecot's plain port and records the traffic;
  `.commands()` lists the IMAP commands the client really sent.
- `smtp_server` (SmtpServer): aiosmtpd with implicit TLS, STARTTLS and plain listeners, AUTH
  required; `.received` (ReceivedMail list), `.fail("MAIL"|"RCPT"|"DATA", "451 4.3.0 ..." or DROP)`,
  `.deliver_into = dovecot` (accepted mail goes to the users' INBOX through dovecot-lda),
  `.smtp_config(user, security)`.
- `silent_server` (SilentServer): accepts TCP connections and never says a word.

When Dovecot is missing its tests are skipped on a developer machine and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import pytest

from mailbot.config import MailboxConfig, ServerConfig

HOST = "127.0.0.1"
USERS = {
    "chuyoujiao@example.test": "pw-chuyoujiao",
    "zjg@example.test": "pw-zjg",
    "school1@example.test": "pw-school1",
    "school2@example.test": "pw-school2",
    "school3@example.test": "pw-school3",
}
DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
LDA_CANDIDATES = ("/usr/lib/dovecot/dovecot-lda", "/usr/libexec/dovecot/dovecot-lda")
DOVEADM_CANDIDATES = ("/usr/bin/doveadm", "/usr/local/bin/doveadm")
MAIL_UID = 5000  # any unused uid: Dovecot refuses to serve mail as root (TESTING.md 2)


def free_port() -> int:
    """A loopback port that was free a moment ago (tests may run in parallel)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _find(candidates: Iterable[str], name: str) -> str | None:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def _missing(what: str) -> None:
    """A developer without Dovecot may skip; CI must never silently skip the mail tests."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{what} is not installed but CI=true: install dovecot-imapd (see TESTING.md)")
    pytest.skip(f"{what} is not installed")


def _private_dir(prefix: str) -> Path:
    # Dovecot's auth process runs as user `dovecot` and must traverse this directory: 0755,
    # not pytest's tmp_path (under a 0700 directory). tmpfs where there is one: creating a file
    # costs 0.7 ms on some CI disks, and Dovecot writes one per message.
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o755)
    return path


@dataclass
class ServerCertificates:
    """A throw-away CA and a localhost/127.0.0.1 server certificate, as files."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> "ServerCertificates":
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", HOST)
        certs = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
        ca.cert_pem.write_to_path(str(certs.ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(certs.cert_file))
        leaf.private_key_pem.write_to_path(str(certs.key_file))
        return certs

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _write_password_files(directory: Path) -> dict[str, Path]:
    secrets = directory / "secrets"
    secrets.mkdir(mode=0o700)
    files = {}
    for user, password in USERS.items():
        path = secrets / user
        path.write_text(password + "\n", encoding="utf-8")
        path.chmod(0o600)
        files[user] = path
    return files


DOVECOT_CONF = """\
instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {host}
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# Logs the ID a client sends, so tests can see that mailbot identifies itself.
imap_id_log = *
mail_max_userip_connections = 100
mail_fsync = never
auth_failure_delay = 0
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = subscribe
  }}
  mailbox Sent {{
    auto = subscribe
    special_use = \\Sent
  }}
  mailbox Trash {{
    auto = subscribe
    special_use = \\Trash
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = {ids}home={d}/mail/%d/%n
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ssl_port}
    ssl = yes
  }}
}}
{nonroot}
"""

NONROOT_CONF = """\
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """A private Dovecot instance: start/kill on fixed ports, seed mail, read its log."""

    def __init__(self, directory: Path, binary: str, lda: str | None, doveadm: str | None):
        self.dir = directory
        self.binary, self.lda, self.doveadm = binary, lda, doveadm
        self.certs = ServerCertificates.create(directory)
        self.password_files = _write_password_files(directory)
        self.conf = directory / "dovecot.conf"
        self.proc: subprocess.Popen | None = None
        self.port = free_port()
        self.ssl_port = free_port()
        self._clients: list = []
        self._seeders: dict = {}
        self.extra_conf = ""
        (directory / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in USERS.items()), encoding="utf-8"
        )
        mail = directory / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            os.chown(mail, MAIL_UID, MAIL_UID)
        self._write_conf()

    @property
    def ca_file(self) -> Path:
        return self.certs.ca_file

    def _write_conf(self) -> None:
        root = os.geteuid() == 0
        if root:
            ids, nonroot, login_chroot = f"uid={MAIL_UID} gid={MAIL_UID} ", "", ""
        else:
            import grp
            import pwd

            user = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            ids, login_chroot = "", "chroot ="
            nonroot = NONROOT_CONF.format(user=user, group=group)
        self.conf.write_text(
            self.extra_conf + "\n" + DOVECOT_CONF.format(
                instance=f"dovecot-test-{self.dir.name}", d=self.dir, host=HOST, ids=ids,
                port=self.port, ssl_port=self.ssl_port, nonroot=nonroot, login_chroot=login_chroot,
            ),
            encoding="utf-8",
        )

    # -- process control ------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart, on the same ports) and wait for the `* OK` banner."""
        if self.proc is not None:
            raise RuntimeError("Dovecot is already running")
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            start_new_session=True,  # its own process group: teardown kills imap-login children too
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                stderr = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"dovecot exited at start: {stderr}\n{self.log_tail()}")
            if _banner_ok(self.port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"dovecot did not answer within {timeout}s\n{self.log_tail()}")
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it (a crash, as far as clients can tell).

        Killing only the master would leave imap-login children holding the ports. The children
        of the killed master are re-parented to this process (see _become_subreaper) and
        reaped here; PID 1 on CI machines reaps orphans slowly, leaving zombies behind.
        """
        if self.proc is None:
            return
        master = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        _reap_group(master)
    def close(self) -> None:
        for client in self._clients:
            try:
                client.shutdown()
            except Exception:  # the server may be gone already
                pass
        self.kill()

    # -- mail -----------------------------------------------------------------------------

    def client(self, user: str, *, folder: str | None = None):
        """A logged-in plain IMAPClient for assertions (closed at teardown)."""
        from imapclient import IMAPClient

        client = IMAPClient(HOST, port=self.port, ssl=False, timeout=10)
        client.login(user, USERS[user])
        if folder:
            client.select_folder(folder)
        self._clients.append(client)
        return client

    def append(self, user: str, raw: bytes, flags: Iterable[bytes | str] = (), folder: str = "INBOX") -> int:
        """APPEND one message; returns its UID."""
        client = self._seed_client(user)
        response = client.append(folder, raw, flags=tuple(flags))
        return _appenduid(response)

    def append_many(self, user: str, raws: list[bytes], folder: str = "INBOX", chunk: int = 500) -> None:
        """MULTIAPPEND in chunks: thousands of messages in about a second."""
        client = self._seed_client(user)
        for start in range(0, len(raws), chunk):
            client.multiappend(folder, raws[start:start + chunk])

    def _seed_client(self, user: str):
        """One seeding connection per user, reopened after a restart or kick."""
        from imapclient import IMAPClient

        client = self._seeders.get(user)
        if client is not None:
            try:
                client.noop()
                return client
            except Exception:  # dropped by kill()/kick(): open a new one
                pass
        client = IMAPClient(HOST, port=self.port, ssl=False, timeout=30)
        client.login(user, USERS[user])
        self._clients.append(client)
        self._seeders[user] = client
        return client

    def deliver(self, user: str, raw: bytes, sender: str = "sender@example.test") -> None:
        """Deliver like an MTA would (dovecot-lda), without IMAP."""
        if not self.lda:
            pytest.skip("dovecot-lda is not installed")
        result = subprocess.run([self.lda, "-c", str(self.conf), "-d", user, "-f", sender],
                                input=raw, capture_output=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"dovecot-lda exit {result.returncode}: {result.stderr.decode(errors='replace')}")

    def kick(self, user: str) -> None:
        """Drop the user's sessions without a restart."""
        subprocess.run([self.doveadm or "doveadm", "-c", str(self.conf), "kick", user],
                       capture_output=True, check=True, timeout=30)

    def reset_uids(self, user: str, folder: str = "INBOX") -> None:
        """Make a folder forget its UIDs: same messages, new UIDVALIDITY and new UIDs.

        This is what a server migration or a rebuilt index looks like to a client (the folder
        "recreated"). Dovecot keeps a per-user UIDVALIDITY counter, so the new value always
        differs from the old one.
        """
        maildir = self.maildir(user)
        if folder.upper() != "INBOX":
            maildir = maildir / ("." + folder.replace("/", "."))  # Maildir++ layout
        self.kill()
        for path in maildir.iterdir():
            if path.name.startswith("dovecot-uidlist") or path.name.startswith("dovecot.index"):
                path.unlink()
        self.start()

    def reconfigure(self, extra_conf: str) -> None:
        """Restart with extra settings, e.g. `imap_capability = IMAP4rev1 UIDPLUS` to play a
        server that advertises no IDLE, MOVE or ID (like 163.com's Coremail)."""
        self.kill()
        self.extra_conf = extra_conf
        self._write_conf()
        self.start()

    def maildir(self, user: str) -> Path:
        local, domain = user.split("@")
        return self.dir / "mail" / domain / local / "Maildir"

    # -- configs for mailbot ----------------------------------------------------------------

    def imap_config(self, user: str, security: str = "plain", timeout: float = 10.0,
                    folder: str = "INBOX", ca_file: Path | None | str = "fixture") -> ServerConfig:
        return ServerConfig(
            host=HOST,
            port=self.ssl_port if security == "ssl" else self.port,
            security=security,
            username=user,
            password_file=self.password_files[user],
            ca_file=self.ca_file if ca_file == "fixture" else ca_file,
            folder=folder,
            timeout=timeout,
        )

    def mailbox_config(self, user: str, security: str = "plain", move_to: str | None = None,
                       **server_kwargs) -> MailboxConfig:
        return MailboxConfig(
            name=user.split("@")[0], address=user, levels=["primary"],
            imap=self.imap_config(user, security, **server_kwargs), move_processed_to=move_to,
        )

    # -- log --------------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        path = self.dir / "dovecot.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def log_errors(self) -> list[str]:
        path = self.dir / "dovecot.log"
        if not path.exists():
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if " Error: " in line or " Fatal: " in line]


def _become_subreaper() -> None:
    """Orphaned descendants (Dovecot's children once the master is killed) come to us, not PID 1."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER (Linux 3.4+)
    except (OSError, AttributeError):
        pass  # not Linux: zombies are left for init to reap


def _reap_group(pgid: int, timeout: float = 2.0) -> None:
    """Wait for every process of the killed group; only those pids, so nobody else's child."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = _group_members(pgid)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.002)


def _group_members(pgid: int) -> set[int]:
    """PIDs (zombies included) whose process group is `pgid`, from /proc (Linux)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid):
            members.add(int(entry.name))
    return members


def _banner_ok(port: int) -> bool:
    # The port accepts before imap-login can answer; only the banner means ready.
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _appenduid(response: bytes) -> int:
    # b"[APPENDUID 1700000000 7] Append completed."
    try:
        return int(response.split(b"]")[0].split()[2])
    except (IndexError, ValueError):
        raise RuntimeError(f"no APPENDUID in {response!r}") from None


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = _find(DOVECOT_CANDIDATES, "dovecot")
    if binary is None:
        _missing("dovecot")
    _become_subreaper()
    directory = _private_dir("mailbot-dovecot-")
    server = None
    try:
        for attempt in range(3):  # a free port may be taken between probing and binding
            server = Dovecot(directory if attempt == 0 else _private_dir("mailbot-dovecot-"),
                             binary, _find(LDA_CANDIDATES, "dovecot-lda"), _find(DOVEADM_CANDIDATES, "doveadm"))
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                shutil.rmtree(server.dir, ignore_errors=True)
        yield server
    finally:
        if server is not None:
            server.close()
            print("---- dovecot.log (tail) ----\n" + server.log_tail())  # shown only when a test fails
            shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A recording TCP proxy: what the client really sent, line by line.
# ---------------------------------------------------------------------------------------------


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


@pytest.fixture
def imap_proxy(dovecot) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(dovecot.port)
    try:
        yield proxy
    finally:
        proxy.close()


# ---------------------------------------------------------------------------------------------
# SMTP: aiosmtpd with implicit TLS, STARTTLS and plain listeners.
# ---------------------------------------------------------------------------------------------


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


class SmtpServer:
    """aiosmtpd controllers sharing one recording, fault-injecting handler."""

    def __init__(self, directory: Path):
        from aiosmtpd.controller import Controller

        self.dir = directory
        self.certs = ServerCertificates.create(directory)
        self.password_files = _write_password_files(directory)
        self.received: list[ReceivedMail] = []
        self.faults = _Faults()
        self.deliver_into: Dovecot | None = None
        handler = _RecordingHandler(self)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(self.certs.cert_file), str(self.certs.key_file))
        self.ssl_port, self.starttls_port, self.plain_port = free_port(), free_port(), free_port()
        common = dict(hostname=HOST, authenticator=_authenticate, auth_required=True)
        self.controllers = [
            # aiosmtpd only counts STARTTLS as TLS: implicit TLS needs auth_require_tls=False.
            Controller(handler, port=self.ssl_port, ssl_context=server_ctx, auth_require_tls=False, **common),
            Controller(handler, port=self.starttls_port, tls_context=server_ctx, require_starttls=True, **common),
            Controller(handler, port=self.plain_port, auth_require_tls=False, **common),
        ]

    @property
    def ca_file(self) -> Path:
        return self.certs.ca_file

    def start(self) -> None:
        for controller in self.controllers:
            controller.start()

    def stop(self) -> None:
        for controller in self.controllers:
            try:
                controller.stop()
            except (AssertionError, RuntimeError):  # never started
                pass

    def fail(self, stage: str, reply: str) -> None:
        """Answer the next MAIL, RCPT or DATA with `reply` ("451 4.3.0 try later", DROP, ...)."""
        self.faults.queues[stage.upper()].append(reply)

    def port_for(self, security: str) -> int:
        return {"ssl": self.ssl_port, "starttls": self.starttls_port, "plain": self.plain_port}[security]

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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    pytest.importorskip("aiosmtpd")
    directory = _private_dir("mailbot-smtp-")
    server = SmtpServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A server that accepts and never answers.
# ---------------------------------------------------------------------------------------------


@dataclass
class SilentServer:
    host: str
    port: int

    def server_config(self, security: str = "plain", timeout: float = 0.5) -> ServerConfig:
        return ServerConfig(host=self.host, port=self.port, security=security, username="nobody@example.test",
                            password_env=None, timeout=timeout)


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
