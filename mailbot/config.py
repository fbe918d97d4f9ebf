"""Load and validate the TOML configuration (SPEC 8).

Every problem raises ConfigError naming the key and the fix; the CLI turns it into exit status 2.
Secrets never live in the file: passwords come from an environment variable or a credentials file
(systemd `LoadCredential=` puts those under $CREDENTIALS_DIRECTORY).
"""

from __future__ import annotations

import csv
import io
import os
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbot.errors import ConfigError

LEVELS = ("primary", "middle")
SECURITY = ("ssl", "starttls", "plain")
DEFAULT_STAGES = {"upcoming": (20, "09:00"), "due": (24, "09:00"), "overdue": (25, "09:00")}


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
    timeout: float = 60.0  # seconds, on every socket operation
    config_dir: Path | None = None  # where a relative password_file is, unless systemd provides it

    def password(self) -> str:
        """Read the secret now (never at load time, never logged)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"environment variable {self.password_env} (password_env of {self.host}) is not set")
            return value
        if self.password_file:
            path = self.password_file
            if not path.is_absolute():
                # A bare name is first a systemd credential (LoadCredential=), else a file beside
                # the config.
                creds = os.environ.get("CREDENTIALS_DIRECTORY")
                if creds and (Path(creds) / path).is_file():
                    path = Path(creds) / path
                else:
                    path = (self.config_dir or Path.cwd()) / path
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"password_file {path} of {self.host} cannot be read: {exc.strerror}") from exc
        return ""


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


@dataclass
class Replies:
    max_per_sender_per_day: int = 10


@dataclass
class Sending:
    throttle_seconds: float = 3.0
    retry_base_seconds: float = 60.0
    max_attempts: int = 8


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
    summary_recipients: list[str] = field(default_factory=list)
    operator_email: str | None = None
    alarm_after_minutes: float = 60.0
    ignored_retention_days: int = 30

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


class _Table:
    """Typed access to one TOML table that names the offending key in every error."""

    def __init__(self, data: dict, where: str, base: Path):
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a table")
        self.data, self.where, self.base = data, where, base

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise ConfigError(f"{self._key(key)} is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"{self._key(key)} must be {names}, not {type(value).__name__} {value!r}")
        return value

    def strings(self, key: str, default: list | None = None) -> list[str]:
        value = self.get(key, list, default if default is not None else [])
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self._key(key)} must be a list of strings")
        return list(value)

    def choice(self, key: str, choices: tuple, default: str | None = None, required: bool = False) -> str:
        value = self.get(key, str, default, required)
        if value not in choices:
            raise ConfigError(f"{self._key(key)} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path(self, key: str, default: Path | None = None) -> Path | None:
        value = self.get(key, str)
        if value is None:
            return default
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base / p)

    def month(self, key: str) -> str | None:
        value = self.get(key, str)
        if value is not None and not is_month(value):
            raise ConfigError(f"{self._key(key)} must be YYYY-MM, not {value!r}")
        return value

    def sub(self, key: str) -> "_Table | None":
        if key not in self.data:
            return None
        return _Table(self.data[key], self._key(key), self.base)

    def check_known(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                raise ConfigError(f"{self._key(key)} is not a known key (known: {', '.join(sorted(known))})")


def is_month(text: str) -> bool:
    return len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit() and 1 <= int(text[5:]) <= 12


def _parse_time(text: str, key: str) -> time:
    try:
        hour, minute = text.split(":")
        return time(int(hour), int(minute))
    except ValueError as exc:
        raise ConfigError(f"{key} must be HH:MM, not {text!r}") from exc


def _server(t: _Table, default_port: int, is_imap: bool) -> ServerConfig:
    known = {"host", "port", "security", "username", "password_env", "password_file", "ca_file", "timeout"}
    if is_imap:
        known.add("folder")
    if "password" in t.data:
        raise ConfigError(
            f"{t.where}.password: passwords are never written in the config file; "
            "use password_env (an environment variable) or password_file (a credentials file)"
        )
    t.check_known(known)
    security = t.choice("security", SECURITY, "ssl")
    port = t.get("port", int, default_port if security == "ssl" else (143 if is_imap else 587))
    return ServerConfig(
        host=t.get("host", str, required=True),
        port=port,
        security=security,
        username=t.get("username", str, ""),
        password_env=t.get("password_env", str),
        password_file=Path(t.get("password_file", str)) if t.get("password_file", str) else None,
        config_dir=t.base,
        ca_file=t.path("ca_file"),
        folder=t.get("folder", str, "INBOX") if is_imap else "INBOX",
        timeout=t.get("timeout", float, 60.0),
    )


def _mailbox(t: _Table) -> MailboxConfig:
    t.check_known({"name", "address", "levels", "maildir", "outbox_dir", "imap", "smtp", "staff",
                   "move_processed_to", "daily_send_cap"})
    levels = t.strings("levels")
    if not levels or any(level not in LEVELS for level in levels):
        raise ConfigError(f"{t.where}.levels must list one or more of {', '.join(LEVELS)}, not {levels!r}")
    imap_t, smtp_t = t.sub("imap"), t.sub("smtp")
    mb = MailboxConfig(
        name=t.get("name", str, required=True),
        address=t.get("address", str, required=True).strip().lower(),
        levels=levels,
        maildir=t.path("maildir"),
        outbox_dir=t.path("outbox_dir"),
        imap=_server(imap_t, 993, True) if imap_t else None,
        smtp=_server(smtp_t, 465, False) if smtp_t else None,
        staff=t.strings("staff"),
        move_processed_to=t.get("move_processed_to", str),
        daily_send_cap=t.get("daily_send_cap", int, 200),
    )
    if mb.maildir is None and mb.imap is None:
        raise ConfigError(f"mailbox {mb.name!r} needs a transport: either maildir (+ outbox_dir) or [mailbox.imap]")
    if mb.smtp is None and mb.outbox_dir is None:
        raise ConfigError(f"mailbox {mb.name!r} needs a way to send: either outbox_dir or [mailbox.smtp]")
    return mb


def _school(t: _Table) -> School:
    t.check_known({"name", "level", "emails", "aliases", "id", "contact", "phone", "active_from", "active_until"})
    return School(
        name=t.get("name", str, required=True).strip(),
        level=t.choice("level", LEVELS, required=True),
        emails=[e.strip().lower() for e in t.strings("emails") if e.strip()],
        aliases=t.strings("aliases"),
        id=t.get("id", (str, int)),
        contact=t.get("contact", str),
        phone=t.get("phone", str),
        active_from=t.month("active_from"),
        active_until=t.month("active_until"),
    )


def decode_roster_bytes(raw: bytes) -> str:
    """CSV rosters come as staff save them from Excel or WPS: UTF-8 (with or without BOM) or GBK."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def load_roster_csv(path: Path) -> list[School]:
    """Columns: name, level, emails, aliases (emails and aliases separated by ';')."""
    try:
        text = decode_roster_bytes(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"general.roster_file {path} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"general.roster_file {path} is neither UTF-8 nor GBK text") from exc
    schools = []
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"name", "level"} <= {f.strip() for f in reader.fieldnames}:
        raise ConfigError(f"general.roster_file {path} needs a header line: name,level,emails,aliases")
    for line_no, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("name"):
            continue
        level = {"小学": "primary", "中学": "middle", "初中": "middle"}.get(row.get("level", ""), row.get("level", ""))
        if level not in LEVELS:
            raise ConfigError(f"general.roster_file {path} line {line_no}: level must be primary or middle, not {row.get('level')!r}")
        split = lambda s: [x.strip() for x in s.replace("；", ";").split(";") if x.strip()]  # noqa: E731
        schools.append(School(name=row["name"], level=level,
                              emails=[e.lower() for e in split(row.get("emails", ""))],
                              aliases=split(row.get("aliases", ""))))
    return schools


