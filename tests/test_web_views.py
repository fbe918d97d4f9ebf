"""The read-only views the pages (and the operator's list/show commands) share, and the outbox
retry, on the samples' database."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select, update

from mailbot.db import views
from mailbot.db.campaign import void
from mailbot.db.models import Outbox
from mailbot.outbound.retry import RetryError, readdressed, retry_failed
from mailbot.web.formatting import local_time
from support.web import SAMPLE_NOW


def test_month_overview_matches_status_and_filters_by_level(console):
    from mailbot.db.queries import load_status
    with console.sessions() as session:
        data = views.month_overview(session, console.config, "2022-10")
        status = load_status(session, console.config, "2022-10")
        middle = views.month_overview(session, console.config, "2022-10", "middle")
    assert [(s["name"], s["state"]) for s in data["schools"]] == sorted(
        [(s["name"], s["state"]) for s in status["schools"]], key=lambda p: [s["name"] for s in data["schools"]].index(p[0]))
    assert data["kpis"][0]["value"] == "9/20所" and data["counts"]["missing"] == 11
    assert {s["level"] for s in middle["schools"]} == {"middle"}
    assert middle["counts"]["required"] == len(middle["schools"])


def test_messages_filtered_by_outcome_school_mailbox_and_month(console):
    with console.sessions() as session:
        everything = views.list_messages(session, console.config)
        rejected = views.list_messages(session, console.config, outcome="rejected")
        school = views.list_messages(session, console.config, school="安溪县北门小学")
        zjg = views.list_messages(session, console.config, mailbox="zjg")
        november = views.list_messages(session, console.config, month="2022-11")
        page = views.list_messages(session, console.config, limit=5, offset=5)
    assert everything["total"] == 17
    assert rejected["total"] == 4 and all(m["reason"] for m in rejected["messages"])
    assert [m["sender"] for m in school["messages"]] == ["beimenxx@163.com"]
    assert {m["mailbox"] for m in zjg["messages"]} == {"zjg"}
    assert len(page["messages"]) == 5 and page["messages"][0]["id"] == everything["messages"][5]["id"]
    assert all(m["received_at"].astimezone(console.config.timezone).month == 11 for m in november["messages"])


def test_message_detail_has_rows_submissions_and_the_reply(console):
    with console.sessions() as session:
        first = views.list_messages(session, console.config, school="安溪县北门小学")["messages"][0]
        detail = views.message_detail(session, first["id"])
        assert views.message_detail(session, 10_000) is None
    assert detail["outcome"] == "accepted" and detail["rows"][0]["school"] == "安溪县北门小学"
    assert [s["state"] for s in detail["submissions"]] == ["in_force"]
    assert [m["kind"] for m in detail["mail"]] == ["receipt"]


def test_submissions_list_shows_the_ids_void_takes_and_their_state(console):
    with console.sessions() as session:
        (sub,) = views.list_submissions(session, month="2022-10", school="安溪县北门小学")
    assert sub["state"] == "in_force"
    with console.sessions.begin() as session:
        void(session, sub["id"], "测试", "web:clerk", SAMPLE_NOW)
    with console.sessions() as session:
        (after,) = views.list_submissions(session, school="安溪县北门小学")
        school = views.school_detail(session, console.config, views.find_school(console.config, "安溪县北门小学"),
                                     "2022-10")
    assert after["state"] == "voided" and after["void_reason"] == "测试"
    october = next(m for m in school["months"] if m["month"] == "2022-10")
    assert october["state"] == "missing" and october["submission"] is None
    assert [h["id"] for h in october["history"]] == [sub["id"]]


def test_quarantine_list_carries_the_rows_approval_would_record(console):
    with console.sessions() as session:
        (held,) = views.list_quarantine(session)
    assert held["status"] == "pending" and held["message"]["sender"] == "1566283019@qq.com"
    assert held["candidate_schools"] == ["安溪县宝华中学"] and held["rows"][0]["enrolled"] == 976


def test_times_are_shown_in_the_configured_zone_with_offset(console):
    with console.sessions() as session:
        message = views.list_messages(session, console.config, school="安溪县北门小学")["messages"][0]
    assert local_time(message["received_at"], console.config.timezone) == "2022-10-21 10:15 +08:00"


def test_readdressed_changes_only_date_to_and_message_id():
    raw = (b"Date: Thu, 20 Oct 2022 10:00:00 +0800\r\nFrom: a@example.test\r\nTo: old@example.test,\r\n"
           b" other@example.test\r\nSubject: =?utf-8?b?5Zue5omn?=\r\nMessage-ID: <old@example.test>\r\n"
           b"MIME-Version: 1.0\r\n\r\nbody\r\n")
    new = readdressed(raw, to=["new@example.test"], message_id="new@example.test", date=SAMPLE_NOW)
    parsed = message_from_bytes(new, policy=policy.default)
    assert parsed["To"] == "new@example.test" and parsed["Message-ID"] == "<new@example.test>"
    assert parsed["Subject"] == "回执" and parsed["Date"] == "Wed, 26 Oct 2022 10:00:00 +0800"
    assert new.endswith(b"\r\n\r\nbody\r\n") and b"old@example.test" not in new


def test_retry_only_a_failed_email_and_keep_the_old_one(console):
    with console.sessions.begin() as session:
        row = session.scalar(select(Outbox).where(Outbox.kind == "receipt").limit(1))
        with pytest.raises(RetryError, match="not failed"):
            retry_failed(session, row.id, SAMPLE_NOW)
        session.execute(update(Outbox).where(Outbox.id == row.id).values(status="failed", last_error="550 no"))
    with console.sessions.begin() as session:
        with pytest.raises(RetryError, match="not a usable"):
            retry_failed(session, row.id, SAMPLE_NOW, ["not an address"])
        first = retry_failed(session, row.id, SAMPLE_NOW)
        second = retry_failed(session, row.id, SAMPLE_NOW, ["fixed@example.test"])
        keys, to = (first.key, second.key), second.to_addrs
    assert keys == (f"{row.key}:retry:1", f"{row.key}:retry:2") and to == ["fixed@example.test"]
    with console.sessions() as session:
        detail = views.outbox_detail(session, row.id)
    assert detail["status"] == "failed" and detail["last_error"] == "550 no"
    assert [r["key"] for r in detail["retries"]] == list(keys)
