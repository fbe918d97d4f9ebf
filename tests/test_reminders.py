"""Who is reminded of what, when: the pure decision with a frozen clock, then the outbox rows."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailbot.outbound.reminders import (ChineseCalendar, plan_reminders, queue_reminders, reminder_key,
                               staff_key, stage_windows)
from support.configs import MIDDLE, PRIMARY, make_config

TZ = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def who(plan) -> set[tuple[str, str]]:
    return {(r.school.name, r.stage) for r in plan.reminders}


# -- stages on the right days -----------------------------------------------------------------------
def test_default_stages_open_on_their_day_and_time():
    config = make_config()
    assert plan_reminders(config, "2022-10", at("2022-10-20T08:59"), set(), set(), set()).reminders == []
    upcoming = plan_reminders(config, "2022-10", at("2022-10-20T09:00"), set(), set(), set())
    assert who(upcoming) == {(n, "upcoming") for n in PRIMARY + MIDDLE}
    due = plan_reminders(config, "2022-10", at("2022-10-24T09:00"), set(), set(), set())
    assert {stage for _, stage in who(due)} == {"due"}
    overdue = plan_reminders(config, "2022-10", at("2022-10-25T09:30"), set(), set(), set())
    assert {stage for _, stage in who(overdue)} == {"overdue"}


def test_only_schools_without_a_submission_and_not_excused_are_reminded():
    config = make_config()
    plan = plan_reminders(config, "2022-10", at("2022-10-24T10:00"), submitted={"安溪县北门小学"},
                          excused={"安溪县蓬莱中学"}, sent_keys=set())
    assert {name for name, _ in who(plan)} == {"安溪县东门小学", "安溪县玉湖小学", "安溪县第一中学"}


def test_schools_outside_their_active_months_are_not_reminded():
    config = make_config()
    config.schools[0].active_from = "2022-11"
    plan = plan_reminders(config, "2022-10", at("2022-10-20T10:00"), set(), set(), set())
    assert "安溪县北门小学" not in {name for name, _ in who(plan)}


def test_nobody_is_reminded_outside_the_reporting_months():
    config = make_config(schedule={"reporting_months": [3, 4, 5, 6, 7, 8, 9, 10]})
    assert plan_reminders(config, "2022-12", at("2022-12-25T10:00"), set(), set(), set()).reminders == []
    assert plan_reminders(config, "2022-12", at("2022-12-25T10:00"), set(), set(), set()).staff_lists == []
    assert plan_reminders(config, "2022-10", at("2022-10-25T10:00"), set(), set(), set()).reminders


# -- catch-up and restarts ---------------------------------------------------------------------------
def test_a_stage_missed_at_nine_is_caught_up_the_same_day_and_never_repeated():
    config = make_config()
    # The machine was down at 09:00 on the 24th and came back at 15:00.
    late = plan_reminders(config, "2022-10", at("2022-10-24T15:00"), set(), set(), set())
    assert {stage for _, stage in who(late)} == {"due"}
    # After a restart the outbox holds the keys: nothing is sent again.
    sent = {reminder_key("2022-10", "due", s.school.name) for s in late.reminders}
    again = plan_reminders(config, "2022-10", at("2022-10-24T16:00"), set(), set(), sent)
    assert again.reminders == []


def test_the_day_after_pre_deadline_stages_close_and_overdue_takes_over():
    config = make_config()
    # upcoming missed on the 20th still goes out on the 22nd: what it says is still true.
    assert {s for _, s in who(plan_reminders(config, "2022-10", at("2022-10-22T11:00"), set(), set(), set()))} == {"upcoming"}
    # due missed all day on the 24th is not sent on the 25th before 09:00 (the deadline has passed).
    assert plan_reminders(config, "2022-10", at("2022-10-25T08:00"), set(), set(), set()).reminders == []
    # overdue stays open until the end of the month, not into the next one.
    assert {s for _, s in who(plan_reminders(config, "2022-10", at("2022-10-31T23:00"), set(), set(), set()))} == {"overdue"}
    assert plan_reminders(config, "2022-10", at("2022-11-01T00:30"), set(), set(), set()).reminders == []


def test_operator_can_force_a_stage_by_hand():
    config = make_config()
    plan = plan_reminders(config, "2022-10", at("2022-10-02T10:00"), set(), set(), set(), only_stage="due")
    assert {s for _, s in who(plan)} == {"due"}


# -- staff lists -------------------------------------------------------------------------------------
def test_staff_get_the_missing_schools_of_their_section_after_overdue():
    config = make_config()
    before = plan_reminders(config, "2022-10", at("2022-10-24T10:00"), {"安溪县北门小学"}, set(), set())
    assert before.staff_lists == []
    plan = plan_reminders(config, "2022-10", at("2022-10-25T09:00"), {"安溪县北门小学"}, {"安溪县第一中学"}, set())
    lists = {s.mailbox: s for s in plan.staff_lists}
    assert [s.name for s in lists["chuyoujiao"].schools] == ["安溪县东门小学", "安溪县玉湖小学"]
    assert lists["chuyoujiao"].to == ["xiao.li@example.test", "lao.wang@example.test"]
    assert [s.name for s in lists["zjg"].schools] == ["安溪县蓬莱中学"]
    done = plan_reminders(config, "2022-10", at("2022-10-25T11:00"), set(), set(),
                          {staff_key("2022-10", "chuyoujiao"), staff_key("2022-10", "zjg")})
    assert done.staff_lists == []


def test_no_staff_list_for_a_section_without_staff_or_without_missing_schools():
    assert plan_reminders(make_config(staff=False), "2022-10", at("2022-10-25T10:00"), set(), set(), set()).staff_lists == []
    config = make_config()
    plan = plan_reminders(config, "2022-10", at("2022-10-25T10:00"), set(MIDDLE), set(), set())
    assert [s.mailbox for s in plan.staff_lists] == ["chuyoujiao"]


# -- working days ------------------------------------------------------------------------------------
def test_stages_move_off_weekends_before_the_deadline_back_and_after_it_forward():
    # September 2022: the 24th is a Saturday and the 25th a Sunday.
    config = make_config(schedule={"working_days_only": True})
    windows = {w.name: w for w in stage_windows(config.schedule.stages, "2022-09", 24, TZ, ChineseCalendar())}
    assert windows["due"].opens == at("2022-09-23T09:00")  # the Friday before
    assert windows["overdue"].opens == at("2022-09-26T09:00")  # the Monday after
    plan = plan_reminders(config, "2022-09", at("2022-09-23T09:30"), set(), set(), set())
    assert {s for _, s in who(plan)} == {"due"}
    assert plan_reminders(config, "2022-09", at("2022-09-25T09:30"), set(), set(), set()).reminders == []


def test_holidays_move_stages_and_make_up_working_days_count():
    # October 2022: 1-7 National Day; Saturday the 8th is a make-up working day (调休).
    stages = {"upcoming": {"day": 3}, "overdue": {"day": 7}}
    config = make_config(schedule={"deadline_day": 6, "working_days_only": True, "stages": stages})
    windows = {w.name: w for w in stage_windows(config.schedule.stages, "2022-10", 6, TZ, ChineseCalendar())}
    assert windows["upcoming"].opens == at("2022-09-30T09:00")
    assert windows["overdue"].opens == at("2022-10-08T09:00")
    plan = plan_reminders(config, "2022-10", at("2022-10-08T09:05"), set(), set(), set())
    assert {s for _, s in who(plan)} == {"overdue"}


def test_without_working_days_only_a_stage_on_a_holiday_stays_put():
    config = make_config()
    windows = {w.name: w for w in stage_windows(config.schedule.stages, "2022-09", 24, TZ)}
    assert windows["due"].opens == at("2022-09-24T09:00")


def test_a_year_without_holiday_data_falls_back_to_weekends_and_is_reported():
    config = make_config(schedule={"working_days_only": True})
    plan = plan_reminders(config, "2040-05", at("2040-05-18T10:00"), set(), set(), set())
    assert plan.uncovered_years == {2040}
    # 2040-05-20 is a Sunday: upcoming moves back to Friday the 18th.
    assert {s for _, s in who(plan)} == {"upcoming"}
    assert not ChineseCalendar().covers(2040) and ChineseCalendar().covers(2022)


# -- properties --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(minutes=st.integers(0, 31 * 24 * 60), submitted=st.sets(st.sampled_from(PRIMARY + MIDDLE)),
       excused=st.sets(st.sampled_from(PRIMARY + MIDDLE)), working=st.booleans())
def test_never_reminds_a_school_that_reported_or_was_excused_or_twice(minutes, submitted, excused, working):
    config = make_config(schedule={"working_days_only": working})
    now = at("2022-10-01T00:00") + timedelta(minutes=minutes)
    plan = plan_reminders(config, "2022-10", now, submitted, excused, set())
    names = [r.school.name for r in plan.reminders]
    assert not set(names) & (submitted | excused)
    assert len(plan.reminders) == len(set(who(plan)))
    assert len(plan.open_stages) <= 1  # windows never overlap
    sent = {reminder_key("2022-10", r.stage, r.school.name) for r in plan.reminders}
    assert plan_reminders(config, "2022-10", now, submitted, excused, sent).reminders == []


@settings(max_examples=60, deadline=None)
@given(year=st.integers(2004, 2045), month=st.integers(1, 12),
       days=st.lists(st.integers(1, 31), min_size=1, max_size=4, unique=True), deadline=st.integers(1, 28))
def test_stage_windows_are_ordered_and_never_negative(year, month, days, deadline):
    stages = {f"s{d}": {"day": d} for d in days}
    config = make_config(schedule={"deadline_day": deadline, "stages": stages, "working_days_only": True})
    windows = stage_windows(config.schedule.stages, f"{year:04d}-{month:02d}", deadline, TZ, ChineseCalendar())
    assert [w.opens for w in windows] == sorted(w.opens for w in windows)
    assert all(w.closes >= w.opens for w in windows)
    # Every stage opens on a working day: a holiday-data one, or Monday-Friday for uncovered years.
    assert all(ChineseCalendar().is_working_day(w.opens.date()) for w in windows)


# -- the outbox --------------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path):
    from mailbot.db.engine import make_sessionmaker
    from mailbot.db.migrate import prepare_database
    config = make_config(tmp_path)
    engine = prepare_database(config)
    yield config, make_sessionmaker(engine)
    engine.dispose()


def _outbox(sessions):
    from mailbot.db.models import Outbox
    with sessions() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_queue_reminders_sends_each_stage_once_from_the_schools_section(db):
    config, sessions = db
    now = at("2022-10-20T09:00")
    with sessions() as session:
        report = queue_reminders(session, config, now, month="2022-10")
        session.commit()
    assert len(report) == 5 and all(item["queued"] for item in report)
    rows = {row.key: row for row in _outbox(sessions)}
    row = rows["remind:2022-10:upcoming:安溪县北门小学"]
    assert row.mailbox == "chuyoujiao" and row.to_addrs == ["p0@163.com"]
    assert rows["remind:2022-10:upcoming:安溪县蓬莱中学"].from_addr == "zjg23236764@163.com"
    msg = email.message_from_bytes(row.raw, policy=policy.default)
    assert "课后服务" in msg["Subject"] and "2022年10月" in msg["Subject"]
    assert msg["Reply-To"] == "chuyoujiao@163.com"
    assert msg["Auto-Submitted"] == "auto-generated"
    names = [part.get_filename() for part in msg.iter_attachments()]
    assert names == ["安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx"]
    text = msg.get_body(("plain",)).get_content()
    assert "安溪县北门小学" in text and "2022年10月24日" in text and "回复本邮件" in text
    # A restart (a second run the same day) queues nothing new.
    with sessions() as session:
        assert not any(item["queued"] for item in queue_reminders(session, config, now + timedelta(hours=3),
                                                                   month="2022-10"))
        session.commit()
    assert len(_outbox(sessions)) == 5


def test_dry_run_shows_who_would_get_what_and_queues_nothing(db):
    config, sessions = db
    with sessions() as session:
        report = queue_reminders(session, config, at("2022-10-25T09:00"), month="2022-10", dry_run=True)
        session.commit()
    assert {item["kind"] for item in report} == {"reminder_overdue", "staff_missing"}
    assert _outbox(sessions) == []


def test_overdue_queues_the_staff_lists_with_contacts(db):
    config, sessions = db
    with sessions() as session:
        queue_reminders(session, config, at("2022-10-25T09:00"), month="2022-10")
        session.commit()
    rows = {row.key: row for row in _outbox(sessions)}
    staff = rows["staff-missing:2022-10:chuyoujiao"]
    assert staff.to_addrs == ["xiao.li@example.test", "lao.wang@example.test"]
    text = email.message_from_bytes(staff.raw, policy=policy.default).get_body(("plain",)).get_content()
    assert all(name in text for name in PRIMARY) and "王老师1" in text and "0595-23001" in text
    assert not any(name in text for name in MIDDLE)


def test_operator_is_told_once_when_the_holiday_data_lacks_the_year(tmp_path):
    from mailbot.db.engine import make_sessionmaker
    from mailbot.db.migrate import prepare_database
    config = make_config(tmp_path, schedule={"working_days_only": True})
    engine = prepare_database(config)
    sessions = make_sessionmaker(engine)
    for hour in (10, 11):
        with sessions() as session:
            queue_reminders(session, config, at(f"2040-05-18T{hour}:00"), month="2040-05")
            session.commit()
    notices = [row for row in _outbox(sessions) if row.kind == "operator_calendar"]
    assert [row.to_addrs for row in notices] == [["operator@example.test"]]
    assert "2040" in notices[0].subject
    engine.dispose()


def test_unknown_stage_is_refused(db):
    config, sessions = db
    with sessions() as session, pytest.raises(ValueError):
        queue_reminders(session, config, at("2022-10-25T09:00"), stage="nonsense")
