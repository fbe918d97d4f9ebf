"""Commands that run or set up the service: the schema, the server check, the daemon, the demo
(SPEC 8)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from mailbot.app.options import EXIT_USAGE, Context, pass_ctx
from mailbot.app.output import echo_json


@click.group()
def db():
    """The database: its schema, a copy into another database, the sums that check a copy.

    \b
    Example:
      mailbot --config config.toml db upgrade
    """


@db.command("upgrade")
@pass_ctx
def db_upgrade(c: Context):
    """Create the database or upgrade it to the current schema (Alembic).

    \b
    Example:
      mailbot --config config.toml db upgrade
    """
    from mailbot.db.engine import engine_for
    from mailbot.db.migrate import current_revision, head_revision, make_state_dir, schema_lock, upgrade
    make_state_dir(c.config)
    engine = engine_for(c.config)
    with schema_lock(c.config):  # not while a first start elsewhere is creating it
        upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)} (head {head_revision(engine)})", err=True)
    engine.dispose()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON list of the servers tried on stdout.")
@pass_ctx
def check(c: Context, as_json):
    """Validate the configuration and try every server: IMAP login, ID and the folder; SMTP login.

    Nothing is read, sent or changed. Exit status 0 when everything works, 1 when a server
    failed, 2 for a configuration error.

    \b
    Example:
      mailbot --config /etc/mailbot/config.toml check
    """
    from mailbot.app.check import check_config, describe, exit_status
    probes = check_config(c.config)
    if as_json:
        echo_json([p.as_json() for p in probes])
    else:
        for probe in probes:
            click.echo(describe(probe))
    sys.exit(exit_status(probes))


@click.command()
@pass_ctx
def run(c: Context):
    """Run the daemon: poll the mailboxes, send the outbox, the reminder stages and the monthly
    summary on schedule, until SIGTERM or Ctrl-C (exit 0). Meant for systemd (deploy/).

    It starts only on a configuration `mailbot check` finds no error in: every password and CA
    file resolves, the operator and the summary's recipients are set (else exit 2, before READY).

    \b
    Example:
      mailbot --config /etc/mailbot/config.toml run
    """
    from mailbot.app.daemon import Daemon, exit_leaving_jobs
    from mailbot.app.jobs import DaemonJobs
    from mailbot.app.preflight import preflight
    from mailbot.db.migrate import schema_current
    from mailbot.ingest.idle import start_watchers
    from mailbot.transports.deadline import abandon_for_stop
    problems = preflight(c.config)  # before READY: systemd then shows the unit failed, with the reason
    if problems:
        for problem in problems:
            click.echo(f"configuration error: {problem}", err=True)
        click.echo("mailbot run: not started (mailbot check says the same)", err=True)
        raise SystemExit(EXIT_USAGE)
    if not schema_current(c.config):
        _upgrade_apart(c)
    with DaemonJobs(c.config, c.sessions(), c.clock) as jobs:  # closed once the jobs in hand are done
        daemon = Daemon(c.config, jobs.by_name(), on_stop=abandon_for_stop,
                        watch=lambda wake, stop: start_watchers(c.config.mailboxes, wake, stop))
        status = daemon.run()
        if status != 0:  # a job outlived the stop budget: not closing what it still uses
            exit_leaving_jobs(status)
    raise SystemExit(status)


def _upgrade_apart(c: Context) -> None:
    """Create or upgrade the schema in a `mailbot db upgrade` child process: a process keeps what it
    imports, and the daemon runs for months; Alembic would stay in it (about 12 MB) for one
    migration at its start (issue 13)."""
    import subprocess

    from mailbot.errors import MailbotError
    done = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(c.config_path), "db", "upgrade"],
                          stdin=subprocess.DEVNULL, timeout=900)
    if done.returncode != 0:
        raise MailbotError(f"creating or upgrading the database failed (mailbot db upgrade exited {done.returncode})")


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="mailbot-demo", show_default=True,
              help="Folder for the demo's mailboxes, outboxes, database and summary (made anew).")
def demo(out):
    """A whole reporting month on embedded defaults, with a simulated clock: no mail server and no
    configuration needed. Schools' emails arrive, receipts and rejections go out, reminders reach
    the missing schools, late tables arrive, and the summary is produced.

    \b
    Example:
      mailbot demo --out /tmp/mailbot-demo
    """
    from mailbot.app.demo import run_demo
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger().setLevel(logging.WARNING)  # the demo narrates on stdout
    run_demo(Path(out).resolve())


from mailbot.app.commands_db import db_checksum, db_copy  # noqa: E402 - the db group's other commands

db.add_command(db_copy)
db.add_command(db_checksum)

COMMANDS = (db, check, run, demo)
