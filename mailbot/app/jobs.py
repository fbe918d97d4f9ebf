"""The daemon's jobs, as `mailbot run` schedules them (mailbot.app.daemon fires them on triggers).

Each job takes `should_stop`, a function that says whether SIGTERM arrived, and checks it between
its units of work (read the mailboxes; send the outbox; purge old archives) and hands it on: the
poll notices it between messages, the send between emails and during the throttle pause, so a stop
waits only for the message or email in hand. What the jobs share for the daemon's whole life, one WorkerPool and one
Pipeline with its Archive, is made by the first poll and closed by `DaemonJobs.close()`.

When the monthly summary is due is decided by the pure `summary_due`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from mailbot.config import Config, Schedule
from mailbot.rules.month import Month

ShouldStop = Callable[[], bool]
PURGE_EVERY = timedelta(hours=1)


def summary_due(now: datetime, schedule: Schedule, tz: ZoneInfo) -> bool:
    """Whether this month's summary is due at `now`: the month is a reporting month and its day and
    time, in the bureau's time zone, have come (a summary_day past 28 counts as the 28th). That it
    goes out once a month is the outbox key's business, so a run after the day catches it up."""
    local = now.astimezone(tz)
    due = local.replace(day=min(schedule.summary_day, 28), hour=schedule.summary_at.hour,
                        minute=schedule.summary_at.minute, second=0, microsecond=0)
    return local >= due and Month.of(local).is_reporting(schedule.reporting_months)


class DaemonJobs:
    """The jobs of one daemon process and what they share; a context manager that closes it."""

    def __init__(self, config: Config, sessions, clock: Callable[[], datetime]):
        self.config, self.sessions, self.clock = config, sessions, clock
        self._pool = None
        self._pipeline = None
        self._purged_at: datetime | None = None  # the last purge of expired archives

    def by_name(self) -> dict[str, Callable[[ShouldStop], object]]:
        """The jobs by name (see mailbot.app.daemon.JOB_NAMES). The poll job sends the outbox after
        every pass, so no separate "send" job is needed."""
        return {"poll": self.poll, "remind": self.remind, "summary": self.summary, "watch": self.watch}

    def pipeline(self):
        """The daemon's one Pipeline and WorkerPool, made on first use (a poll asks only when it has
        mail to download: `mailbot.ingest.poll.PipelineWhenNeeded`)."""
        if self._pipeline is None:
            from mailbot.ingest.isolation import WorkerPool
            from mailbot.ingest.pipeline import Pipeline
            self._pool = WorkerPool(self.config.limits)
            self._pipeline = Pipeline(self.config, self.sessions, self._pool, self.clock)
        return self._pipeline

    def poll(self, should_stop: ShouldStop) -> int:
        """Read every mailbox, then send the outbox, then purge expired archives; return how many
        messages were read."""
        from mailbot.ingest.poll import PipelineWhenNeeded, poll_and_send
        from mailbot.ingest.retention import purge_ignored_archives
        from mailbot.outbound.sending import send_outbox
        report = poll_and_send(self.config, self.sessions, self.clock, send=False, should_stop=should_stop,
                               pipeline=PipelineWhenNeeded(self.config, self.clock, self.pipeline))
        read = sum(sum(m.outcomes.values()) for m in report.mailboxes)
        if should_stop():
            return read
        send_outbox(self.config, self.sessions, self.clock, should_stop=should_stop)
        now = self.clock()
        if should_stop() or (self._purged_at is not None and now - self._purged_at < PURGE_EVERY):
            return read
        with self.sessions.begin() as session:  # retention is in days: once an hour is plenty
            purge_ignored_archives(session, self.config, now)
        self._purged_at = now
        return read

    def remind(self, should_stop: ShouldStop) -> int:
        """Queue the reminders due now, a stage whole or not at all (one transaction, retried whole
        while a poll holds the database; the poll job sends them)."""
        from mailbot.db.write_retry import in_write_transaction
        from mailbot.outbound.reminders import queue_reminders
        report = in_write_transaction(
            self.sessions, lambda session: queue_reminders(session, self.config, self.clock()), should_stop=should_stop)
        return sum(1 for item in report if item["queued"])

    def watch(self, should_stop: ShouldStop) -> int:
        """Raise "no successful poll" by the clock, whatever the poll job is doing, and send the
        alarms at once (only alarms: through a mailbox other than the troubled one)."""
        from mailbot.ingest.poll_health import raise_due_poll_alarms
        from mailbot.outbound import alarms
        from mailbot.outbound.sending import send_outbox
        raised = raise_due_poll_alarms(self.config, self.sessions, self.clock())
        if not should_stop():  # any alarm due, also one queued while the poll job is stuck
            send_outbox(self.config, self.sessions, self.clock, kinds={alarms.KIND}, should_stop=should_stop)
        return raised

    def summary(self, should_stop: ShouldStop) -> int:
        """Queue this month's summary once it is due, then send it; return 1 when queued now."""
        now = self.clock()
        if not summary_due(now, self.config.schedule, self.config.timezone):
            return 0
        # Imported only when due: openpyxl, lxml and Pillow cost the idle daemon ~12 MB.
        from mailbot.outbound.sending import send_outbox
        from mailbot.summary.send import KIND, build_package, queue_summary
        from mailbot.timeutil import current_month
        month = current_month(now, self.config.timezone)
        with self.sessions.begin() as session:
            queued = queue_summary(session, self.config, build_package(session, self.config, month, now), now)
        if not should_stop():  # the summary alone: the rest is the poll's, whose sending may run now
            send_outbox(self.config, self.sessions, self.clock, kinds={KIND}, should_stop=should_stop)
        return 1 if queued is not None else 0

    def close(self) -> None:
        """Close the pipeline (its archive's fsync thread) and stop the worker processes."""
        if self._pipeline is not None:
            try:
                self._pipeline.close()
            finally:  # the workers are stopped even if the archive's close failed
                self._pool.close()
                self._pipeline = self._pool = None

    def __enter__(self) -> "DaemonJobs":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
