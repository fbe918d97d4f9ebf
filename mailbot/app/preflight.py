"""What a configuration must have before a service runs on it, beyond what loading it checks.

`load_config` checks the file's shape. This checks what only shows when the service runs: every
secret resolves (the environment variable is set, the credentials file is readable), every CA file
exists, the TLS mode fits the port, and there is someone to tell (the operator, the summary's
recipients) and something to collect (schools). `mailbot check` reports these as configuration
errors (exit 2) and `mailbot run` refuses to start on them, before it tells systemd READY, so a
broken service fails visibly at once instead of logging an ERROR every poll.

Each problem names the key and the fix. Secrets are read to see that they resolve and are never
kept or shown.
"""

from __future__ import annotations

from mailbot.config import Config, MailboxConfig, ServerConfig
from mailbot.errors import ConfigError

IMPLICIT_TLS_PORTS = {993: "IMAP", 465: "SMTP"}
PLAIN_START_PORTS = {143: "IMAP", 587: "SMTP", 25: "SMTP"}


def server_problems(mailbox: MailboxConfig, role: str, server: ServerConfig) -> list[str]:
    where = f'mailbox "{mailbox.name}" {role}'
    problems = []
    if not server.password_env and not server.password_file:
        problems.append(f"{where}: no password: set password_file (a credentials file; under systemd the name "
                        f"given to LoadCredential=, e.g. \"{mailbox.name}.pass\") or password_env (an environment "
                        "variable) to the 163 authorization code (授权码)")
    else:
        try:
            if not server.password():
                problems.append(f"{where}: the password ({_secret_source(server)}) is empty")
        except ConfigError as exc:
            problems.append(f"{where}: {exc}")
    if server.ca_file is not None and not server.ca_file.is_file():
        problems.append(f"{where}: ca_file {server.ca_file} does not exist (a CA bundle in PEM form; remove "
                        "ca_file to trust the system's CAs)")
    if server.security == "starttls" and server.port in IMPLICIT_TLS_PORTS:
        problems.append(f'{where}: port {server.port} speaks TLS from the first byte: use security = "ssl" with '
                        f'port {server.port}, or security = "starttls" with port '
                        f"{143 if role == 'imap' else 587}")
    if server.security == "ssl" and server.port in PLAIN_START_PORTS:
        problems.append(f'{where}: port {server.port} starts in plain text: use security = "starttls" with port '
                        f'{server.port}, or security = "ssl" with port {993 if role == "imap" else 465}')
    return problems


def _secret_source(server: ServerConfig) -> str:
    return f"environment variable {server.password_env}" if server.password_env else f"password_file {server.password_file}"


def preflight(config: Config) -> list[str]:
    """Every problem that would make the service run broken; [] when it may start."""
    problems: list[str] = []
    for mailbox in config.mailboxes:
        for role in ("imap", "smtp"):
            server = getattr(mailbox, role)
            if server is not None:
                problems += server_problems(mailbox, role, server)
    return problems + database_problems(config) + config_problems(config)


def database_problems(config: Config) -> list[str]:
    """PostgreSQL's password, when one is named, must resolve (none named: the server trusts the
    Unix user, peer authentication over its socket, or libpq's own ~/.pgpass)."""
    if config.database_backend != "postgresql" or not (config.database_password_env or config.database_password_file):
        return []
    try:
        if not config.database_password():
            return ["general.database_url: the database password is empty"]
    except ConfigError as exc:
        return [str(exc)]
    return []


def config_problems(config: Config) -> list[str]:
    """The problems of the configuration as a whole (no server's)."""
    problems: list[str] = []
    if not config.operator_email:
        problems.append("operator.email is not set: quarantine notices, failures and alarms would go to nobody; "
                        'add a table [operator] with email = "..."')
    if not config.summary_recipients:
        problems.append("summary.recipients is empty: the monthly summary would go to nobody; "
                        'add a table [summary] with recipients = ["..."]')
    if not config.schools:
        problems.append("no school is configured: add [[school]] tables (name, level, emails) or "
                        "general.roster_file")
    return problems
