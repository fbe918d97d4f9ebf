"""The summary's figures: states from month_status, sums by level, targets, trend, and a property
test that what the summary says equals the sums of the rows stored in the database."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.orm import Session

from mailbot.config import School
from mailbot.db.models import Base, Submission
from mailbot.rules.status import month_status
from mailbot.summary.aggregate import Rate, StoredRow, summarise, trend_from_totals
from mailbot.summary.load import rows_in_force, trend_totals

TZ = ZoneInfo("Asia/Shanghai")
SCHOOLS = [School("甲小学", "primary", contact="陈老师", phone="13800000001"), School("乙小学", "primary"),
           School("丙小学", "primary"), School("丁中学", "middle"), School("戊中学", "middle"),
           School("己中学", "middle", active_until="2022-09")]


def row(school, month="2022-10", *, late=False, enrolled=1000, participating=900, two_plus_n=True,
        services=("科普", "文艺", "劳动"), day=20, campuses=1):
    return StoredRow(school=school, month=month, received_at=datetime(int(month[:4]), int(month[5:]), day, 2,
                                                                       tzinfo=timezone.utc),
                     late=late, sender="x@163.com", schools_count=campuses, enrolled=enrolled,
                     participating=participating, two_plus_n=two_plus_n,
                     n=len(services) if two_plus_n else None, services=tuple(services))


def october(rows, excused=frozenset(), **kwargs):
    return summarise("2022-10", SCHOOLS, rows, set(excused), deadline_day=24, tz=TZ, **kwargs)


def test_states_come_from_month_status_and_add_up_by_level():
    rows = [row("甲小学"), row("乙小学", late=True, day=25, services=("科普",)), row("丁中学", two_plus_n=False, services=())]
    summary = october(rows, excused={"戊中学"})

    states = {line.name: line.state for line in summary.schools}
    assert states == {"甲小学": "on_time", "乙小学": "late", "丙小学": "missing", "丁中学": "on_time",
                      "戊中学": "excused"}  # 己中学 left the roster in September
    primary, middle, total = (summary.scopes[s] for s in ("primary", "middle", "all"))
    assert (primary.required, primary.on_time, primary.late, primary.missing) == (3, 1, 1, 1)
    assert (middle.required, middle.excused, middle.reported) == (1, 1, 1)
    assert total.required == primary.required + middle.required == 4
    assert (total.enrolled, total.participating) == (3000, 2700)
    assert total.two_plus_n == Rate(2, 4) and total.two_plus_three == Rate(1, 4)
    assert [line.name for line in summary.missing] == ["丙小学"]
    assert [line.name for line in summary.late] == ["乙小学"]
    assert [line.name for line in summary.excused] == ["戊中学"]
    # The same totals as `status --json`.
    status = month_status("2022-10", SCHOOLS, {r.school: r.as_in_force() for r in rows}, {"戊中学"}, 24, TZ)
    assert status["totals"]["two_plus_three_schools"] == total.two_plus_three_schools
    assert status["totals"]["required"] == total.required


def test_targets_are_met_exactly_at_the_threshold():
    assert Rate(4, 5).meets(0.8) is True
    assert Rate(79, 100).meets(0.8) is False
    assert Rate(20, 20).meets(1.0) is True and Rate(19, 20).meets(1.0) is False
    assert Rate(0, 0).meets(0.8) is None and Rate(0, 0).value is None


def test_two_plus_three_needs_two_plus_n_and_three_services():
    rows = [row("甲小学", services=("科普", "文艺")), row("乙小学", two_plus_n=False, services=("科普", "文艺", "劳动")),
            row("丙小学", services=("科普", "文艺", "劳动", "阅读"))]
    summary = october(rows)
    assert summary.scopes["primary"].two_plus_three_schools == 1
    assert summary.scopes["primary"].two_plus_n_schools == 2


def test_rates_count_schools_not_campuses():
    summary = october([row("甲小学", campuses=3), row("乙小学")])
    assert summary.scopes["primary"].campuses == 4
    assert summary.scopes["primary"].two_plus_n == Rate(2, 3)


def test_trend_lists_every_month_on_record_and_the_change():
    rows = [row("甲小学", "2022-08"), row("甲小学", "2022-09"), row("乙小学", "2022-09"), row("甲小学"),
            row("甲小学", "2022-11")]  # a later month is not part of October's summary
    summary = october(rows)
    assert [point.month for point in summary.trend] == ["2022-08", "2022-09", "2022-10"]
    assert summary.previous.month == "2022-09"
    assert summary.previous.scopes["all"].reported == 2
    assert summary.scopes["all"].reported == 1


def test_outside_the_reporting_months_nobody_is_missing():
    summary = october([row("甲小学")], reporting_months=[3, 4, 5])
    assert not summary.reporting_month
    assert summary.scopes["all"].missing == 0 and summary.scopes["all"].required == 1


def test_most_common_services_counted_once_per_school():
    rows = [row("甲小学", services=("科普", "文艺", "科普")), row("乙小学", services=("科普",)),
            row("丁中学", services=("文艺", "劳动"))]
    top = october(rows).top_services
    assert [(s.name, s.schools, s.primary, s.middle) for s in top] == [("文艺", 2, 1, 1), ("科普", 2, 2, 0),
                                                                        ("劳动", 1, 0, 1)]


def test_an_empty_roster_and_no_rows_give_zeros_not_errors():
    summary = summarise("2022-10", [], [], set(), deadline_day=24, tz=TZ)
    assert summary.scopes["all"].required == 0 and summary.scopes["all"].two_plus_n.value is None
    assert summary.schools == [] and summary.trend[-1].month == "2022-10"


# -- property: the summary equals the sums of the stored rows ----------------------------------------
MONTHS = ("2022-08", "2022-09", "2022-10")
stored = st.fixed_dictionaries({
    "school": st.integers(0, len(SCHOOLS) + 1),  # the last two are not in the roster
    "month": st.sampled_from(MONTHS),
    "late": st.booleans(),
    "enrolled": st.integers(1, 5000),
    "participating_share": st.floats(0, 1),
    "two_plus_n": st.booleans(),
    "n": st.integers(0, 6),
    "campuses": st.integers(1, 3),
    "replaced": st.booleans(),
    "voided": st.booleans(),
})


@lru_cache(maxsize=1)
def _schema() -> sqlite3.Connection:
    """An in-memory database holding the schema, built once: create_all for every example cost
    about 14 ms, most of these tests' time."""
    template = sqlite3.connect(":memory:", check_same_thread=False)
    engine = create_engine("sqlite://", creator=lambda: template, poolclass=StaticPool)
    Base.metadata.create_all(engine)
    return template


