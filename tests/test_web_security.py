"""The console's gate: sessions, CSRF, roles, throttling, headers, the raw .eml download."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailbot.db.models import Message
from support.web import PASSWORDS, SAMPLE_NOW, csrf_of, logged_in


def page_urls(app) -> list[str]:
    """Every GET route of the app, with sample values for its parameters."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in ("static", "auth.login"):
            continue
        urls.append(re.sub(r"<(?:int:)?[a-z_]+>", "1", rule.rule))
    return urls


def test_every_page_without_a_session_redirects_to_the_login(console):
    client = console.app.test_client()
    urls = page_urls(console.app)
    assert len(urls) >= 15 and "/" in urls and "/messages/1/raw" in urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), url


def test_every_post_without_a_session_is_refused(console):
    client = console.app.test_client()
    token = csrf_of(client.get("/login").text)  # a valid token of an anonymous session
    posts = [re.sub(r"<(?:int:)?[a-z_]+>", "1", r.rule) for r in console.app.url_map.iter_rules()
             if "POST" in r.methods and r.endpoint not in ("auth.login",)]
    assert len(posts) >= 7
    for url in posts:
        assert client.post(url, data={"csrf": token}).status_code == 403, url


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(console, token):
    client, _good = logged_in(console.app, "clerk")
    data = {"name": "安溪县第六实验小学", "month": "2022-10", "reason": "测试"}
    if token is not None:
        data["csrf"] = token
    response = client.post("/school/excuse", data=data)
    assert response.status_code == 400
    assert "表单已过期" in response.text
    from mailbot.db.campaign import excused_schools
    with console.sessions() as session:
        assert excused_schools(session, "2022-10") == set()


def test_login_itself_needs_the_csrf_token(console):
    client = console.app.test_client()
    client.get("/login")
    response = client.post("/login", data={"name": "clerk", "password": PASSWORDS["clerk"]})
    assert response.status_code == 400


def test_a_viewer_sees_no_action_and_a_post_from_a_viewer_is_refused(console):
    client, token = logged_in(console.app, "viewer")
    school = client.get("/school", query_string={"name": "安溪县第六实验小学"})
    assert school.status_code == 200 and "设为本月免报" not in school.text
    response = client.post("/school/excuse", data={"csrf": token, "name": "安溪县第六实验小学", "month": "2022-10",
                                                   "reason": "测试"})
    assert response.status_code == 403 and "只能查看" in response.text
    from mailbot.db.campaign import excused_schools
    with console.sessions() as session:
        assert excused_schools(session, "2022-10") == set()
    clerk, _ = logged_in(console.app, "clerk")
    assert "设为本月免报" in clerk.get("/school", query_string={"name": "安溪县第六实验小学"}).text


def test_the_raw_eml_is_an_attachment_for_clerks_only(console):
    with console.sessions() as session:
        pk = session.scalar(select(Message.id).where(Message.outcome == "accepted").limit(1))
    viewer, _ = logged_in(console.app, "viewer")
    assert viewer.get(f"/messages/{pk}/raw").status_code == 403
    assert "下载原始邮件" not in viewer.get(f"/messages/{pk}").text
    clerk, _ = logged_in(console.app, "clerk")
    assert "下载原始邮件" in clerk.get(f"/messages/{pk}").text
    response = clerk.get(f"/messages/{pk}/raw")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.data.startswith(b"Received:") or b"From:" in response.data[:4000]


def test_security_headers_and_cookie_flags(console):
    client = console.app.test_client()
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    console.config.web.https = True
    from mailbot.web import create_app
    secure_app = create_app(console.config, console.sessions, console.clock)
    assert "Secure" in secure_app.test_client().get("/login").headers["Set-Cookie"]


def test_no_template_has_a_script_or_an_inline_handler():
    from pathlib import Path
    import mailbot.web
    folder = Path(mailbot.web.__file__).parent / "templates"
    for template in folder.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "|safe" not in text.replace(" ", ""), template.name


def test_login_throttles_after_repeated_failures(console, caplog):
    now = [SAMPLE_NOW]
    console.app.extensions["mailbot"].clock = lambda: now[0]
    client = console.app.test_client()
    for attempt in range(5):
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"csrf": token, "name": "clerk", "password": "wrong password"})
        assert response.status_code == 401 and "不正确" in response.text
    token = csrf_of(client.get("/login").text)
    # The right password, too soon: refused without being checked.
    response = client.post("/login", data={"csrf": token, "name": "clerk", "password": PASSWORDS["clerk"]})
    assert response.status_code == 429 and "秒后再试" in response.text
    assert any("throttled" in r.getMessage() for r in caplog.records)
    # From another address, the user name is throttled all the same.
    other = console.app.test_client()
    token = csrf_of(other.get("/login").text)
    response = other.post("/login", data={"csrf": token, "name": "clerk", "password": PASSWORDS["clerk"]},
                          environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 429
    now[0] += timedelta(seconds=31)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf": token, "name": "clerk", "password": PASSWORDS["clerk"]})
    assert response.status_code == 302


def test_throttle_delay_doubles_and_is_capped():
    from mailbot.web.throttle import FREE_FAILURES, LoginThrottle
    throttle = LoginThrottle()
    for _ in range(FREE_FAILURES - 1):
        throttle.failed("203.0.113.1", "wang", SAMPLE_NOW)
    assert throttle.wait_seconds("203.0.113.1", "wang", SAMPLE_NOW) == 0
    throttle.failed("203.0.113.1", "wang", SAMPLE_NOW)
    assert throttle.wait_seconds("203.0.113.1", "li", SAMPLE_NOW) == 30  # the address is throttled
    assert throttle.wait_seconds("198.51.100.2", "WANG", SAMPLE_NOW) == 30  # and the user, wherever from
    throttle.failed("203.0.113.1", "wang", SAMPLE_NOW)
    assert throttle.wait_seconds("203.0.113.1", "wang", SAMPLE_NOW) == 60
    for _ in range(20):
        throttle.failed("203.0.113.1", "wang", SAMPLE_NOW)
    assert throttle.wait_seconds("203.0.113.1", "wang", SAMPLE_NOW) == 15 * 60
    throttle.succeeded("203.0.113.1", "wang")
    assert throttle.wait_seconds("203.0.113.1", "wang", SAMPLE_NOW) == 0


def test_a_changed_password_or_a_removed_account_ends_the_session(console):
    from mailbot.web.users import remove_user, set_password
    client, _ = logged_in(console.app, "clerk")
    assert client.get("/").status_code == 200
    with console.sessions.begin() as session:
        set_password(session, "clerk", "a-new-password-2", SAMPLE_NOW)
    assert client.get("/").status_code == 302
    viewer, _ = logged_in(console.app, "viewer")
    with console.sessions.begin() as session:
        remove_user(session, "viewer")
    assert viewer.get("/").status_code == 302


def test_login_redirects_only_to_this_site(console):
    client = console.app.test_client()
    for target, expected in (("/outbox", "/outbox"), ("//evil.example/x", "/"), ("https://evil.example/", "/")):
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", query_string={"next": target},
                               data={"csrf": token, "name": "clerk", "password": PASSWORDS["clerk"]})
        assert response.headers["Location"] == expected
        client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})
