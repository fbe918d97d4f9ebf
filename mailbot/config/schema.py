"""The configuration's shape: one dataclass per TOML table (SPEC 8), with their defaults.

Loading and validation are in mailbot.config.load; everything is importable from mailbot.config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo

from mailbot.errors import ConfigError
from mailbot.rules.month import Month

LEVELS = ("primary", "middle")
SECURITY = ("ssl", "starttls", "plain")
SENDER_AUTH = ("dmarc", "evidence", "off")  # see mailbot.rules.sender_auth
DEFAULT_STAGES = {"upcoming": (20, "09:00"), "due": (24, "09:00"), "overdue": (25, "09:00")}


def read_secret(env: str | None, file: Path | None, config_dir: Path | None, env_key: str, file_key: str) -> str:
    """A password from an environment variable or a credentials file; "" when neither is named.

    A bare file name is first a systemd credential (LoadCredential=, under $CREDENTIALS_DIRECTORY),
    else a file beside the config. The errors name the keys: `env_key` ("password_env of imap.163.com")
    and `file_key`, a template of the file's {path}."""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"environment variable {env} ({env_key}) is not set")
        return value
    if file:
        path = file
        if not path.is_absolute():
            creds = os.environ.get("CREDENTIALS_DIRECTORY")
            if creds and (Path(creds) / path).is_file():
                path = Path(creds) / path
            else:
                path = (config_dir or Path.cwd()) / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{file_key.format(path=path)} cannot be read: {exc.strerror}") from exc
    return ""


@dataclass
class ServerConfig:
    """An IMAP or SMTP account."""

    host: str
    port: int
    security: str
    username: str
    password_env: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    folder: str = "INBOX"  # IMAP only
    timeout: float = 60.0  # seconds, on every socket read or write
    deadline: float = 120.0  # seconds for one whole operation (connect, login, a command, a send)
    poll_deadline: float = 900.0  # IMAP only: seconds for a whole poll of the mailbox
    config_dir: Path | None = None  # where a relative password_file is, unless systemd provides it

    def password(self) -> str:
        """Read the secret now (never at load time, never logged)."""
        return read_secret(self.password_env, self.password_file, self.config_dir, f"password_env of {self.host}",
                           f"password_file {{path}} of {self.host}")


@dataclass
class MailboxConfig:
    name: str
    address: str
    levels: list[str]
    maildir: Path | None = None
    outbox_dir: Path | None = None
    imap: ServerConfig | None = None
    smtp: ServerConfig | None = None
    staff: list[str] = field(default_factory=list)
    move_processed_to: str | None = None  # an IMAP folder; off by default
    daily_send_cap: int = 200
    sender_auth: str | None = None  # overrides [security] sender_auth for this mailbox


@dataclass
class School:
    name: str
    level: str
    emails: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    id: str | None = None
    contact: str | None = None
    phone: str | None = None
    active_from: str | None = None  # "YYYY-MM"
    active_until: str | None = None

    def active_in(self, month: str) -> bool:
        return (self.active_from is None or self.active_from <= month) and (
            self.active_until is None or month <= self.active_until
        )


@dataclass
class Stage:
    name: str
    day: int
    at: time


@dataclass
class Schedule:
    deadline_day: int = 24
    stages: list[Stage] = field(default_factory=list)
    summary_day: int = 25
    summary_at: time = time(10, 0)
    poll_interval_minutes: float = 5.0
    working_days_only: bool = False
    reporting_months: list[int] = field(default_factory=lambda: list(range(1, 13)))


@dataclass
class Limits:
    max_message_bytes: int = 30 * 1024 * 1024
    max_attachment_bytes: int = 15 * 1024 * 1024
    max_uncompressed_bytes: int = 64 * 1024 * 1024  # inside zip-based files, checked before inflating
    max_rows: int = 5000  # per sheet
    worker_memory_mb: int = 768
    worker_timeout_seconds: float = 30.0
    max_attempts: int = 3  # for messages that fail because mailbot broke
    ledger_chunk: int = 500  # messages described, triaged and recorded per transaction (a poll, a first contact)


