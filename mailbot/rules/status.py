"""Where every school stands for a month (SPEC 8 `status --json`). Pure: takes data, returns data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.config import School
from mailbot.rules.month import Month


@dataclass
class InForce:
    """The submission in force for one school and month, as stored."""

    school: str
    received_at: datetime
    late: bool
    enrolled: int
    participating: int
    two_plus_n: bool
    n: int | None
    services: list[str]


def school_state(school: School, month: str, *, submitted: bool, late: bool, excused: bool,
                 reporting: bool) -> str | None:
    """One school's state in `month`: on_time, late, missing or excused; None when it does not
    count (not active that month, or without a submission outside the reporting months)."""
    if not school.active_in(month):
        return None
    if submitted:
        return "late" if late else "on_time"
    if excused:
        return "excused"
    return "missing" if reporting else None


def missing_schools(month: str, schools: list[School], submitted: set[str], excused: set[str],
                    reporting: bool = True) -> list[School]:
    """The schools `month_status` calls missing: active, no submission in force, not excused."""
    return [school for school in schools
            if school_state(school, month, submitted=school.name in submitted, late=False,
                            excused=school.name in excused, reporting=reporting) == "missing"]


def month_status(month: str, schools: list[School], in_force: dict[str, InForce], excused: set[str],
                 deadline_day: int, tz: ZoneInfo, reporting: bool = True) -> dict:
    """Every active school's state for `month`; outside the reporting months nobody is missing."""
    entries = []
    totals = {"required": 0, "on_time": 0, "late": 0, "missing": 0, "enrolled": 0, "participating": 0,
              "two_plus_n_schools": 0, "two_plus_three_schools": 0}
    for school in schools:
        sub = in_force.get(school.name)
        state = school_state(school, month, submitted=sub is not None, late=sub is not None and sub.late,
                             excused=school.name in excused, reporting=reporting)
        if state is None:
            continue
        if state != "excused":
            totals["required"] += 1 if reporting or sub is not None else 0
            totals[state] += 1
        entry = {"name": school.name, "level": school.level, "state": state,
                 "submitted_at": sub.received_at.astimezone(tz).isoformat() if sub else None,
                 "enrolled": sub.enrolled if sub else None, "participating": sub.participating if sub else None,
                 "two_plus_n": sub.two_plus_n if sub else None, "n": sub.n if sub else None,
                 "services": list(sub.services) if sub else []}
        if sub is not None:
            totals["enrolled"] += sub.enrolled
            totals["participating"] += sub.participating
            totals["two_plus_n_schools"] += 1 if sub.two_plus_n else 0
            totals["two_plus_three_schools"] += 1 if sub.two_plus_n and (sub.n or 0) >= 3 else 0
        entries.append(entry)
    return {"month": month, "deadline": Month.parse(month).deadline(deadline_day, tz).date().isoformat(),
            "schools": entries, "totals": totals}
