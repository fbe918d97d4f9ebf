"""The outbox: what mailbot has queued or sent, sending what is due, one email as it was sent, and
retrying a failed one (SPEC 8)."""

from __future__ import annotations

import email
import email.policy
import sys
from datetime import datetime

import click

from mailbot.app.options import EXIT_FAILED, EXIT_OK, Context, cli_actor, pass_ctx
from mailbot.app.output import echo_json, echo_people_json, sending_line
from mailbot.db.states import OutboxStatus
from mailbot.timeutil import people_time

json_option = click.option("--json", "as_json", is_flag=True, help="JSON on stdout (times ISO-8601 with offset).")


@click.group()
def outbox():
    """Mail mailbot has queued or sent.

    \b
    Example:
      mailbot outbox list
    """


@outbox.command("list")
@click.option("--status", "status_filter", type=click.Choice([status.value for status in OutboxStatus]))
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
    tz = c.config.timezone
    for item in items:  # stored as UTC; shown in the configured zone with its offset (SPEC 8)
        for key in ("created_at", "sent_at"):
            if item[key]:
                item[key] = datetime.fromisoformat(item[key]).astimezone(tz).isoformat()
    if as_json:
        echo_json(items)
        return
    for i in items:
        click.echo(f"{i['id']:>5}  {i['status']:<7} {i['kind']:<20} {i['mailbox']:<10} "
                   f"{people_time(datetime.fromisoformat(i['created_at']), tz)}  {', '.join(i['to'])}  "
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


# -- outbox show / retry ----------------------------------------------------------------------------
def rendered_email(raw: bytes) -> dict:
    """An email as a person reads it: decoded headers, the plain text, the attachments' names."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    body = msg.get_body(("plain", "html"))
    text = body.get_content() if body is not None else ""
    headers = {name: str(msg[name]) for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID",
                                                 "In-Reply-To", "Auto-Submitted") if msg[name] is not None}
    return {"headers": headers, "text": text,
            "attachments": [part.get_filename() or "(unnamed)" for part in msg.iter_attachments()]}


@outbox.command("show")
@click.argument("outbox_id", type=int)
@click.option("--raw", "show_raw", is_flag=True, help="Print the exact bytes as sent (MIME) instead.")
@json_option
@pass_ctx
def outbox_show(c: Context, outbox_id, show_raw, as_json):
    """One email mailbot queued or sent, rendered as the recipient reads it.

    \b
    Example:
      mailbot outbox show 12
      mailbot outbox show 12 --raw > reply.eml
    """
    from mailbot.db.views import outbox_detail
    tz = c.config.timezone
    with c.sessions()() as session:
        detail = outbox_detail(session, outbox_id)
    if detail is None:
        raise click.BadParameter(f"no outbox email with id {outbox_id} (see `mailbot outbox list`)",
                                 param_hint="OUTBOX_ID")
    if show_raw:
        click.echo(detail["raw"].decode("ascii", "replace"), nl=False)
        return
    shown = rendered_email(detail["raw"])
    if as_json:
        echo_people_json({**detail, **shown}, tz)
        return
    click.echo(f"outbox {detail['id']}  {detail['kind']}  {detail['status']}  attempts {detail['attempts']}"
               + (f"  sent {people_time(detail['sent_at'], tz)}" if detail["sent_at"] else "")
               + (f"\n  last answer: {detail['last_error']}" if detail["last_error"] else ""))
    for retry in detail["retries"]:
        click.echo(f"  retried as outbox {retry['id']} ({retry['status']}) to {', '.join(retry['to'])}")
    for name, value in shown["headers"].items():
        click.echo(f"{name}: {value}")
    click.echo("")
    click.echo(shown["text"].rstrip("\n"))
    for name in shown["attachments"]:
        click.echo(f"[attachment] {name}")


@outbox.command("retry")
@click.argument("outbox_id", type=int)
@click.option("--to", "to", multiple=True, metavar="ADDRESS", help="Send to this corrected address instead.")
@json_option
@pass_ctx
def outbox_retry(c: Context, outbox_id, to, as_json):
    """Queue a failed email again, optionally to a corrected address. The failed one is kept as it
    was; the retry is a new outbox email, sent with the next `mailbot outbox send` (or poll).
    Both are recorded in the audit trail.

    \b
    Example:
      mailbot outbox retry 12 --to beimenxx@163.com
    """
    from mailbot.db import audit
    from mailbot.outbound.retry import RetryError, retry_failed
    now = c.clock()
    with c.sessions()() as session:
        try:
            row = retry_failed(session, outbox_id, now, list(to) or None)
        except RetryError as exc:
            raise click.BadParameter(str(exc), param_hint="OUTBOX_ID") from exc
        audit.outbox_retried(session, actor=cli_actor(), outbox_id=outbox_id, retry_id=row.id,
                             to=list(row.to_addrs), now=now)
        session.commit()
        result = {"id": row.id, "retry_of": outbox_id, "kind": row.kind, "to": list(row.to_addrs),
                  "status": row.status}
    if as_json:
        echo_people_json(result, c.config.timezone)
    else:
        click.echo(f"outbox {outbox_id} queued again as outbox {row.id} to {', '.join(result['to'])}; "
                   "it goes out with the next `mailbot outbox send`")


COMMANDS = (outbox,)
