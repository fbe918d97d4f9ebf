"""The daemon's jobs by name, as `mailbot run` schedules them (see mailbot.app.daemon)."""

from __future__ import annotations

from mailbot.app.options import Context


def daemon_jobs(c: Context) -> dict:
    """The daemon's jobs by name (see mailbot.app.daemon.JOB_NAMES). Each takes `should_stop`, a
    function that says whether SIGTERM arrived, so long work can stop between messages."""
    config, sessions, clock = c.config, c.sessions(), c.clock

    def remind_job(should_stop):
        from mailbot.outbound.reminders import queue_reminders
        with sessions() as session:
            report = queue_reminders(session, config, clock())
            session.commit()
        return sum(1 for item in report if item["queued"])

    pool = []  # one WorkerPool for the daemon's life, made on first use

    def poll_job(should_stop):
        from mailbot.ingest.isolation import WorkerPool
        from mailbot.ingest.poll import poll_and_send
        from mailbot.ingest.retention import purge_ignored_archives
        if not pool:
            pool.append(WorkerPool(config.limits))
        report = poll_and_send(config, sessions, clock, runner=pool[0])
        with sessions.begin() as session:
            purge_ignored_archives(session, config, clock())
        return sum(sum(m.outcomes.values()) for m in report.mailboxes)

    def summary_job(should_stop):
        from mailbot.timeutil import current_month
        now = clock()
        month = current_month(now, config.timezone)
        local = now.astimezone(config.timezone)
        due = local.replace(day=min(config.schedule.summary_day, 28), hour=config.schedule.summary_at.hour,
                            minute=config.schedule.summary_at.minute, second=0, microsecond=0)
        if local < due or int(month[5:]) not in config.schedule.reporting_months:
            return 0  # not yet this month (or not a reporting month)
        # Imported only when due: openpyxl, lxml and Pillow cost the idle daemon ~12 MB.
        from mailbot.outbound.sending import send_outbox
        from mailbot.summary.send import build_package, queue_summary
        with sessions.begin() as session:
            queued = queue_summary(session, config, build_package(session, config, month, now), now)
        send_outbox(config, sessions, clock)
        return 1 if queued is not None else 0

    # The poll job sends the outbox after every pass; no separate "send" job is needed.
    return {"poll": poll_job, "remind": remind_job, "summary": summary_job}
