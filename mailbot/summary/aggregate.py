"""The figures of the monthly summary (SPEC 7), as pure functions of the stored rows.

Who is on time, late, missing or excused comes from `month_status`, the same definition the
`status` command and the reminders use; this module only adds it up by level and over months.

Rates are counted over schools (roster entries), never campuses. Their denominator is the number
of schools required to report (excused schools are left out): the targets say "every school runs
2+N" and "80% of city schools run 2+3", so a school that has not reported has not shown that it
does and counts as not meeting them. The participation rate is over the reported students only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from mailbot.config import LEVELS, School
from mailbot.rules.status import InForce, month_status
from mailbot.rules.month import Month

SCOPES = (*LEVELS, "all")  # every figure is given for each
TARGET_TWO_PLUS_N = 1.0  # every compulsory school runs "2+N"
TARGET_TWO_PLUS_THREE = 0.8  # at least 80% of city schools run "2+3"
TOP_SERVICES = 10


@dataclass(frozen=True)
class StoredRow:
    """The submission in force for one school and month, as the database holds it."""

    school: str
    month: str  # "YYYY-MM"
    received_at: datetime  # aware
    late: bool
    sender: str
    schools_count: int
    enrolled: int
    participating: int
    two_plus_n: bool
    n: int | None
    services: tuple[str, ...] = ()

    def as_in_force(self) -> InForce:
        return InForce(self.school, self.received_at, self.late, self.enrolled, self.participating,
                       self.two_plus_n, self.n, list(self.services))


@dataclass(frozen=True)
class Rate:
    """A share with its parts kept, so every percentage can be traced back to counts."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None

    def meets(self, target: float) -> bool | None:
        """None when there is nothing to measure (no school required)."""
        # Integer arithmetic: 4/5 must meet 80% exactly, whatever floating point says.
        return None if not self.whole else self.part * 1000 >= round(target * 1000) * self.whole


@dataclass
class Figures:
    """The key figures of one scope (primary, middle or all) in one month."""

    required: int = 0  # active schools that must report (excused ones left out)
    on_time: int = 0
    late: int = 0
    missing: int = 0
    excused: int = 0
    campuses: int = 0  # 开展课后服务学校数, summed over the reported rows
    enrolled: int = 0
    participating: int = 0
    two_plus_n_schools: int = 0
    two_plus_three_schools: int = 0

    @property
    def reported(self) -> int:
        return self.on_time + self.late

    @property
    def reporting(self) -> Rate:
        return Rate(self.reported, self.required)

    @property
    def participation(self) -> Rate:
        return Rate(self.participating, self.enrolled)

    @property
    def two_plus_n(self) -> Rate:
        return Rate(self.two_plus_n_schools, self.required)

    @property
    def two_plus_three(self) -> Rate:
        return Rate(self.two_plus_three_schools, self.required)


@dataclass
class SchoolLine:
    """One roster school in the month: its state and, when it reported, the row in force."""

    name: str
    level: str
    state: str  # on_time | late | missing | excused
    contact: str | None = None
    phone: str | None = None
    row: StoredRow | None = None

    @property
    def two_plus_three(self) -> bool:
        return self.row is not None and runs_two_plus_three(self.row.two_plus_n, self.row.n)


@dataclass(frozen=True)
class ServiceCount:
    name: str
    schools: int  # reported schools offering it
    primary: int
    middle: int


@dataclass
class MonthFigures:
    month: str
    reporting_month: bool
    scopes: dict[str, Figures]


@dataclass
class Summary:
    """Everything the email and the 汇总表 show for one month."""

    month: str
    deadline: date
    reporting_month: bool  # outside the reporting months nobody is counted missing
    scopes: dict[str, Figures]
    schools: list[SchoolLine]  # primary first, then middle, roster order within a level
    top_services: list[ServiceCount]
    trend: list[MonthFigures]  # every month on record up to this one, oldest first
    previous: MonthFigures | None = None  # the month on record before this one
    missing: list[SchoolLine] = field(default_factory=list)
    late: list[SchoolLine] = field(default_factory=list)
    excused: list[SchoolLine] = field(default_factory=list)


def runs_two_plus_three(two_plus_n: bool | None, n: int | None) -> bool:
    """"2+3": "2+N" with at least three distinct extension services (SPEC 2)."""
    return bool(two_plus_n) and (n or 0) >= 3


def school_lines(month: str, schools: list[School], rows: Mapping[str, StoredRow], excused: set[str],
                 deadline_day: int, tz: ZoneInfo, reporting: bool) -> list[SchoolLine]:
    """Every active roster school's line for `month`, primary first, with its state from `month_status`."""
    status = month_status(month, schools, {name: row.as_in_force() for name, row in rows.items()},
                          excused, deadline_day, tz, reporting)
    roster = {school.name: school for school in schools}
    lines = []
    for entry in status["schools"]:
        school = roster[entry["name"]]
        lines.append(SchoolLine(name=school.name, level=school.level, state=entry["state"],
                                contact=school.contact, phone=school.phone,
                                row=rows.get(school.name) if entry["state"] in ("on_time", "late") else None))
    order = {level: index for index, level in enumerate(LEVELS)}
    return sorted(lines, key=lambda line: order.get(line.level, len(LEVELS)))  # stable: roster order kept


