"""`mailbot run`: the scheduled daemon (APScheduler 3.x BlockingScheduler).

What runs when (all in the configured time zone):
- `poll` (and `send`, if given separately): every `schedule.poll_interval_minutes`, first at start-up;
- `remind`: at start-up, every hour, and at each stage's time. The decision of what is due lives in
  the database (the outbox key is the claim), so a run after a restart catches up what the machine
  missed and never repeats a stage;
- `summary`: on `schedule.summary_day` at `schedule.summary_at`;
- `watch`: every minute (every quarter of `alarm_after_minutes` when that is shorter), raises "no
  successful poll" by the clock (a poll that hangs never returns to raise it) and sends the alarms.
Each job runs at most once at a time (`max_instances=1`) and runs that piled up run once (`coalesce`).

The job callables are injected (name -> callable taking `should_stop`, a function that says whether
the daemon is stopping), so the daemon knows nothing of IMAP or SMTP.

Stopping: SIGTERM/SIGINT only set a flag (a signal handler must not take the scheduler's locks;
and since Python runs handlers late when the kernel gives the signal to another thread, the flag is
also set by a thread reading the signal wakeup fd: `_SignalWakeup`); a helper thread sees it, shuts
the scheduler down and calls `on_stop` (`mailbot run`: the IMAP sessions in hand, and an SMTP
connection still being made, are abandoned at once, so a poll or a send stuck on a trickling server
does not hold the stop: mailbot.transports.deadline);
the main thread then waits for the jobs in hand to finish (they
check `should_stop` between their units of work: mailbot.app.jobs) and the process exits 0. A job
still running after `stop_timeout` is left behind: `run` returns 1 and `mailbot run` leaves at once
(`exit_leaving_jobs`), as a crash would, rather than wait for the job's thread.
systemd: READY=1 once the scheduler runs, WATCHDOG=1 at half of $WATCHDOG_USEC while the jobs make
progress (none has run longer than `hung_after`: every server call has a deadline, so a job that
runs that long is stuck, and systemd should restart the daemon), STOPPING=1 on the way out, through the $NOTIFY_SOCKET datagram socket (sd_notify(3), no library needed). All three go
through one `Notifier`, which sends no WATCHDOG=1 after STOPPING=1: the watchdog job may be running
in a scheduler thread at the very moment the stop is announced.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
import time as clock
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NoReturn

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_SCHEDULER_STARTED
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mailbot.config import Config

log = logging.getLogger(__name__)

JOB_NAMES = ("poll", "send", "remind", "summary", "watch")
Job = Callable[[Callable[[], bool]], object]
STOP_TIMEOUT_SECONDS = 45.0  # below the unit's TimeoutStopSec=60, so systemd never has to SIGKILL
# A stop should take well under a second; one still going after this long writes every thread's
# stack to stderr (the journal), again every so often, so the operator (and we) can see what held it.
SLOW_STOP_REPORT_SECONDS = 10.0


def exit_leaving_jobs(status: int) -> NoReturn:
    """End the process now, with the jobs still running. Returning from `main` is not enough: the
    interpreter joins APScheduler's pool threads at exit, so a job stuck in a server call would hold
    the process until systemd's SIGKILL at TimeoutStopSec (measured: a 15 s job held a stop with a
    1 s budget for 15 s). Leaving like this is a crash as far as the data goes, and the pipeline and
    the outbox are built for it: what the job had not committed is done again at the next start."""
    logging.shutdown()  # the journal gets the last lines ("exiting anyway")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def sd_notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Tell systemd `state` (e.g. "READY=1"); False when not run by systemd or the send failed."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(1.0)  # a notify socket nobody reads must never hang the daemon
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        return True
    except OSError as exc:
        log.warning("sd_notify %s failed: %s", state, exc)
        return False


class Notifier:
    """What the daemon tells systemd, in an order systemd can trust: READY=1, WATCHDOG=1 only until
    STOPPING=1, then nothing. A lock orders the sends, so a watchdog ping that has passed its check
    is sent before STOPPING=1 or not at all."""

    def __init__(self, environ: Mapping[str, str] = os.environ,
                 send: Callable[[str, Mapping[str, str]], bool] = sd_notify):
        self.environ = environ
        self._send = send  # sd_notify; a test may hold a send in progress
        self._lock = threading.Lock()
        self._stopping = False

    def ready(self) -> bool:
        with self._lock:
            return not self._stopping and self._send("READY=1", self.environ)

    def watchdog(self) -> bool:
        """Ping the watchdog; False (and nothing sent) once the stop was announced."""
        with self._lock:
            return not self._stopping and self._send("WATCHDOG=1", self.environ)

    def stopping(self) -> bool:
        with self._lock:
            if self._stopping:
                return False
            self._stopping = True
            return self._send("STOPPING=1", self.environ)


def watchdog_seconds(environ: Mapping[str, str] = os.environ) -> float | None:
    """How often to send WATCHDOG=1: half the interval systemd asked for, None when it asked none."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000


