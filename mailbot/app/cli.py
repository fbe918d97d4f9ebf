"""The command line (SPEC 8). Exit status: 0 success, 2 bad usage or configuration, 1 anything else.
With --json, stdout carries only JSON; logs go to stderr."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from mailbot.errors import ConfigError, MailbotError

log = logging.getLogger("mailbot")


class Context:
    """What a command needs, built lazily so `--help` and bad usage never touch the database."""

    def __init__(self, config_path: str | None, now: str | None):
        self.config_path = config_path
        self._now = datetime.fromisoformat(now) if now else None
        self._config = None
        self._engine = None

    def clock(self) -> datetime:
        return self._now or datetime.now(timezone.utc)

    @property
    def config(self):
        if self._config is None:
            from mailbot.config import load_config
            self._config = load_config(self.config_path)
        return self._config

    @property
    def engine(self):
        if self._engine is None:
            from mailbot.db.engine import open_database
            self._engine = open_database(self.config)
        return self._engine

    def sessions(self):
        from mailbot.db.engine import make_sessionmaker
        return make_sessionmaker(self.engine)

    def close(self):
        if self._engine is not None:
            self._engine.dispose()


pass_ctx = click.make_pass_decorator(Context)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _month_option(required: bool = False):
    def check(_ctx, _param, value):
        from mailbot.config import _is_month
        if value is not None and not _is_month(value):
            raise click.BadParameter(f"{value!r} is not a month like 2022-10")
        return value
    return click.option("--month", callback=check, required=required, metavar="YYYY-MM",
                        help="The reporting month (default: the current month).")


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


# -- db ---------------------------------------------------------------------------------------------
@cli.group()
def db():
    """The database schema.

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
    from mailbot.db.engine import make_engine
    from mailbot.db.migrate import current_revision, head_revision, upgrade
    c.config.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(c.config.database_url)
    upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)} (head {head_revision(engine)})", err=True)
    engine.dispose()


