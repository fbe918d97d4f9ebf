"""The command line (SPEC 8): the `mailbot` group, its global options and `main()`.

Exit status: 0 success, 2 bad usage or configuration, 1 anything else (app/options.py). With
--json, stdout carries only JSON; logs go to stderr. The commands live in the modules of
COMMAND_MODULES, each listing its top-level commands in `COMMANDS`; add a module there (and its
commands' names) to add commands.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from mailbot.app.options import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context
from mailbot.errors import ConfigError, MailbotError

# Module -> the top-level commands it defines (its COMMANDS, in order; tests/test_cli.py keeps the
# two equal), each with the first sentence of its help, which `mailbot --help` lists without
# importing the command's module (tests/test_cli.py checks the listing is the one the commands'
# own help gives). A command imports its own module only: `mailbot status` never loads the poller,
# the outbox or the web console.
COMMAND_MODULES = {
    "mailbot.app.commands_mail": {
        "ingest": "Run local .eml files through the pipeline, exactly as if they had arrived by mail.",
        "poll": "One pass over every mailbox, then send the outbox.",
        "quarantine": "Messages from unregistered senders that carry a table: approve or reject them.",
    },
    "mailbot.app.commands_reports": {
        "status": "Who has reported for a month: on time, late, missing, excused.",
        "summary": "The monthly summary for leadership: KPIs, charts, per-school table and the 汇总表 .xlsx.",
        "export": "The ledger (台账): every month's rows for every school, who sent them, when, and whether late.",
    },
    "mailbot.app.commands_outbox": {  # outbox list|send|show|retry
        "outbox": "Mail mailbot has queued or sent.",
    },
    "mailbot.app.commands_operator": {
        "messages": "Every message mailbot saw (mail polled and files ingested), with its outcome and reason.",
        "submissions": "Accepted tables: the IDs `void` takes, and which one is in force for each school and month.",
        "senders": "Addresses the operator trusted: remembered on approval (`quarantine approve --remember`), or "
                   "exempted from sender authentication (`senders trust`).",
    },
    "mailbot.app.commands_campaign": {
        "remind": "Queue the reminders due now: to every school without an accepted table for the month, and after "
                  "the overdue stage the list of missing schools to each section's staff.",
        "excuse": "Excuse a school for a month: not reminded, not counted missing, shown as excused in the summary.",
        "void": "Withdraw a wrong submission; the school's previous one for the month, if any, is in force again.",
    },
    "mailbot.app.commands_service": {
        "db": "The database: its schema, a copy into another database, the sums that check a copy.",
        "check": "Validate the configuration and try every server: IMAP login, ID and the folder; SMTP login.",
        "run": "Run the daemon: poll the mailboxes, send the outbox, the reminder stages and the monthly summary on "
               "schedule, until SIGTERM or Ctrl-C (exit 0).",
        "demo": "A whole reporting month on embedded defaults, with a simulated clock: no mail server and no "
                "configuration needed.",
    },
    "mailbot.web.cli": {  # web [user add|list|passwd|remove]
        "web": "The clerks' web console: month overview, schools, quarantine, messages, outbox, downloads.",
    },
}


class LazyGroup(click.Group):
    """The root group: a command's module is imported when the command is looked up, and not for
    the list of commands `mailbot --help` prints."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(name for names in COMMAND_MODULES.values() for name in names)

    def get_command(self, ctx, name: str):
        if name not in self.commands:
            for module, names in COMMAND_MODULES.items():
                if name in names:
                    for command in importlib.import_module(module).COMMANDS:
                        self.add_command(command)
        return self.commands.get(name)

    def format_commands(self, ctx, formatter) -> None:
        """The list of commands, each with its first sentence cut as click cuts it."""
        first = {name: text for names in COMMAND_MODULES.values() for name, text in names.items()}
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, click.Command(name, help=first[name]).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="MAILBOT_CONFIG", metavar="FILE",
              help="Configuration file (default: $MAILBOT_CONFIG).")
@click.option("--now", hidden=True, help="Pretend the clock says this ISO-8601 time (tests, demo).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
@click.version_option(package_name="mailbot")
@click.pass_context
def cli(ctx, config_path, now, verbose):
    """mailbot collects the schools' monthly after-school service tables (课后服务汇总表) by email.

    \b
    Example:
      mailbot --config /etc/mailbot/config.toml status --month 2022-10
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    ctx.obj = Context(config_path, now)
    ctx.call_on_close(ctx.obj.close)


# Everything mailbot writes is private: the database, the raw mail (complaints included), the
# outbox copies. Set here, before anything is created, so a state_dir mailbot makes itself is 0700
# and its files 0600 however the shell or the unit was set up (the unit also says UMask=0077).
PRIVATE_UMASK = 0o077


def main() -> None:
    os.umask(PRIVATE_UMASK)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(EXIT_FAILED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except MailbotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_OK)
