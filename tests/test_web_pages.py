"""The 下载 and 系统状态 pages, "send the summary now", and the refusals of bad actions."""

from __future__ import annotations

import io

import openpyxl
from sqlalchemy import select

from mailbot.db.models import AuditEntry, Outbox, Quarantine
from support.web import logged_in


def test_downloads_are_attachments_and_the_preview_is_sandboxed(console):
    client, _ = logged_in(console.app, "viewer")
    page = client.get("/downloads")
    assert "下载2022年10月汇总表" in page.text and "立即发送" not in page.text  # a viewer cannot send
    xlsx = client.get("/downloads/summary.xlsx?month=2022-10")
    assert xlsx.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in xlsx.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    assert "安溪县北门小学" in [c.value for row in workbook.active.iter_rows() for c in row]
    ledger = client.get("/downloads/ledger.xlsx?from=2022-10&to=2022-12")
    assert ledger.status_code == 200 and len(openpyxl.load_workbook(io.BytesIO(ledger.data)).sheetnames) >= 2
    assert client.get("/downloads/ledger.xlsx?from=2022-12&to=2022-10").status_code == 400
    preview = client.get("/downloads/preview?month=2022-10")
    assert "sandbox" in preview.headers["Content-Security-Policy"] and "script" not in preview.headers[
        "Content-Security-Policy"]
    assert "2022年10月" in preview.text


def test_send_the_summary_now_needs_confirmation_and_goes_once(console):
    client, token = logged_in(console.app, "clerk")
    assert "确认发送" in client.get("/downloads/send?month=2022-10").text
    unconfirmed = client.post("/downloads/send", data={"csrf": token, "month": "2022-10"})
    assert unconfirmed.status_code == 302
    with console.sessions() as session:
        assert session.scalar(select(Outbox).where(Outbox.kind == "summary")) is None
    sent = client.post("/downloads/send", data={"csrf": token, "month": "2022-10", "confirm": "yes"},
                       follow_redirects=True)
    assert "已排队发送" in sent.text
    again = client.post("/downloads/send", data={"csrf": token, "month": "2022-10", "confirm": "yes"},
                        follow_redirects=True)
    assert "此前已经发送过" in again.text
    forced = client.post("/downloads/send", data={"csrf": token, "month": "2022-10", "confirm": "yes",
                                                   "again": "yes"}, follow_redirects=True)
    assert "已排队发送" in forced.text
    with console.sessions() as session:
        summaries = list(session.scalars(select(Outbox).where(Outbox.kind == "summary")))
        trail = [(e.action, e.detail["force"]) for e in session.scalars(select(AuditEntry))]
    assert [o.key.startswith("summary:2022-10") for o in summaries] == [True, True]
    assert summaries[0].to_addrs == ["leader@example.test"]
    assert trail == [("summary_send", False), ("summary_send", True)]


def test_system_page_shows_mailboxes_cap_alarms_and_the_audit_trail(console):
    client, token = logged_in(console.app, "clerk")
    client.post("/quarantine/1/reject", data={"csrf": token, "reason": "非学校邮箱"})
    page = client.get("/system").text
    assert "chuyoujiao" in page and "今日已发送" in page and "/ 200 封" in page
    assert "拒绝隔离邮件" in page and "web:clerk" in page and "第1号隔离邮件" in page
    with console.sessions() as session:
        q = session.get(Quarantine, 1)
    assert (q.status, q.decided_by, q.note) == ("rejected", "web:clerk", "非学校邮箱")


def test_bad_actions_get_a_chinese_answer_and_change_nothing(console):
    client, token = logged_in(console.app, "clerk")
    no_reason = client.post("/school/excuse", data={"csrf": token, "name": "安溪县第六实验小学", "month": "2022-10"},
                            follow_redirects=True)
    assert "请填写免报原因" in no_reason.text
    unknown = client.post("/school/excuse", data={"csrf": token, "name": "不存在的学校", "month": "2022-10",
                                                  "reason": "x"})
    assert unknown.status_code == 404 and "名册中没有" in unknown.text
    assert client.post("/submission/9999/void", data={"csrf": token, "reason": "x"}).status_code == 404
    not_failed = client.post("/outbox/1/retry", data={"csrf": token}, follow_redirects=True)
    assert "只有发送失败的邮件可以重发" in not_failed.text
    client.post("/quarantine/1/reject", data={"csrf": token})
    twice = client.post("/quarantine/1/approve", data={"csrf": token, "school": "安溪县宝华中学"},
                        follow_redirects=True)
    assert "已经处理过" in twice.text
    assert client.get("/school?name=不存在的学校").status_code == 404
    with console.sessions() as session:
        assert [e.action for e in session.scalars(select(AuditEntry))] == ["quarantine_reject"]
