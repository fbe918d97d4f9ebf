"""Commands that report: status, the monthly summary and the ledger export (SPEC 8)."""

from __future__ import annotations

from pathlib import Path

import click

from mailbot.app.options import Context, check_month, month_option, pass_ctx
from mailbot.app.output import echo_json


@click.command()
@month_option()
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
        echo_json(result)
        return
    from mailbot.app.display import table
    t = result["totals"]
    click.echo(f"{month}  deadline {result['deadline']}  required {t['required']}  on time {t['on_time']}  "
               f"late {t['late']}  missing {t['missing']}")
    rows = []
    for s in result["schools"]:
        reported = s["enrolled"] is not None
        rows.append([s["state"], s["level"], s["name"], s["enrolled"] if reported else "",
                     s["participating"] if reported else "",
                     (f"2+N {'是' if s['two_plus_n'] else '否'}" if reported else ""),
                     f"N={s['n']}" if reported else ""])
    for line in table(rows, "<<<>><<"):  # padded by display width: Chinese names take two cells a character
        click.echo(f"  {line}")


@click.command()
@month_option()
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
            try:
                written = write_preview(package, out_dir)
            except OSError as exc:
                raise click.ClickException(f"cannot write the preview to {out_dir}: "
                                           f"{exc.strerror or exc}") from exc
            for path in written:
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


@click.command()
@click.option("--from", "first", callback=check_month, metavar="YYYY-MM", help="First month (default: the first on record).")
@click.option("--to", "last", callback=check_month, metavar="YYYY-MM", help="Last month (default: the last on record).")
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
    from mailbot.db.campaign import excused_schools
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
                            excused={month: excused_schools(session, month) for month in months},
                            deadline_day=config.schedule.deadline_day, tz=config.timezone,
                            reporting_months=config.schedule.reporting_months)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(data)
    click.echo(f"wrote {out_file}: {len(months)} month(s), {first} to {last}", err=True)


COMMANDS = (status, summary, export)
