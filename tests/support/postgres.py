"""A private PostgreSQL on loopback for the tests: initdb into a temporary directory as an
unprivileged user (PostgreSQL refuses to run as root), a free high port, its unix socket in that
directory, fsync off; stopped and removed at the end of the session. No system service is used.

The `postgres` fixture (tests/servers.py) starts one per session. Each test that needs a database
gets its own, cloned from a migrated template (`CREATE DATABASE ... TEMPLATE`), reached as the
role `mailbot` with a password read from a file, as a bureau's installation reads it from a
credential (general.database_password_file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from support.installed import missing
from support.loopback import HOST, free_port

BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
ROLE, PASSWORD = "mailbot", "pw-mailbot-test"
TEMPLATE = "mailbot_template"
EMPTY = "template0"


def _bin_dir() -> Path | None:
    for candidate in BIN_CANDIDATES:
        if os.access(Path(candidate) / "initdb", os.X_OK):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _server_user() -> tuple[int, int] | None:
    """The uid/gid to run the server as: `postgres` when we are root (Debian's package makes it),
    else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        missing("the `postgres` user", "apt-get install postgresql")
    return entry.pw_uid, entry.pw_gid


class Postgres:
    """One running private server: `.url(database)`, `.password_file`, `.new_database(name, template)`."""

    def __init__(self, directory: Path, bin_dir: Path, fsync: bool = False):
        self.dir, self.bin, self.fsync = directory, bin_dir, fsync
        self.data = directory / "data"
        self.port = free_port()
        self.password_file = directory / "mailbot-db-password"
        self.user = _server_user()
        self._made: set[str] = set()

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        ids = {"user": self.user[0], "group": self.user[1], "extra_groups": []} if self.user else {}
        return subprocess.run(args, cwd=self.dir, capture_output=True, text=True, timeout=120, check=check,
                              **ids)

    def start(self) -> None:
        if self.user:
            os.chown(self.dir, *self.user)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        with (self.data / "pg_hba.conf").open("w") as hba:
            # The superuser only over the private socket; the application role with its password over TCP.
            hba.write("local all postgres trust\nhost all mailbot 127.0.0.1/32 scram-sha-256\n")
        settings = {"listen_addresses": f"'{HOST}'", "port": self.port, "unix_socket_directories": f"'{self.dir}'",
                    **({} if self.fsync else {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}),
                    "max_connections": 200, "shared_buffers": "32MB", "log_min_messages": "warning",
                    "timezone": "'UTC'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "60", "start")
        self.sql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        self.password_file.write_text(PASSWORD + "\n")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as the superuser over the private socket; its output."""
        done = self._run(str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql {statement!r}: {done.stderr.strip()}")
        return done.stdout

    def url(self, database: str) -> str:
        """The URL mailbot's config carries: no password (that is in password_file)."""
        return f"postgresql+psycopg://{ROLE}@{HOST}:{self.port}/{database}"

    def new_database(self, name: str, template: str = TEMPLATE) -> str:
        """A fresh database cloned from `template` (the migrated one, or template0 for an empty one)."""
        if name in self._made:
            self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.sql(f'CREATE DATABASE "{name}" OWNER {ROLE} TEMPLATE "{template}"')
        self._made.add(name)
        return name

    def exists(self, name: str) -> bool:
        return name in self._made

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.dir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        return ""


def database_name(state_dir: Path) -> str:
    """One database per state directory (a test's), named from its path: the same state directory
    always means the same database, as a SQLite file under it would."""
    return "t_" + hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:20]


@contextlib.contextmanager
def running_postgres(fsync: bool = False) -> Iterator[Postgres]:
    """A started private server, stopped and removed afterwards; fsync off unless asked (a
    benchmark wants production's durability, the tests want speed)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        missing("PostgreSQL (initdb, pg_ctl)", "apt-get install postgresql")
    directory = Path(tempfile.mkdtemp(prefix="mailbot-postgres-"))
    directory.chmod(0o755)
    server = Postgres(directory, bin_dir, fsync)
    try:
        for attempt in range(3):  # a free port may be taken between probing and binding
            try:
                server.start()
                break
            except subprocess.CalledProcessError as exc:
                if attempt == 2 or "could not bind" not in (server.log_tail() + str(exc.stderr)):
                    raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{server.log_tail()}") from exc
                server.stop()
                shutil.rmtree(server.data, ignore_errors=True)
                server.port = free_port()
                time.sleep(0.2)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
