"""The campaign's commands: reminders, excuses and voided submissions (SPEC 8)."""

from __future__ import annotations

import click

from mailbot.app.options import Context, cli_actor, month_option, operator, pass_ctx


@click.command()
@month_option()
@click.option("--stage", metavar="NAME", help="Send this stage now, whatever the date (e.g. due); "
              "still at most once per school.")
@click.option("--dry-run", is_flag=True, help="Only show who would get what; queue nothing.")
@pass_ctx
def remind(c: Context, month, stage, dry_run):
    """Queue the reminders due now: to every school without an accepted table for the month, and
    after the overdue stage the list of missing schools to each section's staff. The mail goes out
    with the next `mailbot outbox send` (the daemon does both on its own).

    \b
    Example:
      mailbot remind --dry-run
      mailbot remind --month 2022-10 --stage overdue
    """
    from mailbot.outbound.reminders import queue_reminders
    config = c.config
    if stage is not None and stage not in {s.name for s in config.schedule.stages}:
        known = ", ".join(s.name for s in config.schedule.stages)
        raise click.BadParameter(f"no stage {stage!r} in [schedule.stages] (configured: {known})",
                                 param_hint="--stage")
    from mailbot.db.write_retry import in_write_transaction
    report = in_write_transaction(c.sessions(), lambda session: queue_reminders(
        session, config, c.clock(), month=month, stage=stage, dry_run=dry_run))
    if not report:
        click.echo("no reminder is due now" + (f" for {month}" if month else ""))
        return
    verb = "would queue" if dry_run else "queued"
    for item in report:
        who = item.get("school") or f"staff of {item['mailbox']}: {len(item['schools'])} missing schools"
        state = verb if dry_run or item["queued"] else "skipped"
        click.echo(f"{state:<11} {item['month']}  {item['kind']:<18} {item['mailbox']:<10} {who}  "
                   f"-> {', '.join(item['to']) or '(no address in the roster)'}")


@click.command()
@click.argument("school")
@month_option(required=True)
@click.option("--reason", default="", help="Why, for the record (shown to nobody else).")
@click.option("--undo", is_flag=True, help="Withdraw the excuse: the school is required again.")
@pass_ctx
def excuse(c: Context, school, month, reason, undo):
    """Excuse a school for a month: not reminded, not counted missing, shown as excused in the
    summary. SCHOOL is the roster name or an alias.

    \b
    Example:
      mailbot excuse 安溪县北门小学 --month 2022-10 --reason "停课装修"
      mailbot excuse 安溪县北门小学 --month 2022-10 --undo
    """
    from mailbot.db import audit
    from mailbot.db.campaign import CampaignError, excuse as do_excuse, withdraw_excuse
    now = c.clock()
    with c.sessions()() as session:
        try:
            if undo:
                row = withdraw_excuse(session, c.config, school, month, operator(), now)
                audit.excuse_withdrawn(session, actor=cli_actor(), school=row.school, month=month, now=now)
                message = f"{row.school} is no longer excused for {month}"
            else:
                row, new = do_excuse(session, c.config, school, month, reason, operator(), now)
                if new:
                    audit.excused(session, actor=cli_actor(), school=row.school, month=month, reason=reason, now=now)
                message = (f"{row.school} excused for {month}" if new else
                           f"{row.school} was already excused for {month} (by {row.created_by})")
        except CampaignError as exc:
            raise click.BadParameter(str(exc), param_hint="SCHOOL") from exc
        session.commit()
    click.echo(message)


@click.command()
@click.argument("submission_id", type=int)
@click.option("--reason", default="", help="Why, for the record.")
@pass_ctx
def void(c: Context, submission_id, reason):
    """Withdraw a wrong submission; the school's previous one for the month, if any, is in force
    again. The submission stays in the history, marked void, with who, when and why.

    \b
    Example:
      mailbot void 42 --reason "sent by the wrong school"
    """
    from mailbot.db import audit
    from mailbot.db.campaign import CampaignError, void as do_void
    now = c.clock()
    with c.sessions()() as session:
        try:
            result = do_void(session, submission_id, reason, operator(), now)
        except CampaignError as exc:
            raise click.BadParameter(str(exc), param_hint="SUBMISSION_ID") from exc
        sub, restored = result.submission, result.restored
        audit.voided(session, actor=cli_actor(), submission_id=sub.id, school=sub.school, month=sub.month,
                     restored=restored.id if restored else None, reason=reason, now=now)
        session.commit()
        click.echo(f"submission {sub.id} ({sub.school}, {sub.month}) voided; "
                   + (f"submission {restored.id} is in force again" if restored else
                      "no earlier submission: the school counts as missing unless it sends again"))


COMMANDS = (remind, excuse, void)
