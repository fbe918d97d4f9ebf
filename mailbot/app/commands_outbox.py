"""The outbox: what mailbot has queued or sent, and sending what is due (SPEC 8)."""

from __future__ import annotations

import sys

import click

from mailbot.app.options import EXIT_FAILED, EXIT_OK, Context, pass_ctx
from mailbot.app.output import echo_json, sending_line


@click.group()
def outbox():
    """Mail mailbot has queued or sent.

    \b
    Example:
      mailbot outbox list
    """


@outbox.command("list")
@click.option("--status", "status_filter", type=click.Choice(["queued", "sending", "sent", "failed"]))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def outbox_list(c: Context, status_filter, as_json):
    """List queued and sent mail, newest first.

    \b
    Example:
      mailbot outbox list --status failed
    """
    from mailbot.db.queries import list_outbox
    with c.sessions()() as session:
        items = list_outbox(session, status_filter)
    if as_json:
        echo_json(items)
        return
    for i in items:
        click.echo(f"{i['id']:>5}  {i['status']:<7} {i['kind']:<20} {i['mailbox']:<10} {', '.join(i['to'])}  "
                   f"{i['subject']}" + (f"  [{i['last_error']}]" if i["last_error"] else ""))


@outbox.command("send")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most this many messages.")
@pass_ctx
def outbox_send(c: Context, limit):
    """Send the queued mail that is due: throttled, each through its own mailbox's account.

    Temporary failures wait and are retried later; permanent ones are recorded and the operator
    is told. Exit status 1 when an account could not send at all.

    \b
    Example:
      mailbot outbox send
    """
    from mailbot.outbound.sending import send_outbox
    report = send_outbox(c.config, c.sessions(), c.clock, limit=limit)
    click.echo(sending_line(report), err=True)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILED)


COMMANDS = (outbox,)