def figures_of(lines: Iterable[SchoolLine]) -> dict[str, Figures]:
    """Add the school lines up for each scope."""
    scopes = {scope: Figures() for scope in SCOPES}
    for line in lines:
        for scope in (line.level, "all"):
            figures = scopes.get(scope)
            if figures is None:
                continue
            if line.state == "excused":
                figures.excused += 1
                continue
            figures.required += 1
            setattr(figures, line.state, getattr(figures, line.state) + 1)
            if line.row is not None:
                figures.campuses += line.row.schools_count
                figures.enrolled += line.row.enrolled
                figures.participating += line.row.participating
                figures.two_plus_n_schools += 1 if line.row.two_plus_n else 0
                figures.two_plus_three_schools += 1 if line.two_plus_three else 0
    return scopes


def top_services(lines: Iterable[SchoolLine], limit: int = TOP_SERVICES) -> list[ServiceCount]:
    """The extension services most schools offer, most common first (ties by name)."""
    counts: dict[str, Counter] = {}
    for line in lines:
        if line.row is None:
            continue
        for service in set(line.row.services):
            counts.setdefault(service, Counter())[line.level] += 1
    ranked = sorted(counts.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return [ServiceCount(name, sum(c.values()), c["primary"], c["middle"]) for name, c in ranked[:limit]]


def in_force_by_month(rows: Iterable[StoredRow]) -> dict[str, dict[str, StoredRow]]:
    """month -> school -> row; for the same school and month the latest received wins."""
    by_month: dict[str, dict[str, StoredRow]] = {}
    for row in rows:
        current = by_month.setdefault(row.month, {}).get(row.school)
        if current is None or row.received_at >= current.received_at:
            by_month[row.month][row.school] = row
    return by_month


@dataclass(frozen=True)
class LevelTotals:
    """What one level's rows in force add up to in one month (the database adds them up:
    summary.load.trend_totals), counting only schools active on the roster that month."""

    reported: int = 0
    late: int = 0
    campuses: int = 0
    enrolled: int = 0
    participating: int = 0
    two_plus_n: int = 0
    two_plus_three: int = 0  # rows where runs_two_plus_three holds


def trend_from_totals(totals: Mapping[str, Mapping[str, LevelTotals]], schools: list[School],
                      reporting_months: Iterable[int] = range(1, 13)) -> list[MonthFigures]:
    """The earlier months of the trend (month -> level -> totals), oldest first: the figures
    `figures_of(school_lines(...))` gives for them with nobody excused, without a line per school and
    month. Required: the active schools in a reporting month (month_status's rule), else only those
    that reported."""
    reporting = set(reporting_months)
    always = Counter(s.level for s in schools if s.active_from is None and s.active_until is None)
    windowed = [s for s in schools if s.active_from is not None or s.active_until is not None]
    trend = []
    for m in sorted(totals):
        is_reporting = Month.parse(m).is_reporting(reporting)
        active = always + Counter(s.level for s in windowed if s.active_in(m))
        scopes = {scope: Figures() for scope in SCOPES}
        for level in LEVELS:
            t = totals[m].get(level, LevelTotals())
            required = active[level] if is_reporting else t.reported
            for figures in (scopes[level], scopes["all"]):
                figures.required += required
                figures.on_time += t.reported - t.late
                figures.late += t.late
                figures.missing += required - t.reported
                figures.campuses += t.campuses
                figures.enrolled += t.enrolled
                figures.participating += t.participating
                figures.two_plus_n_schools += t.two_plus_n
                figures.two_plus_three_schools += t.two_plus_three
        trend.append(MonthFigures(m, is_reporting, scopes))
    return trend


def summarise(month: str, schools: list[School], rows: Iterable[StoredRow], excused: set[str], *,
              deadline_day: int, tz: ZoneInfo, reporting_months: Iterable[int] = range(1, 13),
              excused_earlier: Mapping[str, set[str]] | None = None,
              earlier: Sequence[MonthFigures] | None = None,
              top: int = TOP_SERVICES) -> Summary:
    """The summary of `month` from the rows in force (this month and earlier ones, for the trend).

    `excused` holds the schools excused this month; `excused_earlier` the same for earlier months
    (month -> names), once excuses are stored. Rows of later months are ignored. `earlier`: the
    trend's earlier months already added up (`trend_from_totals`); then only this month's rows are
    read, and a province of 10,000 schools over three years is not added up school by school.
    """
    reporting = set(reporting_months)
    by_month = in_force_by_month(row for row in rows if row.month <= month and (earlier is None or row.month == month))
    excused_earlier = excused_earlier or {}
    trend = [point for point in earlier or () if point.month < month]
    lines: list[SchoolLine] = []
    for m in sorted(set(by_month) | {month}) if earlier is None else [month]:
        is_reporting = Month.parse(m).is_reporting(reporting)
        month_excused = excused if m == month else set(excused_earlier.get(m, ()))
        month_lines = school_lines(m, schools, by_month.get(m, {}), month_excused, deadline_day, tz,
                                       is_reporting)
        trend.append(MonthFigures(m, is_reporting, figures_of(month_lines)))
        if m == month:
            lines = month_lines
    this = trend[-1]
    return Summary(
        month=month,
        deadline=Month.parse(month).deadline(deadline_day, tz).date(),
        reporting_month=this.reporting_month,
        scopes=this.scopes,
        schools=lines,
        top_services=top_services(lines, top),
        trend=trend,
        previous=trend[-2] if len(trend) > 1 else None,
        missing=[line for line in lines if line.state == "missing"],
        late=[line for line in lines if line.state == "late"],
        excused=[line for line in lines if line.state == "excused"],
    )