def job_triggers(config: Config) -> dict[str, BaseTrigger]:
    """The trigger of every job kind, in the configured time zone."""
    tz, schedule = config.timezone, config.schedule
    every = IntervalTrigger(seconds=max(schedule.poll_interval_minutes * 60, 1.0), timezone=tz)
    stage_times = sorted({(s.at.hour, s.at.minute) for s in schedule.stages})
    remind = OrTrigger([CronTrigger(minute=0, timezone=tz)]  # hourly catch-up
                       + [CronTrigger(hour=h, minute=m, timezone=tz) for h, m in stage_times])
    # The summary job itself checks that its day and time have come (and its outbox key makes it
    # once a month), so an hourly run catches up a summary the machine was down for.
    summary = OrTrigger([CronTrigger(minute=30, timezone=tz),
                         CronTrigger(day=schedule.summary_day, hour=schedule.summary_at.hour,
                                     minute=schedule.summary_at.minute, timezone=tz)])
    return {"poll": every, "send": every, "remind": remind, "summary": summary,
            "watch": IntervalTrigger(seconds=watch_seconds(config), timezone=tz)}


def watch_seconds(config: Config) -> float:
    """How often the watch job looks: every minute, or a quarter of the alarm period when that is
    shorter, so "no successful poll" is never more than a quarter of its period late."""
    return max(min(60.0, config.alarm_after_minutes * 60 / 4), 1.0)


def hung_after_seconds(config: Config) -> float:
    """How long a job may run before it counts as stuck: twice every mailbox's poll deadline (a
    poll reads them one after the other) plus an hour for sending and the rest."""
    return 2 * sum(mb.imap.poll_deadline for mb in config.mailboxes if mb.imap is not None) + 3600.0


class _SignalWakeup:
    """SIGTERM/SIGINT seen at once, whichever thread the kernel gives it to.

    Python runs a signal handler in the main thread only, and only when that thread next runs
    Python code; the scheduler's main thread sleeps until the next job is due (up to a minute),
    and a signal the kernel delivers to one of the other threads does not wake it. So a stop could
    wait a minute (seen in test_stop, one run in a few under load: 59.7 s). The C-level handler
    also writes the signal's number to the wakeup fd from any thread; a thread of ours reads it
    and sets the stop flag itself (what `request_stop` does, too, when it runs)."""

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, stopping: threading.Event):
        self._stopping = stopping
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="mailbot-signals", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            data = os.read(self._read, 64)
            if not data or 0 in data:  # closed, or close() woke us
                return
            if any(signum in data for signum in self.STOP_SIGNALS):
                self._stopping.set()
                return

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous)
        try:
            os.write(self._write, b"\0")
        except OSError:
            pass
        self._thread.join(5)
        os.close(self._write)
        os.close(self._read)


