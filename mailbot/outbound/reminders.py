"""Reminders (SPEC 6): who is due which stage now, and queueing those emails.

The decision (`plan_reminders`) is a pure function of the configuration, the month, the clock and
what the database says (who has a submission in force, who is excused, which outbox keys exist).
`queue_reminders` is the thin adapter that reads those facts and queues the mail.

When a stage may go out (its window):
- It opens at its configured day and time (local). With `working_days_only`, a stage on a holiday
  or weekend moves to the previous working day when it is on or before the deadline day (the school
  must hear before the deadline) and to the next working day when it is after it (`overdue`).
  Make-up working days (调休) count as working days.
- A missed run is caught up: the daemon checks at start-up and hourly, and the outbox key
  `remind:<month>:<stage>:<school>` is the claim, so a restart never repeats a stage.
- The day after: a stage still goes out late as long as what it says stays true and no later stage
  has opened. `upcoming` stays open until `due` opens; a stage on or before the deadline day closes
  at the deadline (after it, "please send by the 24th" would be wrong, and `overdue` takes over);
  the last stage stays open until the end of the month. `remind --stage NAME` sends a stage by hand
  at any time (still at most once per school).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from mailbot.config import Config, School, Stage
from mailbot.rules.month import Month
from mailbot.rules.status import missing_schools

log = logging.getLogger(__name__)

STAFF_STAGE = "overdue"  # after this stage the section staff get the list of missing schools
_MAX_SHIFT_DAYS = 40  # longer than any Chinese holiday run; guards against a calendar with no working day


# -- working days ---------------------------------------------------------------------------------
class WorkingCalendar(Protocol):
    def covers(self, year: int) -> bool:
        """Whether the holiday data knows this year."""

    def is_working_day(self, day: date) -> bool:
        """Whether people are at work on `day` (weekends only when the year is not covered)."""


class WeekendCalendar:
    """Monday to Friday: the fallback for years the holiday package does not know."""

    def covers(self, year: int) -> bool:
        return False

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5


class ChineseCalendar:
    """The official holidays and make-up working days (调休), from the `chinesecalendar` package."""

    def __init__(self):
        try:
            import chinese_calendar  # the PyPI package `chinesecalendar`
        except ImportError:  # not installed: behave like an uncovered year (weekends only, operator told)
            chinese_calendar = None
        self._cc = chinese_calendar

    def covers(self, year: int) -> bool:
        if self._cc is None:
            return False
        try:
            self._cc.is_workday(date(year, 6, 1))
        except NotImplementedError:  # the package raises this for years it has no data for
            return False
        return True

    def is_working_day(self, day: date) -> bool:
        if not self.covers(day.year):
            return WeekendCalendar().is_working_day(day)
        return bool(self._cc.is_workday(day))


def shift_to_working_day(day: date, forward: bool, calendar: WorkingCalendar) -> date:
    """`day` itself if it is a working day, else the nearest working day before (or after) it."""
    step = timedelta(days=1 if forward else -1)
    candidate = day
    for _ in range(_MAX_SHIFT_DAYS):
        if calendar.is_working_day(candidate):
            return candidate
        candidate += step
    return day  # a calendar without any working day in sight: keep the configured day


# -- stage times ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageWindow:
    """When one stage of one month may go out: from `opens` (inclusive) to `closes` (exclusive)."""

    name: str
    opens: datetime
    closes: datetime
    configured_day: date  # before any holiday move
    after_deadline: bool


def stage_windows(stages: list[Stage], month: str, deadline_day: int, tz: ZoneInfo,
                  calendar: WorkingCalendar | None = None) -> list[StageWindow]:
    """The stages of `month` in time order. `calendar` set means working days only."""
    value = Month.parse(month)
    deadline = value.deadline(deadline_day, tz) + timedelta(seconds=1)
    end_of_month = datetime.combine(value.next().day(1), time(0), tzinfo=tz)
    opened = []
    for stage in stages:
        configured = value.day(stage.day)  # day 31 in a 30-day month: the 30th
        after = stage.day > deadline_day
        day = shift_to_working_day(configured, after, calendar) if calendar else configured
        opened.append((datetime.combine(day, stage.at, tzinfo=tz), stage.name, configured, after))
    opened.sort()
    windows = []
    for i, (opens, name, configured, after) in enumerate(opened):
        closes = opened[i + 1][0] if i + 1 < len(opened) else max(end_of_month, opens + timedelta(days=1))
        if not after:
            closes = min(closes, deadline)
        windows.append(StageWindow(name, opens, max(closes, opens), configured, after))
    return windows


def uncovered_years(month: str, calendar: WorkingCalendar) -> set[int]:
    """The month's year, when the holiday data lacks it (a stage moved across New Year is rare
    enough to be judged by the weekend fallback without a separate notice)."""
    year = Month.parse(month).year
    return set() if calendar.covers(year) else {year}


# -- the decision ---------------------------------------------------------------------------------
def reminder_key(month: str, stage: str, school: str) -> str:
    return f"remind:{month}:{stage}:{school}"


def staff_key(month: str, mailbox: str) -> str:
    return f"staff-missing:{month}:{mailbox}"


@dataclass(frozen=True)
class DueReminder:
    school: School
    stage: str


@dataclass
class StaffList:
    """The missing schools of one section, for its staff, after the overdue stage."""

    mailbox: str
    to: list[str]
    schools: list[School]


@dataclass
class ReminderPlan:
    month: str
    reminders: list[DueReminder] = field(default_factory=list)
    staff_lists: list[StaffList] = field(default_factory=list)
    open_stages: list[str] = field(default_factory=list)
    uncovered_years: set[int] = field(default_factory=set)  # holiday data missing: weekends only


def plan_reminders(config: Config, month: str, now: datetime, submitted: set[str], excused: set[str],
                   sent_keys: set[str], calendar: WorkingCalendar | None = None,
                   only_stage: str | None = None) -> ReminderPlan:
    """Who is due which stage at `now`.

    `submitted`: schools with an accepted submission in force for the month; `excused`: schools the
    operator excused; `sent_keys`: outbox keys already queued. `only_stage` forces that stage
    whatever its window (the operator's `remind --stage`). `calendar` defaults to the Chinese
    holiday calendar when the schedule says working days only.
    """
    schedule = config.schedule
    plan = ReminderPlan(month)
    if not Month.parse(month).is_reporting(schedule.reporting_months):
        return plan  # outside the campaign nobody is reminded (SPEC 6)
    if schedule.working_days_only:
        calendar = calendar or ChineseCalendar()
        plan.uncovered_years = uncovered_years(month, calendar)
    else:
        calendar = None
    windows = stage_windows(schedule.stages, month, schedule.deadline_day, config.timezone, calendar)
    if only_stage is not None:
        plan.open_stages = [w.name for w in windows if w.name == only_stage]
    else:
        plan.open_stages = [w.name for w in windows if w.opens <= now < w.closes]
    missing = missing_schools(month, config.schools, submitted, excused)
    for stage in plan.open_stages:
        plan.reminders += [DueReminder(s, stage) for s in missing
                           if reminder_key(month, stage, s.name) not in sent_keys]
    names = [w.name for w in windows]
    staff_stage = STAFF_STAGE if STAFF_STAGE in names else (names[-1] if names else None)
    if staff_stage in plan.open_stages:
        for mailbox in config.mailboxes:
            if not mailbox.staff or staff_key(month, mailbox.name) in sent_keys:
                continue
            theirs = [s for s in missing if config.mailbox_for_level(s.level).name == mailbox.name]
            if theirs:
                plan.staff_lists.append(StaffList(mailbox.name, list(mailbox.staff), theirs))
    return plan


def months_to_check(now: datetime, tz: ZoneInfo) -> list[str]:
    """The current month, and the previous one while its last stage may still be open (a stage on
    the 30th moved past a holiday lands in the next month)."""
    this = Month.of(now, tz)
    return [str(this.previous()), str(this)]


# -- queueing (the adapter) -----------------------------------------------------------------------
def _template_kind(stage: str, config: Config) -> str:
    """The three default stages have their own wording; another configured stage borrows the
    wording of its place relative to the deadline."""
    if stage in ("upcoming", "due", "overdue"):
        return f"reminder_{stage}"
    day = next((s.day for s in config.schedule.stages if s.name == stage), config.schedule.deadline_day)
    deadline = config.schedule.deadline_day
    return "reminder_upcoming" if day < deadline else "reminder_due" if day == deadline else "reminder_overdue"


def _sent_keys(session, month: str) -> set[str]:
    from sqlalchemy import or_, select

    from mailbot.db.models import Outbox
    query = select(Outbox.key).where(or_(Outbox.key.startswith(f"remind:{month}:", autoescape=True),
                                         Outbox.key.startswith(f"staff-missing:{month}:", autoescape=True)))
    return set(session.scalars(query))


def _queue_once(session, **kwargs) -> bool:
    """Queue inside a savepoint: a second process that claimed the same key first is not an error."""
    from sqlalchemy.exc import IntegrityError

    from mailbot.outbound.outbox import queue_mail
    try:
        with session.begin_nested():
            return queue_mail(session, **kwargs) is not None
    except IntegrityError:
        log.info("outbox key %s was claimed by another process", kwargs["key"])
        return False


def queue_reminders(session, config: Config, now: datetime, month: str | None = None, stage: str | None = None,
                    dry_run: bool = False, calendar: WorkingCalendar | None = None) -> list[dict]:
    """Queue the reminders and staff lists due at `now` (in the caller's transaction) and return
    one dict per email: {"kind", "key", "month", "stage", "mailbox", "to", "school"/"schools",
    "queued"}. With `dry_run` nothing is written. Without `month`, the current month (and the
    previous one, see `months_to_check`)."""
    from mailbot.db.campaign import excused_schools
    from mailbot.db.queries import submissions_in_force

    if stage is not None and stage not in {s.name for s in config.schedule.stages}:
        raise ValueError(f"no stage named {stage!r} in [schedule.stages]")
    report: list[dict] = []
    for m in [month] if month else months_to_check(now, config.timezone):
        plan = plan_reminders(config, m, now, set(submissions_in_force(session, m)), excused_schools(session, m),
                              _sent_keys(session, m), calendar, only_stage=stage)
        if plan.uncovered_years and not dry_run:
            _tell_operator_calendar(session, config, now, plan.uncovered_years)
        for item in plan.reminders:
            mailbox = config.mailbox_for_level(item.school.level)
            key = reminder_key(m, item.stage, item.school.name)
            entry = {"kind": _template_kind(item.stage, config), "key": key, "month": m, "stage": item.stage,
                     "mailbox": mailbox.name, "to": list(item.school.emails), "school": item.school.name,
                     "queued": False}
            report.append(entry)
            if not item.school.emails:
                log.warning("school %s has no email address in the roster: no %s reminder for %s",
                            item.school.name, item.stage, m)
                continue
            if dry_run:
                continue
            # Imported only with something to queue: Jinja2 and the MIME builder are about 2 MB the
            # idle daemon's hourly check does not need.
            from mailbot.outbound.compose import compose
            from mailbot.outbound.responses import XLSX_TYPE, section_label
            composed = compose(entry["kind"], _reminder_context(config, mailbox, item.school, m, now))
            attachment = _prefilled(config, mailbox, item.school, m)
            entry["queued"] = _queue_once(
                session, key=key, kind=entry["kind"], mailbox=mailbox, to=list(item.school.emails),
                composed=composed, now=now, attachments=[(attachment[0], attachment[1], XLSX_TYPE)],
                auto_submitted="auto-generated", reply_to=mailbox.address,
                from_name=f"安溪县教育局{section_label(mailbox)}")
            if entry["queued"]:
                log.info("reminder %s queued: mailbox %s, school %s, month %s", item.stage, mailbox.name,
                         item.school.name, m)
        for staff in plan.staff_lists:
            mailbox = config.mailbox(staff.mailbox)
            key = staff_key(m, staff.mailbox)
            entry = {"kind": "staff_missing", "key": key, "month": m, "stage": STAFF_STAGE, "mailbox": mailbox.name,
                     "to": staff.to, "schools": [s.name for s in staff.schools], "queued": False}
            report.append(entry)
            if dry_run:
                continue
            from mailbot.outbound.compose import compose
            composed = compose("staff_missing", _staff_context(config, mailbox, staff, m))
            entry["queued"] = _queue_once(session, key=key, kind="staff_missing", mailbox=mailbox, to=staff.to,
                                          composed=composed, now=now, auto_submitted="auto-generated",
                                          from_name="mailbot")
            if entry["queued"]:
                log.info("missing-school list queued: mailbox %s, month %s, %d schools", mailbox.name, m,
                         len(staff.schools))
    return report


def _prefilled(config: Config, mailbox, school: School, month: str) -> tuple[str, bytes]:
    from mailbot.outbound.prefilled import build_template, template_filename  # openpyxl: only when needed
    data = build_template(school.name, school.level, month, deadline_day=config.schedule.deadline_day,
                          mailbox_address=mailbox.address)
    return template_filename(school.name, month), data


def _reminder_context(config: Config, mailbox, school: School, month: str, now: datetime) -> dict:
    from mailbot.outbound.responses import section_label
    from mailbot.timeutil import label_date
    value = Month.parse(month)
    deadline = value.deadline(config.schedule.deadline_day, config.timezone)
    days_left = (deadline.date() - now.astimezone(config.timezone).date()).days
    return {"school_name": school.name, "school_names": [school.name], "month_label": value.label,
            "deadline_label": label_date(deadline),
            "deadline_short": f"{deadline.month}月{deadline.day}日", "days_left": days_left,
            "mailbox_label": section_label(mailbox), "mailbox_address": mailbox.address}


def _staff_context(config: Config, mailbox, staff: StaffList, month: str) -> dict:
    from mailbot.outbound.responses import section_label
    from mailbot.timeutil import label_date
    value = Month.parse(month)
    deadline = value.deadline(config.schedule.deadline_day, config.timezone)
    return {"month_label": value.label, "deadline_label": label_date(deadline),
            "mailbox_label": section_label(mailbox), "mailbox_address": mailbox.address,
            "schools": [{"name": s.name, "contact": s.contact or "", "phone": s.phone or "",
                         "emails": list(s.emails)} for s in staff.schools]}


_warned_years: set[int] = set()


def _tell_operator_calendar(session, config: Config, now: datetime, years: set[int]) -> None:
    """Once per year (the outbox key is the claim): the holiday data does not know this year."""
    from mailbot.outbound.compose import compose
    for year in sorted(years):
        if not config.operator_email:
            if year not in _warned_years:  # once per process, not at every hourly check
                _warned_years.add(year)
                log.warning("the holiday calendar has no data for %d: reminders use weekends only "
                            "(no [operator] email to tell)", year)
            continue
        composed = compose("operator_calendar", {"year": year})
        if _queue_once(session, key=f"operator-calendar:{year}", kind="operator_calendar",
                       mailbox=config.mailboxes[0], to=[config.operator_email], composed=composed, now=now,
                       auto_submitted="auto-generated", from_name="mailbot"):
            log.warning("the holiday calendar has no data for %d: reminders use weekends only; operator told", year)
