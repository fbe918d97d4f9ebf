"""The operator's view and mends (SPEC 8): messages, submissions, one outbox email, retrying a failed
one, the remembered senders. Each command has --json (ISO-8601 times with the configured offset);
the text form shows times as `2022-10-20 20:11 +08:00` and lines up Chinese names.

The data comes from the read queries the web console uses too (mailbot.db.views), so the two
doors show the same thing. (`outbox show` and `outbox retry` are in commands_outbox.py.)
"""

from __future__ import annotations

import click

from mailbot.app.options import Context, check_month, cli_actor
from mailbot.app.output import echo_people_json
from mailbot.app.display import table
from mailbot.timeutil import people_time

OUTCOMES = ("accepted", "rejected", "quarantined", "ignored", "duplicate", "failed", "baseline")


def _context() -> Context:
    return click.get_current_context().find_object(Context)


month_option = click.option("--month", callback=check_month, metavar="YYYY-MM", help="Only this month.")
json_option = click.option("--json", "as_json", is_flag=True, help="JSON on stdout (times ISO-8601 with offset).")


def _school_name(config, text: str | None) -> str | None:
    """A roster name or alias, as `excuse` takes it; bad usage when it is neither."""
    if text is None:
        return None
    from mailbot.db.campaign import CampaignError, resolve_school
    try:
        return resolve_school(config, text)
    except CampaignError as exc:
        raise click.BadParameter(str(exc), param_hint="--school") from exc


# -- messages ---------------------------------------------------------------------------------------
@click.group()
def messages():
    """Every message mailbot saw (mail polled and files ingested), with its outcome and reason.

    \b
    Example:
      mailbot messages list --month 2022-10 --outcome rejected
      mailbot messages show 17
    """


@messages.command("list")
@month_option
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only this outcome.")
@click.option("--school", metavar="NAME", help="Only messages from this school's addresses or recorded for it.")
@click.option("--mailbox", metavar="NAME", help="Only this [[mailbox]].")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
def messages_list(month, outcome, school, mailbox, limit, as_json):
    """List messages, newest first: when, from, subject, outcome and why.

    The month is the month a message was received in (the configured time zone).

    \b
    Example:
      mailbot messages list --school 安溪县北门小学 --month 2022-10
    """
    from mailbot.db.views import list_messages
    c = _context()
    config = c.config
    if mailbox is not None:
        config.mailbox(mailbox)
    with c.sessions()() as session:
        found = list_messages(session, config, month=month, outcome=outcome, school=_school_name(config, school),
                              mailbox=mailbox, limit=limit)
    items = found["messages"]
    if as_json:
        echo_people_json(items, config.timezone)
        return
    if not items:
        click.echo("no message matches")
        return
    rows = [[m["id"], people_time(m["received_at"], config.timezone), m["mailbox"], m["outcome"] or "in progress",
             m["sender"] or "-", (m["subject"] or "")[:40]] for m in items]
    for line, m in zip(table([["id", "received", "mailbox", "outcome", "from", "subject"]] + rows, ">")[1:], items):
        click.echo(line)
        if m["reason"]:
            click.echo(f"      {m['reason'][:200]}")
    if found["total"] > len(items):
        click.echo(f"({len(items)} of {found['total']} shown; narrow with --month/--outcome/--school or raise --limit)")


