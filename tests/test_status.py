from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from mailbot.config import School
from mailbot.rules.status import InForce, missing_schools, month_status, school_state
from mailbot.timeutil import is_late

TZ = ZoneInfo("Asia/Shanghai")
SCHOOLS = [School("甲小学", "primary"), School("乙中学", "middle"), School("丙小学", "primary"),
           School("丁小学", "primary", active_from="2022-11"), School("戊中学", "middle")]


def sub(name, late, two_plus_n=True, n=3):
    return InForce(name, datetime(2022, 10, 20, 2, tzinfo=timezone.utc), late, 1000, 900, two_plus_n, n, ["科普"])


def test_states_and_totals():
    result = month_status("2022-10", SCHOOLS, {"甲小学": sub("甲小学", False), "乙中学": sub("乙中学", True, n=2)},
                          {"戊中学"}, 24, TZ)
    states = {s["name"]: s["state"] for s in result["schools"]}
    assert states == {"甲小学": "on_time", "乙中学": "late", "丙小学": "missing", "戊中学": "excused"}
    assert result["deadline"] == "2022-10-24"
    assert result["totals"] == {"required": 3, "on_time": 1, "late": 1, "missing": 1, "enrolled": 2000,
                                "participating": 1800, "two_plus_n_schools": 2, "two_plus_three_schools": 1}
    first = result["schools"][0]
    assert first["submitted_at"] == "2022-10-20T10:00:00+08:00"


def test_outside_reporting_months_nobody_is_missing():
    result = month_status("2022-12", SCHOOLS, {}, set(), 24, TZ, reporting=False)
    assert result["schools"] == [] and result["totals"]["missing"] == 0


def test_deadline_is_end_of_the_day_in_shanghai():
    assert not is_late(datetime(2022, 10, 24, 23, 59, 59, tzinfo=TZ), "2022-10", 24, TZ)
    assert is_late(datetime(2022, 10, 25, 0, 0, 0, tzinfo=TZ), "2022-10", 24, TZ)
    assert is_late(datetime(2022, 10, 24, 16, 10, tzinfo=timezone.utc), "2022-10", 24, TZ)  # 00:10 on the 25th


def test_one_schools_state():
    school, newcomer = SCHOOLS[0], SCHOOLS[3]

    def state(who=school, submitted=False, late=False, excused=False, reporting=True):
        return school_state(who, "2022-10", submitted=submitted, late=late, excused=excused, reporting=reporting)

    assert state() == "missing"
    assert state(submitted=True) == "on_time" and state(submitted=True, late=True) == "late"
    assert state(excused=True) == "excused"
    assert state(submitted=True, excused=True) == "on_time"  # a submission counts even when excused
    assert state(reporting=False) is None and state(submitted=True, reporting=False) == "on_time"
    assert state(newcomer) is None  # active only from 2022-11


def test_missing_schools_are_the_ones_month_status_calls_missing():
    submitted, excused = {"甲小学"}, {"戊中学"}
    status = month_status("2022-10", SCHOOLS, {"甲小学": sub("甲小学", False)}, excused, 24, TZ)
    missing = [s["name"] for s in status["schools"] if s["state"] == "missing"]

    assert [s.name for s in missing_schools("2022-10", SCHOOLS, submitted, excused)] == missing == ["乙中学", "丙小学"]
    assert missing_schools("2022-12", SCHOOLS, set(), set(), reporting=False) == []