class Daemon:
    """Builds the scheduler from the config and the jobs, runs it until told to stop."""

    def __init__(self, config: Config, jobs: Mapping[str, Job], *, environ: Mapping[str, str] = os.environ,
                 stop_timeout: float = STOP_TIMEOUT_SECONDS,
                 watch: Callable[[Callable[[str], None], threading.Event], object] | None = None,
                 hung_after: float | None = None, monotonic: Callable[[], float] = clock.monotonic,
                 stop_report_after: float | None = SLOW_STOP_REPORT_SECONDS,
                 on_stop: Callable[[], object] | None = None):
        unknown = set(jobs) - set(JOB_NAMES)
        if unknown:
            raise ValueError(f"unknown daemon jobs {sorted(unknown)} (known: {', '.join(JOB_NAMES)})")
        self.config, self.jobs, self.environ, self.stop_timeout = config, dict(jobs), environ, stop_timeout
        self.stop_report_after = stop_report_after
        self.watch = watch  # starts the IDLE watchers: watch(wake_poll, stopping)
        self.on_stop = on_stop  # at a stop, once the scheduler is told: cuts the reads and SMTP connects in hand
        self.stopping = threading.Event()
        self.notifier = Notifier(environ)
        self._started = threading.Event()
        self._busy = threading.Condition()
        self._running_jobs = 0
        # Poll runs started and released: while more have started, a wake would be skipped as a second
        # instance, so it is kept (_poll_again) for the release (_after_job, which may come late).
        self._polls_started, self._polls_released, self._poll_again = 0, 0, False
        self._job_started: dict[str, float] = {}  # running job -> when it started (monotonic)
        self.hung_after = hung_after if hung_after is not None else hung_after_seconds(config)
        self._monotonic = monotonic
        self.scheduler: BlockingScheduler | None = None

    # -- building --------------------------------------------------------------------------------
    def build(self) -> BlockingScheduler:
        scheduler = BlockingScheduler(timezone=self.config.timezone,
                                      job_defaults={"max_instances": 1, "coalesce": True,
                                                    "misfire_grace_time": 3600})
        triggers = job_triggers(self.config)
        now = datetime.now(self.config.timezone)
        for name in JOB_NAMES:
            if name not in self.jobs:
                if name != "send":  # sending may be part of `poll`
                    log.warning("daemon job %s is not configured: it will not run", name)
                continue
            first = now  # catch up at start-up: every job is safe to run at any time
            scheduler.add_job(self._guarded(name, self.jobs[name]), triggers[name], id=name, name=name,
                              **({"next_run_time": first} if first else {}))
        interval = watchdog_seconds(self.environ)
        if interval:
            scheduler.add_job(self.ping_watchdog, IntervalTrigger(seconds=interval), id="watchdog",
                              name="watchdog")
        scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)
        scheduler.add_listener(self._after_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        return scheduler

    def _guarded(self, name: str, func: Job) -> Callable[[], None]:
        """One log line per run; an exception is logged, never kills the scheduler."""
        def job() -> None:
            with self._busy:
                if name == "poll":  # each run is released once (_after_job), one the stop skips too
                    self._polls_started += 1
                if self.stopping.is_set():
                    return
                self._running_jobs += 1
                self._job_started[name] = self._monotonic()
            started = clock.monotonic()
            try:
                result = func(self.stopping.is_set)
                log.info("job %s done in %.1f s%s", name, clock.monotonic() - started,
                         f": {result}" if result is not None else "")
            except Exception as exc:  # a job's failure is logged and retried at its next run
                log.error("job %s failed after %.1f s: %s: %s", name, clock.monotonic() - started,
                          type(exc).__name__, exc)
                log.debug("job %s traceback", name, exc_info=True)
            finally:
                with self._busy:
                    self._running_jobs -= 1
                    self._job_started.pop(name, None)
                    self._busy.notify_all()
        job.__name__ = f"mailbot_{name}"
        return job

    def stuck_jobs(self) -> list[str]:
        """The jobs running for longer than `hung_after`."""
        now = self._monotonic()
        with self._busy:
            return sorted(name for name, started in self._job_started.items() if now - started > self.hung_after)

    def ping_watchdog(self) -> bool:
        """WATCHDOG=1, unless a job is stuck: then systemd's watchdog restarts the daemon."""
        stuck = self.stuck_jobs()
        if stuck:
            log.error("job(s) %s running for over %.0f s: not pinging the systemd watchdog", ", ".join(stuck),
                      self.hung_after)
            return False
        return self.notifier.watchdog()

    # -- running ---------------------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, _frame=None) -> None:
        """The signal handler: only set the flag (see the module docstring)."""
        self.stopping.set()

    def _on_started(self, _event) -> None:
        self._started.set()
        self.notifier.ready()
        log.info("mailbot daemon ready: jobs %s, time zone %s", ", ".join(sorted(self.jobs)),
                 self.config.timezone.key)

    def _stop_when_asked(self) -> None:
        self.stopping.wait()
        self._started.wait()
        log.info("stop requested: finishing the jobs in hand")
        if self.stop_report_after:
            faulthandler.dump_traceback_later(self.stop_report_after, repeat=True)
        self.notifier.stopping()
        try:
            self.scheduler.shutdown(wait=False)
        except SchedulerNotRunningError:
            pass
        if self.on_stop is not None:
            self.on_stop()

    def _wait_for_jobs(self) -> bool:
        deadline = clock.monotonic() + self.stop_timeout
        with self._busy:
            while self._running_jobs:
                left = deadline - clock.monotonic()
                if left <= 0:
                    return False
                self._busy.wait(left)
        return True

    def wake_poll(self, reason: str = "") -> None:
        """Run the poll job now (new mail announced by IDLE). While a poll is held it runs once more
        when that one is released (the mail may have come after its search): asked for now, it would
        be skipped ("maximum number of running instances") and the mail wait for the next interval."""
        with self._busy:
            if self._polls_started > self._polls_released:
                self._poll_again = True
                log.debug("new mail (%s) while polling: polling again afterwards", reason)
                return
        self._run_poll_now(reason)

    def _after_job(self, event) -> None:
        """A listener: APScheduler calls it once the job's instance is released."""
        if event.job_id != "poll":
            return
        with self._busy:
            self._polls_released += 1
            if self._polls_started > self._polls_released:  # a later run holds it: its release looks
                return
            again, self._poll_again = self._poll_again, False
        if again:
            # From a thread of its own: this listener can run in the scheduler's thread (a job over
            # before APScheduler added its callback), whose bookkeeping would then overwrite the new
            # run time with the interval's; another thread's modify_job waits for that to finish.
            threading.Thread(target=self._run_poll_now, args=("mail announced during the last poll",),
                             name="mailbot-wake", daemon=True).start()

    def _run_poll_now(self, reason: str) -> None:
        if self.scheduler is not None and not self.stopping.is_set():
            try:
                self.scheduler.modify_job("poll", next_run_time=datetime.now(self.config.timezone))
            except Exception as exc:  # noqa: BLE001 - e.g. the scheduler is shutting down
                log.debug("could not wake the poll job (%s): %s", reason, exc)

    def run(self, install_signals: bool = True) -> int:
        """Block until SIGTERM/SIGINT (or `request_stop`); return the exit status, 0 on a clean stop."""
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # its per-run lines duplicate ours
        self.scheduler = self.build()
        previous = {}
        wakeup = None
        if install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self.request_stop)
            wakeup = _SignalWakeup(self.stopping)
        threading.Thread(target=self._stop_when_asked, name="mailbot-stop", daemon=True).start()
        if self.watch is not None and "poll" in self.jobs:
            self.watch(self.wake_poll, self.stopping)
        try:
            self.scheduler.start()  # blocks until the helper thread shuts it down
        finally:
            if wakeup is not None:
                wakeup.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        try:
            if not self._wait_for_jobs():
                log.error("jobs still running after %.0f s: exiting anyway", self.stop_timeout)
                return 1
        finally:
            if self.stop_report_after:
                faulthandler.cancel_dump_traceback_later()
        log.info("mailbot daemon stopped")
        return 0