@messages.command("show")
@click.argument("message_id", type=int)
@json_option
def messages_show(message_id, as_json):
    """One message: what it was, what mailbot decided and why, the rows it carried, the
    submissions it made and the emails it caused.

    \b
    Example:
      mailbot messages show 17
    """
    from mailbot.db.views import message_detail
    c = _context()
    tz = c.config.timezone
    with c.sessions()() as session:
        detail = message_detail(session, message_id)
    if detail is None:
        raise click.BadParameter(f"no message with id {message_id} (see `mailbot messages list`)",
                                 param_hint="MESSAGE_ID")
    if as_json:
        echo_people_json(detail, tz)
        return
    click.echo(f"message {detail['id']}  {detail['outcome'] or 'in progress'}")
    for label, value in [("mailbox", f"{detail['mailbox']} ({detail['source']})"), ("from", detail["sender"]),
                         ("subject", detail["subject"]), ("sent (Date)", people_time(detail["date"], tz)),
                         ("received", people_time(detail["received_at"], tz)),
                         ("read", people_time(detail["read_at"], tz)), ("Message-ID", detail["message_id"] or "-"),
                         ("why", detail["reason"] or "-")]:
        click.echo(f"  {label:<12} {value}")
    for row in detail["rows"]:
        click.echo(f"  row {'ok ' if row.get('ok') else 'ERR'} {row.get('school')}  在校 {row.get('enrolled')}  "
                   f"参与 {row.get('participating')}  N={row.get('n')}")
    for sub in detail["submissions"]:
        click.echo(f"  submission {sub['id']}  {sub['school']} {sub['month']}  {sub['state']}"
                   + ("  late" if sub["late"] else ""))
    if detail.get("quarantine"):
        q = detail["quarantine"]
        click.echo(f"  quarantine {q['id']}  {q['status']}  {q['reason']}")
    for mail in detail["mail"]:
        click.echo(f"  email {mail['id']}  {mail['kind']}  {mail['status']}  to {', '.join(mail['to'])}: "
                   f"{mail['subject']}  (mailbot outbox show {mail['id']})")


# -- submissions ------------------------------------------------------------------------------------
@click.group()
def submissions():
    """Accepted tables: the IDs `void` takes, and which one is in force for each school and month.

    \b
    Example:
      mailbot submissions list --month 2022-10
    """


@submissions.command("list")
@month_option
@click.option("--school", metavar="NAME", help="Only this school (roster name or alias).")
@json_option
def submissions_list(month, school, as_json):
    """List submissions, newest month first: in force, replaced by a later one, or voided.

    \b
    Example:
      mailbot submissions list --school 安溪县北门小学
    """
    from mailbot.db.views import list_submissions
    c = _context()
    config = c.config
    with c.sessions()() as session:
        items = list_submissions(session, month=month, school=_school_name(config, school))
    if as_json:
        echo_people_json(items, config.timezone)
        return
    if not items:
        click.echo("no submission matches")
        return
    rows = [[s["id"], s["month"], s["state"], "late" if s["late"] else "on time",
             people_time(s["received_at"], config.timezone), s["school"], s["enrolled"], s["participating"],
             f"N={s['n']}", s["entered_by"] and f"entered by {s['entered_by']}" or s["sender"]] for s in items]
    for line in table([["id", "month", "state", "", "received", "school", "在校", "参与", "", "from"]] + rows,
                      ">>>>><>>"):
        click.echo(line)


# -- senders ----------------------------------------------------------------------------------------
@click.group()
def senders():
    """Addresses the operator trusted: remembered on approval (`quarantine approve --remember`), or
    exempted from sender authentication (`senders trust`). List and forget them.

    \b
    Example:
      mailbot senders list
      mailbot senders forget teacher@qq.com
      mailbot senders trust office@xx-school.cn --unauthenticated
    """


def _schools_of(session, config, address: str) -> list[str]:
    """The schools an address reports for: the roster's and the remembered senders'."""
    from mailbot.db import store
    from mailbot.rules.roster import Roster
    return Roster(config.schools, store.known_senders(session)).schools_of_sender(address.strip().lower())


@senders.command("list")
@json_option
def senders_list(as_json):
    """List the remembered addresses and the school each reports for, then the addresses exempted
    from sender authentication ("kind": "remembered" or "unauthenticated").

    \b
    Example:
      mailbot senders list --json
    """
    from mailbot.db.senders import list_senders, list_unauthenticated
    c = _context()
    with c.sessions()() as session:
        items = [{**s, "kind": "remembered"} for s in list_senders(session)]
        items += [{**s, "school": "、".join(_schools_of(session, c.config, s["email"])) or None,
                   "kind": "unauthenticated"} for s in list_unauthenticated(session)]
    if as_json:
        echo_people_json(items, c.config.timezone)
        return
    if not items:
        click.echo("no remembered sender")
        return
    for line in table([[s["email"], s["school"] or "-", people_time(s["created_at"], c.config.timezone),
                        f"by {s['created_by'] or '-'}",
                        "accepted without sender authentication" if s["kind"] == "unauthenticated" else ""]
                       for s in items]):
        click.echo(line)


