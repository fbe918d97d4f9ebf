"""Commands that bring mail in: ingest, poll and the quarantine (SPEC 8)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from mailbot.app.options import EXIT_FAILED, EXIT_OK, Context, cli_actor, month_option, operator, pass_ctx
from mailbot.app.output import echo_json, print_result, sending_line
from mailbot.timeutil import iso_local, people_time


@click.command()
@click.option("--mailbox", help="The [[mailbox]] the files arrived in (default: the first one).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@click.option("--school", help="With a bare table file: the roster school it is for (entered by the operator).")
@month_option()
@click.option("--received", metavar="'YYYY-MM-DD HH:MM'",
              help="With --school: when the school handed the table in (the configured zone); lateness "
                   "is judged by it. Default: now.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_ctx
def ingest(c: Context, mailbox, as_json, school, month, received, files):
    """Run local .eml files through the pipeline, exactly as if they had arrived by mail.

    A bare table file (.xlsx, .xls, .docx, .csv ...) is accepted with --school and --month, for a
    table a school sent some other way; it is recorded as entered by the operator, received when
    --received says (on time when that is by the deadline), else now.

    \b
    Examples:
      mailbot ingest --mailbox zjg --json message.eml
      mailbot ingest --school 安溪县北门小学 --month 2022-10 --received "2022-10-23 16:30" table.xlsx
    """
    from mailbot.ingest.isolation import start_forkserver
    start_forkserver()  # its start-up overlaps the pipeline's imports
    from mailbot.ingest.files import ingest_files
    from mailbot.rules.outcome import Outcome
    from mailbot.timeutil import parse_local_minute
    config = c.config
    name = mailbox or config.mailboxes[0].name
    config.mailbox(name)
    if (school is None) != (month is None):
        raise click.UsageError("--school and --month go together (for a bare table file)")
    received_at = None
    if received is not None:
        if school is None:
            raise click.UsageError("--received goes with --school and --month (a bare table file)")
        try:
            received_at = parse_local_minute(received, config.timezone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--received") from exc
        if received_at > c.clock():
            raise click.BadParameter(f"{received} is in the future", param_hint="--received")
    failed = False
    for result in ingest_files(config, c.sessions(), c.clock, name, [Path(f) for f in files], files,
                               school=school, month=month, received_at=received_at):
        failed |= result.outcome == Outcome.FAILED
        if as_json:
            echo_json(result.as_json())
        else:
            print_result(result.as_json())
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _since_day(_ctx, _param, value):
    from mailbot.ingest.baseline import parse_since
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message on stdout (as ingest --json).")
@click.option("--no-send", is_flag=True, help="Only read the mailboxes; leave the outbox for later.")
@click.option("--since", "since", callback=_since_day, metavar="YYYY-MM-DD",
              help="Also import the mail since that day that the first poll left as baseline "
                   "(recorded and counted, answered by nobody).")
@click.option("--reply", is_flag=True, help="With --since: answer the imported mail as if it had just arrived.")
@pass_ctx
def poll(c: Context, as_json, no_send, since, reply):
    """One pass over every mailbox, then send the outbox.

    New mail is found by UID (IMAP) or by file (Maildir), read without marking it read, and run
    through the same pipeline as `ingest`. The first poll of a mailbox records the mail already
    there as `baseline`, without reading or answering it; --since imports it on purpose. Mail that
    waited more than [replies] reply_max_age_days is recorded without an automatic reply (the
    operator is told). Exit status 1 when a mailbox could not be read, a message failed, or an
    account could not send.

    \b
    Examples:
      mailbot poll
      mailbot poll --json | jq .outcome
      mailbot poll --since 2022-09-01
    """
    from mailbot.ingest.poll import History, poll_and_send
    if reply and since is None:
        raise click.UsageError("--reply goes with --since (mail that arrives is answered anyway)")
    history = History(since, reply) if since is not None else None
    show = echo_json if as_json else print_result
    report = poll_and_send(c.config, c.sessions(), c.clock, lambda result: show(result.as_json()),
                           send=not no_send, history=history)
    for mb in report.mailboxes:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(mb.outcomes.items())) or "nothing new"
        if mb.baseline:
            counts += f"; first contact: {mb.baseline} message(s) already there recorded as baseline " \
                      "(not read, not answered; poll --since imports them)"
        status_text = "ok" if mb.ok else f"FAILED: {mb.error}"
        click.echo(f"{mb.mailbox}: {status_text}; {counts}", err=True)
    if report.skipped_busy:
        click.echo("another poll is running: mailboxes not read this time", err=True)
    if report.sending is not None:
        click.echo(sending_line(report.sending), err=True)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILED)


@click.group()
def quarantine():
    """Messages from unregistered senders that carry a table: approve or reject them.

    \b
    Example:
      mailbot quarantine list
      mailbot quarantine approve 3 --remember
    """


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def quarantine_list(c: Context, as_json):
    """List the messages waiting for a decision.

    \b
    Example:
      mailbot quarantine list
    """
    from mailbot.db import store
    with c.sessions()() as session:
        tz = c.config.timezone
        items = [{"id": q.id, "sender": m.sender, "subject": m.subject, "received_at": iso_local(m.received_at, tz),
                  "reason": q.reason, "candidate_schools": q.candidate_schools}
                 for q, m in store.pending_quarantine(session)]
    if as_json:
        echo_json(items)
        return
    if not items:
        click.echo("nothing in quarantine")
    for i in items:
        shown = people_time(datetime.fromisoformat(i["received_at"]), tz)
        click.echo(f"{i['id']:>4}  {shown}  {i['sender']}  {i['subject']}\n"
                   f"      {i['reason']}; schools in the table: {', '.join(i['candidate_schools']) or '-'}")


@quarantine.command("approve")
@click.argument("quarantine_id", type=int)
@click.option("--remember", is_flag=True, help="Also register the sender's address for the school(s).")
@click.option("--school", "schools", multiple=True, help="The school the sender reports for (default: the schools named in the table).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def quarantine_approve(c: Context, quarantine_id, remember, schools, as_json):
    """Process a quarantined message as if the school had sent it (receipt included).

    \b
    Example:
      mailbot quarantine approve 3 --remember
    """
    from mailbot.ingest.quarantine import approve
    result = approve(c.config, c.sessions(), c.clock, quarantine_id, list(schools), remember, operator(),
                     actor=cli_actor())
    if as_json:
        echo_json(result.as_json())
    else:
        print_result(result.as_json())


@quarantine.command("reject")
@click.argument("quarantine_id", type=int)
@click.option("--reason", default="", help="Why, for the record.")
@pass_ctx
def quarantine_reject(c: Context, quarantine_id, reason):
    """Reject a quarantined message: nothing is recorded, nobody is answered.

    \b
    Example:
      mailbot quarantine reject 3 --reason "not a school address"
    """
    from mailbot.ingest.quarantine import reject
    reject(c.sessions(), c.clock, quarantine_id, reason, operator(), actor=cli_actor())
    click.echo(f"quarantine {quarantine_id} rejected")


COMMANDS = (ingest, poll, quarantine)
