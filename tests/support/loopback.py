"""What the test servers share: the loopback host, the test accounts, a throw-away CA, and
private directories the servers' own users can read."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from support.installed import require

HOST = "127.0.0.1"
USERS = {
    "chuyoujiao@example.test": "pw-chuyoujiao",
    "zjg@example.test": "pw-zjg",
    "school1@example.test": "pw-school1",
    "school2@example.test": "pw-school2",
    "school3@example.test": "pw-school3",
}


def free_port() -> int:
    """A loopback port that was free a moment ago (tests may run in parallel)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]



def private_dir(prefix: str) -> Path:
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
        trustme = require("trustme")
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", HOST)
        certs = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
        ca.cert_pem.write_to_path(str(certs.ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(certs.cert_file))
        leaf.private_key_pem.write_to_path(str(certs.key_file))
        return certs

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def write_password_files(directory: Path) -> dict[str, Path]:
    secrets = directory / "secrets"
    secrets.mkdir(mode=0o700)
    files = {}
    for user, password in USERS.items():
        path = secrets / user
        path.write_text(password + "\n", encoding="utf-8")
        path.chmod(0o600)
        files[user] = path
    return files

