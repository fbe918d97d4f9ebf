"""A private Dovecot on loopback (see /work/shared/TESTING.md): start/kill on fixed ports, seed
mail, read its log. The `dovecot` fixture (tests/servers.py) makes one per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable, Iterator

from mailbot.config import MailboxConfig, ServerConfig
from support.installed import missing
from support.loopback import HOST, USERS, ServerCertificates, free_port, private_dir, write_password_files

DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
LDA_CANDIDATES = ("/usr/lib/dovecot/dovecot-lda", "/usr/libexec/dovecot/dovecot-lda")
DOVEADM_CANDIDATES = ("/usr/bin/doveadm", "/usr/local/bin/doveadm")
MAIL_UID = 5000  # any unused uid: Dovecot refuses to serve mail as root (TESTING.md 2)


def _find(candidates: Iterable[str], name: str) -> str | None:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)



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
        self.password_files = write_password_files(directory)
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
            missing("dovecot-lda", "apt-get install dovecot-imapd")
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

    def logged(self, text: str, within: float = 30.0) -> bool:
        """Whether `text` reaches the log within `within` seconds: Dovecot's processes hand their
        lines to its log process, which writes them a moment after the client saw the answer."""
        deadline = time.monotonic() + within
        while text not in self.log_tail(400):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

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


@contextlib.contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """A started private Dovecot, killed and removed afterwards (the `dovecot` fixture)."""
    binary = _find(DOVECOT_CANDIDATES, "dovecot")
    if binary is None:
        missing("dovecot", "apt-get install dovecot-imapd; see TESTING.md")
    _become_subreaper()
    directory = private_dir("mailbot-dovecot-")
    server = None
    try:
        for attempt in range(3):  # a free port may be taken between probing and binding
            server = Dovecot(directory if attempt == 0 else private_dir("mailbot-dovecot-"),
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