@dataclass
class Replies:
    max_per_sender_per_day: int = 10  # also per recipient
    max_per_mailbox_per_day: int = 150  # automatic replies one mailbox sends a day
    reply_max_age_days: float = 14.0  # no automatic reply to mail that waited longer (SPEC 5); 0: no limit


@dataclass
class Security:
    """Sender authentication (SPEC 3.4). `sender_auth` None: "dmarc" for IMAP mailboxes,
    "evidence" for Maildir mailboxes and `mailbot ingest FILE` (whose headers mailbot cannot tell
    were written by the receiving server)."""

    sender_auth: str | None = None
    authserv_ids: list[str] = field(default_factory=list)  # empty: the topmost Authentication-Results
    dns_timeout_seconds: float = 5.0  # for one DKIM key look-up

    def mode_for(self, mailbox: MailboxConfig, source: str) -> str:
        """The mode for a message to this mailbox that came through `source` (imap | maildir |
        file): as configured, else "dmarc" for an IMAP mailbox and "evidence" for a Maildir one or
        a file the operator ingests."""
        configured = mailbox.sender_auth or self.sender_auth
        if configured:
            return configured
        return "dmarc" if mailbox.imap is not None and source != "file" else "evidence"


@dataclass
class Sending:
    throttle_seconds: float = 3.0
    retry_base_seconds: float = 60.0
    max_attempts: int = 8


@dataclass
class WebConsole:
    """[web]: the clerks' web console (`mailbot web`). The session secret is generated once into
    the state directory unless `session_secret_file` names a file or a systemd credential."""

    listen: str = "127.0.0.1:8080"
    https: bool = False  # behind an HTTPS proxy: cookies get the Secure flag
    session_secret_file: str = ""


@dataclass
class Config:
    path: Path | None
    timezone: ZoneInfo
    state_dir: Path
    database_url: str
    mailboxes: list[MailboxConfig]
    schools: list[School]
    schedule: Schedule = field(default_factory=Schedule)
    limits: Limits = field(default_factory=Limits)
    replies: Replies = field(default_factory=Replies)
    sending: Sending = field(default_factory=Sending)
    security: Security = field(default_factory=Security)
    summary_recipients: list[str] = field(default_factory=list)
    operator_email: str | None = None
    alarm_after_minutes: float = 60.0
    ignored_retention_days: int = 30
    web: WebConsole = field(default_factory=WebConsole)
    first_poll_since: date | None = None  # the first poll imports (unanswered) mail since this day
    # The database's password ([general] database_password_env / database_password_file), never in
    # database_url itself; read when the engine is made (mailbot.db.engine.engine_for).
    database_password_env: str | None = None
    database_password_file: Path | None = None
    config_dir: Path | None = None

    def database_password(self) -> str:
        return read_secret(self.database_password_env, self.database_password_file, self.config_dir,
                           "general.database_password_env", "general.database_password_file {path}")

    @property
    def database_backend(self) -> str:
        """"sqlite" or "postgresql" (mailbot.config.load accepts no other URL)."""
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    @property
    def archive_dir(self) -> Path:
        return self.state_dir / "archive"

    def mailbox(self, name: str) -> MailboxConfig:
        for mb in self.mailboxes:
            if mb.name == name:
                return mb
        known = ", ".join(mb.name for mb in self.mailboxes)
        raise ConfigError(f"no [[mailbox]] named {name!r} (configured: {known})")

    def mailbox_for_level(self, level: str) -> MailboxConfig:
        for mb in self.mailboxes:
            if level in mb.levels:
                return mb
        return self.mailboxes[0]


def is_month(text: str) -> bool:
    """Whether `text` is a month written "YYYY-MM" (`rules.month.Month.parse`)."""
    return Month.parse_or_none(text) is not None