def _schedule(t: _Table | None) -> Schedule:
    if t is None:
        t = _Table({}, "schedule", Path("."))
    t.check_known({"deadline_day", "stages", "summary_day", "summary_time", "poll_interval_minutes",
                   "working_days_only", "reporting_months"})
    stages = []
    stage_t = t.sub("stages")
    raw_stages = dict(DEFAULT_STAGES)
    if stage_t is not None:
        raw_stages = {}
        for name, spec in stage_t.data.items():
            st = _Table(spec, f"schedule.stages.{name}", t.base)
            st.check_known({"day", "time"})
            raw_stages[name] = (st.get("day", int, required=True), st.get("time", str, "09:00"))
    for name, (day, at) in raw_stages.items():
        if not 1 <= day <= 31:
            raise ConfigError(f"schedule.stages.{name}.day must be a day of month 1-31, not {day}")
        stages.append(Stage(name, day, _parse_time(at, f"schedule.stages.{name}.time")))
    months = t.get("reporting_months", list, list(range(1, 13)))
    if not all(isinstance(m, int) and 1 <= m <= 12 for m in months):
        raise ConfigError("schedule.reporting_months must be a list of month numbers 1-12, e.g. [3, 4, 5]")
    deadline = t.get("deadline_day", int, 24)
    if not 1 <= deadline <= 28:
        raise ConfigError(f"schedule.deadline_day must be 1-28, not {deadline}")
    return Schedule(
        deadline_day=deadline,
        stages=stages,
        summary_day=t.get("summary_day", int, 25),
        summary_at=_parse_time(t.get("summary_time", str, "10:00"), "schedule.summary_time"),
        poll_interval_minutes=t.get("poll_interval_minutes", float, 5.0),
        working_days_only=t.get("working_days_only", bool, False),
        reporting_months=sorted(set(months)),
    )