# -- ingest -----------------------------------------------------------------------------------------
@cli.command()
@click.option("--mailbox", help="The [[mailbox]] the files arrived in (default: the first one).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@click.option("--school", help="With a bare table file: the roster school it is for (entered by the operator).")
@_month_option()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_ctx
def ingest(c: Context, mailbox, as_json, school, month, files):
    """Run local .eml files through the pipeline, exactly as if they had arrived by mail.

    A bare table file (.xlsx, .xls, .docx, .csv ...) is accepted with --school and --month, for a
    table a school sent some other way; it is recorded as entered by the operator.

    \b
    Examples:
      mailbot ingest --mailbox zjg --json message.eml
      mailbot ingest --school 安溪县北门小学 --month 2022-10 table.xlsx
    """
    from mailbot.ingest.files import ingest_files
    config = c.config
    name = mailbox or config.mailboxes[0].name
    config.mailbox(name)
    if (school is None) != (month is None):
        raise click.UsageError("--school and --month go together (for a bare table file)")
    failed = False
    for result in ingest_files(config, c.sessions(), c.clock, name, [Path(f) for f in files], files,
                               school=school, month=month):
        failed |= result["outcome"] == "failed"
        if as_json:
            _echo_json(result)
        else:
            _print_result(result)
    sys.exit(1 if failed else 0)


def _print_result(result: dict) -> None:
    click.echo(f"{result['file']}: {result['outcome']}" + (f" ({result['month']})" if result.get("month") else ""))
    for row in result.get("rows", []):
        mark = "ok " if row["ok"] else "ERR"
        click.echo(f"  {mark} {row['school']}  在校 {row['enrolled']}  参与 {row['participating']}  "
                   f"2+N {'是' if row['two_plus_n'] else '否'}  N={row['n']}")
        for text in row["errors"] + row["warnings"]:
            click.echo(f"      {text}")
    for text in result.get("errors", []) + result.get("warnings", []):
        click.echo(f"  {text}")
    if result.get("reply"):
        click.echo(f"  reply queued to {', '.join(result['reply']['to'])}: {result['reply']['subject']}")


# -- status -----------------------------------------------------------------------------------------
@cli.command()
@_month_option()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout (SPEC 8).")
@pass_ctx
def status(c: Context, month, as_json):
    """Who has reported for a month: on time, late, missing, excused.

    \b
    Example:
      mailbot status --month 2022-10
    """
    from mailbot.db.queries import load_status
    from mailbot.timeutil import current_month
    month = month or current_month(c.clock(), c.config.timezone)
    with c.sessions()() as session:
        result = load_status(session, c.config, month)
    if as_json:
        _echo_json(result)
        return
    t = result["totals"]
    click.echo(f"{month}  deadline {result['deadline']}  required {t['required']}  on time {t['on_time']}  "
               f"late {t['late']}  missing {t['missing']}")
    for s in result["schools"]:
        figures = (f"{s['enrolled']:>6} {s['participating']:>6}  2+N {'是' if s['two_plus_n'] else '否'} N={s['n']}"
                   if s["enrolled"] is not None else "")
        click.echo(f"  {s['state']:<8} {s['level']:<7} {s['name']}  {figures}")


# -- quarantine -------------------------------------------------------------------------------------
@cli.group()
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
        items = [{"id": q.id, "sender": m.sender, "subject": m.subject, "received_at": m.received_at.isoformat(),
                  "reason": q.reason, "candidate_schools": q.candidate_schools}
                 for q, m in store.pending_quarantine(session)]
    if as_json:
        _echo_json(items)
        return
    if not items:
        click.echo("nothing in quarantine")
    for i in items:
        click.echo(f"{i['id']:>4}  {i['received_at'][:16]}  {i['sender']}  {i['subject']}\n"
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
    result = approve(c.config, c.sessions(), c.clock, quarantine_id, list(schools), remember, _operator())
    if as_json:
        _echo_json(result)
    else:
        _print_result(result)


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
    reject(c.sessions(), c.clock, quarantine_id, reason, _operator())
    click.echo(f"quarantine {quarantine_id} rejected")


def _operator() -> str:
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or "operator"


# -- outbox -----------------------------------------------------------------------------------------
@cli.group()
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
        _echo_json(items)
        return
    for i in items:
        click.echo(f"{i['id']:>5}  {i['status']:<7} {i['kind']:<20} {i['mailbox']:<10} {', '.join(i['to'])}  "
                   f"{i['subject']}" + (f"  [{i['last_error']}]" if i["last_error"] else ""))


# -- summary ----------------------------------------------------------------------------------------
@cli.command()
@_month_option()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write summary.html, summary.txt and the .xlsx to this folder for preview.")
@click.option("--send", is_flag=True, help="Queue the email to [summary] recipients (once per month).")
@click.option("--force", is_flag=True, help="With --send: send again although this month's was sent.")
@pass_ctx
def summary(c: Context, month, out_dir, send, force):
    """The monthly summary for leadership: KPIs, charts, per-school table and the 汇总表 .xlsx.

    Without --out or --send the plain-text version is printed.

    \b
    Examples:
      mailbot summary --month 2022-10 --out preview/
      mailbot summary --month 2022-10 --send
    """
    from mailbot.summary.send import build_package, queue_summary, write_preview
    from mailbot.timeutil import current_month
    if force and not send:
        raise click.UsageError("--force only goes with --send")
    now = c.clock()
    month = month or current_month(now, c.config.timezone)
    with c.sessions()() as session:
        package = build_package(session, c.config, month, now)
        if out_dir is not None:
            for path in write_preview(package, out_dir):
                click.echo(f"wrote {path}", err=True)
        if send:
            queued = queue_summary(session, c.config, package, now, force)
            session.commit()
            if queued is None:
                click.echo(f"the summary for {month} was queued before; not queued again "
                           "(use --send --force to send it again)", err=True)
            else:
                click.echo(f"summary for {month} queued to {', '.join(queued.to_addrs)} (outbox {queued.id}); "
                           "it goes out with the next `mailbot poll`", err=True)
    if out_dir is None and not send:
        click.echo(package.composed.text, nl=False)


# -- export -----------------------------------------------------------------------------------------
def _month_arg(_ctx, _param, value):
    from mailbot.config import _is_month
    if value is not None and not _is_month(value):
        raise click.BadParameter(f"{value!r} is not a month like 2022-10")
    return value


@cli.command()
@click.option("--from", "first", callback=_month_arg, metavar="YYYY-MM", help="First month (default: the first on record).")
@click.option("--to", "last", callback=_month_arg, metavar="YYYY-MM", help="Last month (default: the last on record).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .xlsx file to write.")
@pass_ctx
def export(c: Context, first, last, out_file):
    """The ledger (台账): every month's rows for every school, who sent them, when, and whether late.

    One sheet per month, a long-format sheet of all months for pivot tables, and every submission
    ever accepted (replaced and voided ones included).

    \b
    Example:
      mailbot export --from 2022-03 --to 2022-10 --out 台账.xlsx
    """
    from mailbot.summary.ledger import build_ledger, ledger_months
    from mailbot.summary.load import months_on_record, rows_in_force, submission_history
    from mailbot.timeutil import current_month
    config = c.config
    with c.sessions()() as session:
        recorded = months_on_record(session)
        fallback = current_month(c.clock(), config.timezone)
        first = first or (recorded[0] if recorded else fallback)
        last = last or (recorded[-1] if recorded else fallback)
        try:
            months = ledger_months(first, last, recorded, config.schedule.reporting_months)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from/--to") from exc
        data = build_ledger(config.schools, rows_in_force(session, first, last),
                            submission_history(session, first, last), months,
                            deadline_day=config.schedule.deadline_day, tz=config.timezone,
                            reporting_months=config.schedule.reporting_months)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(data)
    click.echo(f"wrote {out_file}: {len(months)} month(s), {first} to {last}", err=True)



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
    click.echo(_sending_line(report), err=True)
    sys.exit(0 if report.ok else 1)


def _sending_line(report) -> str:
    line = (f"outbox: {report.sent} sent, {report.retrying} to retry, {report.failed} failed"
            + (f", {report.requeued_abandoned} requeued after a crash" if report.requeued_abandoned else ""))
    if report.capped:
        line += f"; daily cap reached: {', '.join(sorted(set(report.capped)))}"
    for name, error in report.broken_accounts.items():
        line += f"\n  {name} cannot send: {error}"
    return line


# -- poll and check ---------------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message on stdout (as ingest --json).")
@click.option("--no-send", is_flag=True, help="Only read the mailboxes; leave the outbox for later.")
@pass_ctx
def poll(c: Context, as_json, no_send):
    """One pass over every mailbox, then send the outbox.

    New mail is found by UID (IMAP) or by file (Maildir), read without marking it read, and run
    through the same pipeline as `ingest`. Exit status 1 when a mailbox could not be read, a
    message failed, or an account could not send.

    \b
    Examples:
      mailbot poll
      mailbot poll --json | jq .outcome
    """
    from mailbot.ingest.poll import poll_and_send
    report = poll_and_send(c.config, c.sessions(), c.clock, _echo_json if as_json else _print_result,
                           send=not no_send)
    for mb in report.mailboxes:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(mb.outcomes.items())) or "nothing new"
        status_text = "ok" if mb.ok else f"FAILED: {mb.error}"
        click.echo(f"{mb.mailbox}: {status_text}; {counts}", err=True)
    if report.skipped_busy:
        click.echo("another poll is running: mailboxes not read this time", err=True)
    if report.sending is not None:
        click.echo(_sending_line(report.sending), err=True)
    sys.exit(0 if report.ok else 1)


@cli.command()
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
        _echo_json([p.as_json() for p in probes])
    else:
        for probe in probes:
            click.echo(describe(probe))
    sys.exit(exit_status(probes))


@cli.command()
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


# The campaign's commands (remind, excuse, void, run) live in their own module.
from mailbot.app.cli_campaign import register  # noqa: E402

register(cli)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except MailbotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(0)