def _session_with(submissions: list[dict]) -> Session:
    database = sqlite3.connect(":memory:", check_same_thread=False)
    _schema().backup(database)  # a fresh database, the same as create_all makes
    engine = create_engine("sqlite://", creator=lambda: database, poolclass=StaticPool)
    session = Session(engine)
    base = datetime(2022, 10, 1, tzinfo=timezone.utc)
    names = [s.name for s in SCHOOLS] + ["不在名册小学", "不在名册中学"]
    for index, data in enumerate(submissions):
        sub = Submission(school=names[data["school"]], month=data["month"], sender="a@163.com",
                         received_at=base + timedelta(minutes=index), late=data["late"], created_at=base,
                         schools_count=data["campuses"], enrolled=data["enrolled"],
                         participating=int(data["enrolled"] * data["participating_share"]),
                         two_plus_n=data["two_plus_n"], services=[f"项目{i}" for i in range(data["n"])],
                         n=data["n"], voided_at=base if data["voided"] else None)
        session.add(sub)
        session.flush()
        if data["replaced"]:
            sub.replaced_by = sub.id  # any non-null value: no longer in force
    session.commit()
    return session


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored, max_size=25), st.sets(st.sampled_from([s.name for s in SCHOOLS])))
def test_figures_equal_the_sums_of_the_stored_rows(submissions, excused):
    session = _session_with(submissions)
    summary = october(rows_in_force(session, "2022-10", "2022-10"), excused=excused)
    assert october(rows_in_force(session), excused=excused).scopes == summary.scopes

    # The expectation, computed independently from the stored rows with plain SQL semantics.
    active = {s.name: s.level for s in SCHOOLS if s.active_in("2022-10")}
    in_force = {}
    for sub in session.query(Submission).filter(Submission.month == "2022-10").order_by(Submission.id):
        if sub.replaced_by is None and sub.voided_at is None and sub.school in active:
            in_force[sub.school] = sub  # the latest one in force wins, as in submissions_in_force
    session.close()
    for scope in ("primary", "middle", "all"):
        mine = {name: sub for name, sub in in_force.items() if scope == "all" or active[name] == scope}
        names = [name for name, level in active.items() if scope == "all" or level == scope]
        excused_here = {name for name in names if name in excused and name not in mine}
        figures = summary.scopes[scope]
        assert figures.enrolled == sum(s.enrolled for s in mine.values())
        assert figures.participating == sum(s.participating for s in mine.values())
        assert figures.campuses == sum(s.schools_count for s in mine.values())
        assert figures.reported == len(mine)
        assert figures.late == sum(1 for s in mine.values() if s.late)
        assert figures.excused == len(excused_here)
        assert figures.required == len(names) - len(excused_here)
        assert figures.missing == figures.required - len(mine)
        assert figures.two_plus_n_schools == sum(1 for s in mine.values() if s.two_plus_n)
        assert figures.two_plus_three_schools == sum(1 for s in mine.values() if s.two_plus_n and s.n >= 3)
    assert summary.scopes["all"].enrolled == summary.scopes["primary"].enrolled + summary.scopes["middle"].enrolled
    assert sum(1 for line in summary.schools if line.row is not None) == len(in_force)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stored, max_size=25, unique_by=lambda d: (d["school"], d["month"])),
       st.sampled_from([range(1, 13), [9], [3, 4, 5]]))
def test_the_trend_added_up_by_the_database_equals_the_trend_school_by_school(submissions, reporting_months):
    """The summary's earlier months come from one GROUP BY (summary.load.trend_totals); they must
    say what month_status says school by school. One row in force per school and month, as
    record_rows keeps it."""
    session = _session_with(submissions)
    # One of the two schools off SCHOOLS joins this roster in September: not counted in August.
    schools = SCHOOLS + [School("不在名册小学", "primary", active_from="2022-09")]
    earlier = trend_from_totals(trend_totals(session, schools, "2022-10"), schools, reporting_months)
    by_database = summarise("2022-10", schools, rows_in_force(session, "2022-10", "2022-10"), set(), deadline_day=24,
                            tz=TZ, reporting_months=reporting_months, earlier=earlier)
    school_by_school = summarise("2022-10", schools, rows_in_force(session), set(), deadline_day=24, tz=TZ,
                                 reporting_months=reporting_months)
    session.close()
    assert by_database.trend == school_by_school.trend
    assert by_database.schools == school_by_school.schools
