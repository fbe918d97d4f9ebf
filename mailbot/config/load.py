"""Load and validate the TOML configuration (SPEC 8).

Every problem raises ConfigError naming the key and the fix; the CLI turns it into exit status 2.
Secrets never live in the file: passwords come from an environment variable or a credentials file
(systemd `LoadCredential=` puts those under $CREDENTIALS_DIRECTORY).
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbot.config.reader import TomlTable, parse_time
from mailbot.config.roster import load_roster_csv
from mailbot.config.schema import (DEFAULT_STAGES, LEVELS, SECURITY, SENDER_AUTH, Config, Limits, MailboxConfig,
                                   Replies, Schedule, School, Security, Sending, ServerConfig, Stage, WebConsole)
from mailbot.errors import ConfigError


def _server(t: TomlTable, default_port: int, is_imap: bool) -> ServerConfig:
    known = {"host", "port", "security", "username", "password_env", "password_file", "ca_file", "timeout",
             "deadline"}
    if is_imap:
        known |= {"folder", "poll_deadline"}
    if "password" in t.data:
        raise ConfigError(
            f"{t.where}.password: passwords are never written in the config file; "
            "use password_env (an environment variable) or password_file (a credentials file)"
        )
    t.check_known(known)
    security = t.choice("security", SECURITY, "ssl")
    timeout, deadline = t.get("timeout", float, 60.0), t.get("deadline", float, 120.0)
    poll_deadline = t.get("poll_deadline", float, 900.0) if is_imap else 900.0
    if not (timeout > 0 and 0 < deadline <= poll_deadline):
        raise ConfigError(f"{t.where}: timeout and deadline must be above 0 seconds and the deadline of one "
                          f"operation ({deadline:g} s) at most the poll_deadline ({poll_deadline:g} s)")
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
        timeout=timeout,
        deadline=deadline,
        poll_deadline=poll_deadline,
    )


def _mailbox(t: TomlTable) -> MailboxConfig:
    t.check_known({"name", "address", "levels", "maildir", "outbox_dir", "imap", "smtp", "staff",
                   "move_processed_to", "daily_send_cap", "sender_auth"})
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
        sender_auth=t.choice("sender_auth", SENDER_AUTH) if "sender_auth" in t.data else None,
    )
    if mb.maildir is None and mb.imap is None:
        raise ConfigError(f"mailbox {mb.name!r} needs a transport: either maildir (+ outbox_dir) or [mailbox.imap]")
    if mb.smtp is None and mb.outbox_dir is None:
        raise ConfigError(f"mailbox {mb.name!r} needs a way to send: either outbox_dir or [mailbox.smtp]")
    return mb


def _school(t: TomlTable) -> School:
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


def _schedule(t: TomlTable | None) -> Schedule:
    if t is None:
        t = TomlTable({}, "schedule", Path("."))
    t.check_known({"deadline_day", "stages", "summary_day", "summary_time", "poll_interval_minutes",
                   "working_days_only", "reporting_months"})
    stages = []
    stage_t = t.sub("stages")
    raw_stages = dict(DEFAULT_STAGES)
    if stage_t is not None:
        raw_stages = {}
        for name, spec in stage_t.data.items():
            st = TomlTable(spec, f"schedule.stages.{name}", t.base)
            st.check_known({"day", "time"})
            raw_stages[name] = (st.get("day", int, required=True), st.get("time", str, "09:00"))
    for name, (day, at) in raw_stages.items():
        if not 1 <= day <= 31:
            raise ConfigError(f"schedule.stages.{name}.day must be a day of month 1-31, not {day}")
        stages.append(Stage(name, day, parse_time(at, f"schedule.stages.{name}.time")))
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
        summary_at=parse_time(t.get("summary_time", str, "10:00"), "schedule.summary_time"),
        poll_interval_minutes=t.get("poll_interval_minutes", float, 5.0),
        working_days_only=t.get("working_days_only", bool, False),
        reporting_months=sorted(set(months)),
    )


def _security(t: TomlTable | None) -> Security:
    if t is None:
        return Security()
    t.check_known({"sender_auth", "authserv_ids", "dns_timeout_seconds"})
    timeout = t.get("dns_timeout_seconds", float, 5.0)
    if not 0 < timeout <= 60:
        raise ConfigError(f"security.dns_timeout_seconds must be between 0 and 60 seconds, not {timeout}")
    return Security(
        sender_auth=t.choice("sender_auth", SENDER_AUTH) if "sender_auth" in t.data else None,
        authserv_ids=[i.strip().lower() for i in t.strings("authserv_ids") if i.strip()],
        dns_timeout_seconds=timeout,
    )


def _dataclass_section(t: TomlTable | None, cls):
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
    root = TomlTable(data, "", base)
    root.check_known({"general", "schedule", "mailbox", "school", "summary", "operator", "limits", "replies", "sending",
                      "web", "security"})
    general = root.sub("general") or TomlTable({}, "general", base)
    general.check_known({"timezone", "state_dir", "database_url", "database_password_env", "database_password_file",
                         "roster_file", "ignored_retention_days", "alarm_after_minutes", "first_poll_since"})
    tz_name = general.get("timezone", str, "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"general.timezone {tz_name!r} is not a known time zone (e.g. Asia/Shanghai)") from exc
    state_dir = general.path("state_dir", base / "state")
    database_url = check_database_url(general.get("database_url", str), state_dir)

    mailbox_list = root.get("mailbox", list, [])
    if not mailbox_list:
        raise ConfigError("at least one [[mailbox]] is required (name, address, levels and a transport)")
    mailboxes = [_mailbox(TomlTable(m, _named("mailbox", i, m), base)) for i, m in enumerate(mailbox_list)]
    names = [mb.name for mb in mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError(f"mailbox names must be unique, got {names}")

    schools = [_school(TomlTable(s, _named("school", i, s), base)) for i, s in enumerate(root.get("school", list, []))]
    roster_file = general.path("roster_file")
    if roster_file is not None:
        schools += load_roster_csv(roster_file)
    seen: set[str] = set()
    for school in schools:
        if school.name in seen:
            raise ConfigError(f"school {school.name!r} is listed twice in the roster")
        seen.add(school.name)

    summary = root.sub("summary") or TomlTable({}, "summary", base)
    summary.check_known({"recipients"})
    operator = root.sub("operator") or TomlTable({}, "operator", base)
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
        security=_security(root.sub("security")),
        summary_recipients=[r.strip().lower() for r in summary.strings("recipients")],
        operator_email=operator.get("email", str),
        alarm_after_minutes=general.get("alarm_after_minutes", float, 60.0),
        ignored_retention_days=general.get("ignored_retention_days", int, 30),
        web=_dataclass_section(root.sub("web"), WebConsole),
        first_poll_since=_day(general, "first_poll_since"),
        database_password_env=general.get("database_password_env", str),
        database_password_file=Path(general.get("database_password_file", str))
        if general.get("database_password_file", str) else None,
        config_dir=base,
    )


def check_database_url(url: str | None, state_dir: Path, key: str = "general.database_url") -> str:
    """SQLite (the default, in state_dir) or PostgreSQL through psycopg 3; the password is never
    part of the URL (it comes from database_password_env or database_password_file)."""
    if not url:
        return f"sqlite:///{state_dir / 'mailbot.sqlite3'}"
    url = url.strip()
    if url.startswith("sqlite:///"):
        return url
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
        raise ConfigError(f"{key}: mailbot talks to PostgreSQL through psycopg 3; "
                          "write it as postgresql+psycopg://USER@HOST:PORT/DATABASE")
    if not url.startswith("postgresql+psycopg://"):
        raise ConfigError(f"{key} must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE, "
                          f"not {url.split('://')[0]}://...")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"{key} is not a valid URL: {exc}") from exc
    if parsed.password is not None:
        raise ConfigError(f"{key}: passwords are never written in the config file or on the command line; remove "
                          "it from the URL and use database_password_env (an environment variable) or "
                          "database_password_file (a credentials file)")
    if not parsed.database:
        raise ConfigError(f"{key} names no database: postgresql+psycopg://USER@HOST:PORT/DATABASE")
    return url


def _named(kind: str, index: int, table) -> str:
    """How errors name the index-th [[kind]] table: by its name when it has one (`mailbox "zjg"`),
    else by its place (`mailbox[1]`)."""
    name = table.get("name") if isinstance(table, dict) else None
    return f'{kind} "{name}"' if isinstance(name, str) and name.strip() else f"{kind}[{index}]"


def _day(t: TomlTable, key: str) -> date | None:
    value = t.get(key, (str, date))
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{t.where}.{key} must be a date like 2022-09-01, not {value!r}") from exc