@senders.command("trust")
@click.argument("address")
@click.option("--unauthenticated", is_flag=True,
              help="Count its mail without an authenticated From (SPEC 3.4): for a school whose mail "
                   "server signs nothing, knowingly.")
@json_option
def senders_trust(address, unauthenticated, as_json):
    """Exempt one registered address from sender authentication. Anyone can write that From: do it
    only for a school whose server cannot be fixed. Recorded in the audit trail; undone with
    `senders forget ADDRESS --unauthenticated`.

    \b
    Example:
      mailbot senders trust office@xx-school.cn --unauthenticated
    """
    if not unauthenticated:
        raise click.UsageError("say --unauthenticated: `senders trust` exempts an address from sender "
                               "authentication, and must be asked for knowingly")
    from mailbot.db import audit
    from mailbot.db.senders import UnknownSender, trust_unauthenticated
    c = _context()
    now = c.clock()
    with c.sessions()() as session:
        schools = _schools_of(session, c.config, address)
        try:
            exemption, new = trust_unauthenticated(session, address, schools, now, cli_actor())
        except UnknownSender as exc:
            raise click.BadParameter(f"{exc} (see the roster and `mailbot senders list`)",
                                     param_hint="ADDRESS") from exc
        if new:
            audit.sender_exempted(session, actor=cli_actor(), email=exemption["email"], schools=schools, now=now)
        session.commit()
    if as_json:
        echo_people_json({**exemption, "school": "、".join(schools), "kind": "unauthenticated", "new": new},
                         c.config.timezone)
    else:
        click.echo(f"{exemption['email']} ({'、'.join(schools)}) is accepted without sender authentication"
                   + ("" if new else " (already)"))


@senders.command("forget")
@click.argument("address")
@click.option("--school", metavar="NAME", help="Forget it only for this school.")
@click.option("--unauthenticated", is_flag=True,
              help="Withdraw only its exemption from sender authentication (`senders trust`).")
@json_option
def senders_forget(address, school, unauthenticated, as_json):
    """Forget a remembered address: its next table is quarantined again. With --unauthenticated,
    withdraw its exemption from sender authentication instead. Recorded in the audit trail.

    \b
    Example:
      mailbot senders forget teacher@qq.com
      mailbot senders forget office@xx-school.cn --unauthenticated
    """
    from mailbot.db import audit
    from mailbot.db.senders import UnknownSender, forget_sender, forget_unauthenticated
    c = _context()
    now = c.clock()
    if unauthenticated and school:
        raise click.UsageError("--school and --unauthenticated do not go together: an exemption is per address")
    with c.sessions()() as session:
        try:
            if unauthenticated:
                gone = [forget_unauthenticated(session, address)]
                audit.sender_exemption_withdrawn(session, actor=cli_actor(), email=gone[0]["email"], now=now)
            else:
                gone = forget_sender(session, address, _school_name(c.config, school))
                audit.record(session, actor=cli_actor(), action="sender_forget", target=gone[0]["email"], now=now,
                             schools=[g["school"] for g in gone])
        except UnknownSender as exc:
            raise click.BadParameter(f"{exc} (see `mailbot senders list`)", param_hint="ADDRESS") from exc
        session.commit()
    if as_json:
        echo_people_json(gone, c.config.timezone)
    elif unauthenticated:
        click.echo(f"{gone[0]['email']} needs an authenticated From again")
    else:
        click.echo(f"forgot {gone[0]['email']} for {', '.join(g['school'] for g in gone)}")


COMMANDS = (messages, submissions, senders)
