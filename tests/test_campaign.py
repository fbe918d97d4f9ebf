"""Excusing schools and voiding submissions from the CLI: what the operator sees, what is recorded."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from mailbot.config import load_config
from mailbot.db.models import Excuse, Submission, VoidLog
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from support.cli import run_cli

NOW = "2022-10-26T10:00:00+08:00"


@pytest.fixture
def env(config_path, monkeypatch):
    monkeypatch.setenv("USER", "clerk")
    monkeypatch.delenv("SUDO_USER", raising=False)
    config = load_config(config_path)
    engine = prepare_database(config)
    yield config_path, make_sessionmaker(engine)
    engine.dispose()


def invoke(config_path, *args):
    return run_cli(config_path, "--now", NOW, *args, check=False)


def add_submission(sessions, school: str, day: int, enrolled: int) -> int:
    with sessions() as session:
        sub = Submission(school=school, month="2022-10", sender="x@163.com",
                         received_at=datetime(2022, 10, day, 2, tzinfo=timezone.utc), late=False,
                         created_at=datetime(2022, 10, day, 2, tzinfo=timezone.utc), schools_count=1,
                         enrolled=enrolled, participating=enrolled - 10, two_plus_n=True, services=["科普"], n=1)
        previous = session.scalar(select(Submission).where(Submission.school == school, Submission.replaced_by.is_(None),
                                                           Submission.voided_at.is_(None)))
        session.add(sub)
        session.flush()
        if previous is not None:
            previous.replaced_by = sub.id
        session.commit()
        return sub.id


def school_status(config_path, name: str) -> dict:
    result = invoke(config_path, "status", "--month", "2022-10", "--json")
    assert result.exit_code == 0, result
    return next(s for s in result.json()["schools"] if s["name"] == name)


# -- excuse ------------------------------------------------------------------------------------------
def test_excuse_is_recorded_with_who_when_why_and_stops_reminders(env):
    config_path, sessions = env
    result = invoke(config_path, "excuse", "安溪县北门小学", "--month", "2022-10", "--reason", "停课装修")
    assert result.exit_code == 0, result
    assert "安溪县北门小学 excused for 2022-10" in result.stdout
    with sessions() as session:
        row = session.scalar(select(Excuse))
    assert (row.school, row.month, row.reason, row.created_by) == ("安溪县北门小学", "2022-10", "停课装修", "clerk")
    assert row.created_at == datetime.fromisoformat(NOW)
    assert school_status(config_path, "安溪县北门小学")["state"] == "excused"
    dry = invoke(config_path, "remind", "--month", "2022-10", "--dry-run")
    assert dry.exit_code == 0, dry
    assert "安溪县东门小学" in dry.stdout and "安溪县北门小学" not in dry.stdout


def test_excuse_accepts_an_alias_and_a_second_excuse_changes_nothing(env):
    config_path, sessions = env
    assert "安溪县城南实验小学 excused" in invoke(config_path, "excuse", "城南实小", "--month", "2022-10").stdout
    again = invoke(config_path, "excuse", "安溪县城南实验小学", "--month", "2022-10", "--reason", "other")
    assert again.exit_code == 0 and "already excused" in again.stdout
    with sessions() as session:
        assert [e.reason for e in session.scalars(select(Excuse))] == [""]


def test_excuse_can_be_withdrawn(env):
    config_path, sessions = env
    invoke(config_path, "excuse", "安溪县北门小学", "--month", "2022-10")
    result = invoke(config_path, "excuse", "安溪县北门小学", "--month", "2022-10", "--undo")
    assert result.exit_code == 0 and "no longer excused" in result.stdout
    assert "安溪县北门小学" in invoke(config_path, "remind", "--month", "2022-10", "--dry-run").stdout
    with sessions() as session:
        assert session.scalar(select(Excuse)).withdrawn_by == "clerk"


@pytest.mark.parametrize("args, words", [
    (["excuse", "不存在的学校", "--month", "2022-10"], "不存在的学校"),
    (["excuse", "安溪县北门小学", "--month", "2022-13"], "2022-13"),
    (["excuse", "安溪县北门小学"], "--month"),
    (["excuse", "安溪县北门小学", "--month", "2022-10", "--undo"], "not excused"),
])
def test_excuse_mistakes_are_usage_errors(env, args, words):
    result = invoke(env[0], *args)
    assert result.exit_code == 2
    assert words in result.stderr


# -- void --------------------------------------------------------------------------------------------
def test_void_puts_the_previous_submission_back_in_force(env):
    config_path, sessions = env
    first = add_submission(sessions, "安溪县北门小学", 20, 1200)
    wrong = add_submission(sessions, "安溪县北门小学", 22, 9999)
    assert school_status(config_path, "安溪县北门小学")["enrolled"] == 9999
    result = invoke(config_path, "void", str(wrong), "--reason", "sent by the wrong school")
    assert result.exit_code == 0, result
    assert f"submission {first} is in force again" in result.stdout
    assert school_status(config_path, "安溪县北门小学")["enrolled"] == 1200
    with sessions() as session:
        log = session.scalar(select(VoidLog))
        voided = session.get(Submission, wrong)
    assert (log.submission_id, log.voided_by, log.reason, log.restored_id) == (wrong, "clerk", "sent by the wrong school", first)
    assert voided.voided_at == datetime.fromisoformat(NOW) and voided.void_reason == "sent by the wrong school"


def test_voiding_the_only_submission_makes_the_school_missing(env):
    config_path, sessions = env
    only = add_submission(sessions, "安溪县北门小学", 20, 1200)
    result = invoke(config_path, "void", str(only))
    assert result.exit_code == 0 and "counts as missing" in result.stdout
    assert school_status(config_path, "安溪县北门小学")["state"] == "missing"


def test_voiding_a_replaced_submission_keeps_the_newest_in_force(env):
    config_path, sessions = env
    a = add_submission(sessions, "安溪县北门小学", 18, 1000)
    b = add_submission(sessions, "安溪县北门小学", 20, 1100)
    c = add_submission(sessions, "安溪县北门小学", 22, 1200)
    assert invoke(config_path, "void", str(b)).exit_code == 0
    assert school_status(config_path, "安溪县北门小学")["enrolled"] == 1200
    # Voiding the newest now brings back the oldest: the chain skipped the voided one.
    result = invoke(config_path, "void", str(c))
    assert f"submission {a} is in force again" in result.stdout
    assert school_status(config_path, "安溪县北门小学")["enrolled"] == 1000


def test_void_mistakes_are_usage_errors(env):
    config_path, sessions = env
    sub = add_submission(sessions, "安溪县北门小学", 20, 1200)
    assert invoke(config_path, "void", str(sub)).exit_code == 0
    again = invoke(config_path, "void", str(sub))
    assert again.exit_code == 2 and "voided already" in again.stderr
    missing = invoke(config_path, "void", "999")
    assert missing.exit_code == 2 and "no submission with id 999" in missing.stderr
    assert invoke(config_path, "void", "abc").exit_code == 2


# -- remind from the CLI -----------------------------------------------------------------------------
def test_remind_queues_then_says_nothing_more_is_due(env):
    config_path, _ = env
    first = invoke(config_path, "remind", "--month", "2022-10")
    assert first.exit_code == 0, first
    assert first.stdout.count("queued") >= 2 and "reminder_overdue" in first.stdout
    second = invoke(config_path, "remind", "--month", "2022-10")
    assert second.stdout.strip() == "no reminder is due now for 2022-10"
    unknown = invoke(config_path, "remind", "--stage", "nonsense")
    assert unknown.exit_code == 2 and "upcoming, due, overdue" in unknown.stderr


@pytest.mark.parametrize("command", ["remind", "excuse", "void", "run"])
def test_every_campaign_command_has_help_with_an_example(command):
    result = run_cli(None, command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout
