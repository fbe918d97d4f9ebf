"""What every command shares: the context (config, clock, database), the exit statuses, the month
options and who the operator is. The command modules (commands_*.py) import from here, never from
each other or from cli.py."""

from __future__ import annotations

import os
from datetime import datetime

import click

# Exit statuses of every command (SPEC 8).
EXIT_OK = 0
EXIT_FAILED = 1  # anything else: a server, a message or an account failed
EXIT_USAGE = 2  # bad usage or configuration


class Context:
    """What a command needs, built lazily so `--help` and bad usage never touch the database."""

    def __init__(self, config_path: str | None, now: str | None):
        self.config_path = config_path
        self._now = datetime.fromisoformat(now) if now else None
        self._config = None
        self._engine = None

    def clock(self) -> datetime:
        """Now, in the configured zone (stored as UTC all the same): what it dates, such as an
        email's `Date:`, then carries the bureau's offset."""
        return self._now or datetime.now(self.config.timezone)

    @property
    def config(self):
        if self._config is None:
            from mailbot.app.logtime import use_zone
            from mailbot.config import load_config
            self._config = load_config(self.config_path)
            use_zone(self._config.timezone)  # log stamps in the bureau's zone, whatever the machine's
        return self._config

    @property
    def engine(self):
        if self._engine is None:
            # The first-use path (README, "Command line"): the state directory and the schema are
            # created, or an older schema upgraded, here and by `mailbot db upgrade` only.
            from mailbot.db.migrate import prepare_database
            self._engine = prepare_database(self.config)
        return self._engine

    def sessions(self):
        from mailbot.db.engine import make_sessionmaker
        return make_sessionmaker(self.engine)

    def close(self):
        if self._engine is not None:
            self._engine.dispose()


pass_ctx = click.make_pass_decorator(Context)


def check_month(_ctx, _param, value):
    """A click callback: a month like 2022-10, or a usage error naming the option."""
    from mailbot.config import is_month
    if value is not None and not is_month(value):
        raise click.BadParameter(f"{value!r} is not a month like 2022-10")
    return value


def month_option(required: bool = False):
    return click.option("--month", callback=check_month, required=required, metavar="YYYY-MM",
                        help="The reporting month (default: the current month).")


def operator() -> str:
    """Who is at the keyboard, for the record of excuses, voids and quarantine decisions."""
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "operator"


def cli_actor() -> str:
    """The audit trail's name for the person at the keyboard: `cli:LOGIN` (the web console's are `web:NAME`)."""
    return f"cli:{operator()}"
