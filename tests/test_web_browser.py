"""The clerk's and the viewer's console in real Chromium (Playwright driving Debian's chromium)."""

from __future__ import annotations

from sqlalchemy import select

from mailbot.db.models import AuditEntry
from mailbot.db.campaign import excused_schools
from mailbot.db.models import Outbox, Quarantine, Submission
from mailbot.outbound.sending import send_outbox
from support.web import follow, login, served

QUARANTINED_SCHOOL = "安溪县宝华中学"  # sample 009: its table came from an unregistered QQ address
MISSING_SCHOOL = "安溪县第六实验小学"
ROSTER_NAMES = ("安溪县北门小学", "安溪县凤华小学", "安溪县培文中学", "安溪县城南中学")


def state_of(page, school: str) -> str:
    return page.locator("#schools tr", has=page.locator(f"a:text-is('{school}')")).locator(".badge").inner_text()


def test_clerk_approves_excuses_voids_and_sees_it_on_the_overview(console, browser):
    with served(console.app) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        login(page, base, "clerk")
        # The month overview with the samples' schools (the clock says 2022-10-26: October is shown).
        assert "2022年10月报送概览" in page.inner_text("h1")
        for name in ROSTER_NAMES:
            assert page.locator(f"#schools a:text-is('{name}')").count() == 1
        assert state_of(page, QUARANTINED_SCHOOL) == "未报送"
        assert page.locator("[data-kpi=reporting] .kpi-value").inner_text() == "9/20所"

        # Approve the quarantined message for its school: the school becomes on time.
        follow(page, "nav >> text=隔离区")
        card = page.locator("section.quarantine.pending")
        assert card.count() == 1 and "1566283019@qq.com" in card.inner_text()
        assert QUARANTINED_SCHOOL in card.locator("table").inner_text()  # the rows it would record
        card.locator("select[name=school]").select_option(QUARANTINED_SCHOOL)
        card.locator("input[name=remember]").check()
        follow(page, card.locator("button:text('批准并登记')"))
        assert "已批准" in page.locator(".flash").inner_text()
        follow(page, "nav >> text=本月概览")
        assert state_of(page, QUARANTINED_SCHOOL) == "按时报送"
        assert page.locator("[data-kpi=reporting] .kpi-value").inner_text() == "10/20所"

        # Excuse a missing school for the month, with a reason.
        follow(page, f"#schools a:text-is('{MISSING_SCHOOL}')")
        month = page.locator("#month-2022-10")
        month.locator("input[name=reason]").fill("学校并入城南实验小学，本月不单独报送")
        follow(page, month.locator("button:text('设为本月免报')"))
        assert "设为免报" in page.locator(".flash").inner_text()
        assert page.locator("#month-2022-10 .badge").first.inner_text() == "本月免报"
        page.goto(f"{base}/?month=2022-10")
        assert state_of(page, MISSING_SCHOOL) == "本月免报"

        # Void the submission just approved: the school is missing again.
        follow(page, f"#schools a:text-is('{QUARANTINED_SCHOOL}')")
        month = page.locator("#month-2022-10")
        month.locator("form.action input[name=reason]").first.fill("发件人并非该校人员")
        follow(page, month.locator("button:text('作废这条报送')").first)
        assert "已作废" in page.locator(".flash").inner_text()
        page.goto(f"{base}/?month=2022-10")
        assert state_of(page, QUARANTINED_SCHOOL) == "未报送"
        assert dialogs == []

    with console.sessions() as session:
        assert session.scalar(select(Quarantine.status)) == "approved"
        assert excused_schools(session, "2022-10") == {MISSING_SCHOOL}
        voided = session.scalar(select(Submission).where(Submission.school == QUARANTINED_SCHOOL))
        assert voided.voided_at is not None and voided.void_reason == "发件人并非该校人员"
        trail = [(e.actor, e.action) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert trail == [("web:clerk", "quarantine_approve"), ("web:clerk", "excuse"), ("web:clerk", "void")]


def test_clerk_retries_a_failed_email_to_a_corrected_address(console, smtp_server, browser):
    # The receipts go out through a real SMTP server, which refuses the first recipient for good.
    mailbox = console.config.mailboxes[0]
    mailbox.smtp, mailbox.outbox_dir = smtp_server.smtp_config("chuyoujiao@example.test", security="plain"), None
    console.config.sending.throttle_seconds = 0
    with console.sessions.begin() as session:
        session.query(Outbox).filter(Outbox.mailbox != mailbox.name).update({"status": "sent"})
        first = session.scalar(select(Outbox).where(Outbox.mailbox == mailbox.name, Outbox.kind == "receipt")
                               .order_by(Outbox.id))
        session.query(Outbox).filter(Outbox.mailbox == mailbox.name, Outbox.id != first.id).update({"status": "sent"})
        failed_id, old_to = first.id, list(first.to_addrs)
    smtp_server.fail("RCPT", "550 5.1.1 <%s>: Recipient address rejected: User unknown" % old_to[0])
    send_outbox(console.config, console.sessions, console.clock)
    with console.sessions() as session:
        assert session.get(Outbox, failed_id).status == "failed"
    with served(console.app) as base:
        page = browser.new_page(viewport={"width": 375, "height": 800})
        login(page, base, "clerk")
        follow(page, "nav >> text=发件箱")
        page.select_option("select[name=status]", "failed")
        follow(page, "button:text('筛选')")
        follow(page, "tr.out-failed a >> nth=0")
        assert "User unknown" in page.inner_text("dl.facts")
        page.fill("input[name=to]", "corrected@example.test")
        follow(page, "button:text('重新发送')")
        assert "已重新排队发送" in page.locator(".flash").inner_text()
        assert "corrected@example.test" in page.inner_text("dl.facts")
    send_outbox(console.config, console.sessions, console.clock)
    with console.sessions() as session:
        old, new = session.get(Outbox, failed_id), session.scalar(select(Outbox).where(Outbox.key.contains(":retry:")))
        assert old.status == "failed" and old.to_addrs == old_to  # kept as it was
        assert new.status == "sent" and new.to_addrs == ["corrected@example.test"]
        entry = session.scalar(select(AuditEntry))
        assert (entry.actor, entry.action, entry.detail["new_outbox"]) == ("web:clerk", "outbox_retry", new.id)
    delivered = smtp_server.received[-1]
    assert delivered.rcpt_tos == ["corrected@example.test"]
    assert b"To: corrected@example.test" in delivered.data


def test_a_viewer_sees_the_same_pages_without_action_buttons(console, browser):
    with served(console.app) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, base, "viewer")
        for path in ("/", f"/school?name={MISSING_SCHOOL}", f"/school?name=安溪县北门小学", "/quarantine",
                     "/messages", "/outbox", "/downloads", "/system", "/messages/1", "/outbox/1"):
            page.goto(base + path)
            assert page.locator("h1").count() == 1, path
            # The only form a viewer gets that posts is the logout; filters are GET forms.
            posting = page.locator("form[method=post]")
            assert posting.count() == 1 and posting.first.get_attribute("action") == "/logout", path
        page.goto(base + "/quarantine")
        assert page.locator("section.quarantine.pending").count() == 1
        assert page.locator("button:text('批准并登记')").count() == 0
        # A POST from the viewer's browser, with the session's own CSRF token, is still refused.
        token = page.locator("input[name=csrf]").first.get_attribute("value")
        response = page.request.post(f"{base}/quarantine/1/approve",
                                     form={"csrf": token, "school": QUARANTINED_SCHOOL})
        assert response.status == 403 and "只能查看" in response.text()
    with console.sessions() as session:
        assert session.scalar(select(Quarantine.status)) == "pending"
