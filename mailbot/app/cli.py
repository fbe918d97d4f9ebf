"""The command line (SPEC 8): the `mailbot` group, its global options and `main()`.

Exit status: 0 success, 2 bad usage or configuration, 1 anything else (app/options.py). With
--json, stdout carries only JSON; logs go to stderr. The commands live in the modules of
COMMAND_MODULES, each listing its top-level commands in `COMMANDS`; add a module there to add
commands.
"""

from __future__ import annotations

import logging
import sys

import click

from mailbot.app import (commands_campaign, commands_mail, commands_operator, commands_outbox, commands_reports,
                         commands_service)
from mailbot.app.options import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context
from mailbot.errors import ConfigError, MailbotError
from mailbot.web import cli as commands_web

COMMAND_MODULES = (
    commands_mail,  # ingest, poll, quarantine
    commands_reports,  # status, summary, export
    commands_outbox,  # outbox list|send|show|retry
    commands_operator,  # messages list|show, submissions list, senders list|forget
    commands_campaign,  # remind, excuse, void
    commands_service,  # db upgrade, check, run, demo
    commands_web,  # web [user add|list|passwd|remove]
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
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
