"""`mailbot check`: is the configuration usable? Logs in to every server and says what it found.

For each mailbox: IMAP (LOGIN, ID, SELECT/EXAMINE of the folder, capabilities, UIDVALIDITY and
message count) or the Maildir; then SMTP (connect, TLS, AUTH; nothing is sent) or the outbox
directory. Exit status (SPEC 8): 0 all good, 1 a server failed, 2 a configuration error (a
missing password variable or file included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from mailbot.app.preflight import config_problems, database_problems, server_problems
from mailbot.config import Config, MailboxConfig
from mailbot.errors import ConfigError, MailbotError

# Capabilities worth naming: 163.com's Coremail advertises none of IDLE, MOVE, CONDSTORE.
NOTABLE_CAPABILITIES = ("IDLE", "MOVE", "UIDPLUS", "CONDSTORE", "ID")


@dataclass
class Probe:
    """One server (or directory) tried."""

    mailbox: str
    role: str  # "imap", "maildir", "smtp", "outbox_dir"
    target: str  # host:port or a path
    ok: bool = False
    config_error: bool = False
    details: dict = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict:
        return {"mailbox": self.mailbox, "role": self.role, "target": self.target, "ok": self.ok,
                "config_error": self.config_error, "details": self.details, "error": self.error}


def exit_status(probes: list[Probe]) -> int:
    if any(p.config_error for p in probes):
        return 2
    return 0 if all(p.ok for p in probes) else 1


def _attempt(probe: Probe, action: Callable[[], dict]) -> Probe:
    try:
        probe.details = action()
        probe.ok = True
    except ConfigError as exc:
        probe.config_error, probe.error = True, str(exc)
    except MailbotError as exc:
        probe.error = str(exc)
    except OSError as exc:  # a directory that cannot be read or written
        probe.error = f"{type(exc).__name__}: {exc}"
    return probe


def check_imap(mailbox: MailboxConfig) -> dict:
    from mailbot.transports.imap import ImapInbox

    with ImapInbox(mailbox).session() as imap:
        return {"folder": imap.server.folder, "uidvalidity": imap.uidvalidity, "messages": imap.exists,
                "capabilities": sorted(imap.capabilities),
                "missing": [c for c in NOTABLE_CAPABILITIES if c not in imap.capabilities],
                "read_only": imap.readonly}


def check_maildir(mailbox: MailboxConfig) -> dict:
    from mailbot.transports.maildir import MaildirInbox

    return {"messages": len(MaildirInbox(mailbox.maildir).list_keys())}


def check_smtp(mailbox: MailboxConfig) -> dict:
    from mailbot.transports.smtp import SmtpSender

    sender = SmtpSender(mailbox.smtp)
    try:
        # Connecting logs in (TLS, EHLO, AUTH) without sending anything. SmtpSender has no public
        # "log in only" call; _connection() is the lazy connect its send() uses.
        smtp = sender._connection()
        features = sorted(name.upper() for name in getattr(smtp, "esmtp_features", {}))
    finally:
        sender.close()
    return {"security": mailbox.smtp.security, "extensions": features}


def check_outbox_dir(mailbox: MailboxConfig) -> dict:
    path = mailbox.outbox_dir
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable")
    return {"writable": True}


def _server_probe(mb: MailboxConfig, role: str, action: Callable[[], dict]) -> Probe:
    """Try one server, unless its settings are wrong already (a missing secret or CA file, TLS
    that does not fit the port): that is a configuration error, said without trying."""
    server = getattr(mb, role)
    probe = Probe(mb.name, role, f"{server.host}:{server.port}")
    problems = server_problems(mb, role, server)
    if problems:
        probe.config_error, probe.error = True, "; ".join(problems)
        return probe
    return _attempt(probe, action)


def _database_probe(config: Config) -> Probe:
    """PostgreSQL: the password resolves, the server answers, and which schema revision it holds."""
    probe = Probe("database", "database", config.database_url)
    problems = database_problems(config)
    if problems:
        probe.config_error, probe.error = True, "; ".join(problems)
        return probe

    def connect() -> dict:
        from sqlalchemy.exc import SQLAlchemyError

        from mailbot.db.engine import engine_for
        from mailbot.db.migrate import stored_revision
        engine = engine_for(config)
        try:
            return {"revision": stored_revision(engine)}
        except SQLAlchemyError as exc:
            raise MailbotError(f"cannot use the database: {getattr(exc, 'orig', None) or exc}") from exc
        finally:
            engine.dispose()
    return _attempt(probe, connect)


def check_config(config: Config) -> list[Probe]:
    """Try every mailbox's servers; never raises for a server's failure. The configuration's own
    problems (mailbot.app.preflight) come first, as probes of role "config"."""
    probes = [Probe("config", "config", str(config.path or ""), config_error=True, error=problem)
              for problem in config_problems(config)]
    if config.database_backend == "postgresql":
        probes.append(_database_probe(config))
    for mb in config.mailboxes:
        if mb.imap is not None:
            probes.append(_server_probe(mb, "imap", lambda: check_imap(mb)))
        else:
            probes.append(_attempt(Probe(mb.name, "maildir", str(mb.maildir)), lambda: check_maildir(mb)))
        if mb.smtp is not None:
            probes.append(_server_probe(mb, "smtp", lambda: check_smtp(mb)))
        else:
            probes.append(_attempt(Probe(mb.name, "outbox_dir", str(mb.outbox_dir)), lambda: check_outbox_dir(mb)))
    return probes


def describe(probe: Probe) -> str:
    """One line for a person."""
    head = f"{'ok  ' if probe.ok else 'FAIL'} {probe.mailbox:<12} {probe.role:<10} {probe.target}"
    if not probe.ok:
        return f"{head}\n       {'configuration: ' if probe.config_error else ''}{probe.error}"
    d = probe.details
    if probe.role == "imap":
        missing = f"; not offered: {', '.join(d['missing'])}" if d["missing"] else ""
        return (f"{head}  {d['folder']}: {d['messages']} messages, UIDVALIDITY {d['uidvalidity']}\n"
                f"       capabilities: {' '.join(d['capabilities'])}{missing}")
    if probe.role == "smtp":
        return f"{head}  login ok ({d['security']}); extensions: {' '.join(d['extensions'])}"
    if probe.role == "maildir":
        return f"{head}  {d['messages']} messages"
    if probe.role == "database":
        return f"{head}  schema revision {d['revision'] or 'none yet (made at the first start)'}"
    return f"{head}  writable"