def _dataclass_section(t: _Table | None, cls):
    obj = cls()
    if t is None:
        return obj
    t.check_known(set(obj.__dataclass_fields__))
    for key, f in obj.__dataclass_fields__.items():
        default = getattr(obj, key)
        setattr(obj, key, t.get(key, type(default), default))
    return obj


def load_config(path: str | os.PathLike | None) -> Config:
    """Read, validate and resolve a config file. Relative paths are relative to its folder."""
    if path is None:
        raise ConfigError("no configuration: pass --config FILE or set MAILBOT_CONFIG")
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    return config_from_dict(data, path.resolve().parent, path)


def config_from_dict(data: dict, base: Path, path: Path | None = None) -> Config:
    root = _Table(data, "", base)
    root.check_known({"general", "schedule", "mailbox", "school", "summary", "operator", "limits", "replies", "sending"})
    general = root.sub("general") or _Table({}, "general", base)
    general.check_known({"timezone", "state_dir", "database_url", "roster_file", "ignored_retention_days",
                         "alarm_after_minutes"})
    tz_name = general.get("timezone", str, "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"general.timezone {tz_name!r} is not a known time zone (e.g. Asia/Shanghai)") from exc
    state_dir = general.path("state_dir", base / "state")
    database_url = general.get("database_url", str) or f"sqlite:///{state_dir / 'mailbot.sqlite3'}"

    mailbox_list = root.get("mailbox", list, [])
    if not mailbox_list:
        raise ConfigError("at least one [[mailbox]] is required (name, address, levels and a transport)")
    mailboxes = [_mailbox(_Table(m, f"mailbox[{i}]", base)) for i, m in enumerate(mailbox_list)]
    names = [mb.name for mb in mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError(f"mailbox names must be unique, got {names}")

    schools = [_school(_Table(s, f"school[{i}]", base)) for i, s in enumerate(root.get("school", list, []))]
    roster_file = general.path("roster_file")
    if roster_file is not None:
        schools += load_roster_csv(roster_file)
    seen: set[str] = set()
    for school in schools:
        if school.name in seen:
            raise ConfigError(f"school {school.name!r} is listed twice in the roster")
        seen.add(school.name)

    summary = root.sub("summary") or _Table({}, "summary", base)
    summary.check_known({"recipients"})
    operator = root.sub("operator") or _Table({}, "operator", base)
    operator.check_known({"email"})
    return Config(
        path=path,
        timezone=tz,
        state_dir=state_dir,
        database_url=database_url,
        mailboxes=mailboxes,
        schools=schools,
        schedule=_schedule(root.sub("schedule")),
        limits=_dataclass_section(root.sub("limits"), Limits),
        replies=_dataclass_section(root.sub("replies"), Replies),
        sending=_dataclass_section(root.sub("sending"), Sending),
        summary_recipients=[r.strip().lower() for r in summary.strings("recipients")],
        operator_email=operator.get("email", str),
        alarm_after_minutes=general.get("alarm_after_minutes", float, 60.0),
        ignored_retention_days=general.get("ignored_retention_days", int, 30),
    )
