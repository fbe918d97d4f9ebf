"""Log in and out, sessions, CSRF tokens and who may do what.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Strict, Secure behind HTTPS) holding the
user's id, a stamp of the password hash (a changed password or a removed account ends the session)
and the CSRF token. Every page needs a session; every POST needs the token of the session; every
POST except logging in and out needs a clerk.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import (Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for)
from sqlalchemy import select

from mailbot.db.models import WebUser
from mailbot.web.context import db, services
from mailbot.web.users import check_password, session_stamp

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "static"}
VIEWER_POSTS = {"auth.login", "auth.logout"}  # the only POSTs a viewer may make


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf", "")
    expected = session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def load_user() -> WebUser | None:
    user_id, stamp = session.get("uid"), session.get("stamp")
    if user_id is None:
        return None
    user = db().get(WebUser, user_id)
    if user is None or not hmac.compare_digest(session_stamp(user), stamp or ""):
        session.clear()
        return None
    return user


def guard():
    """before_request: a session for every page, the CSRF token on every POST, a clerk for actions."""
    g.user = None
    if request.endpoint in OPEN_ENDPOINTS and request.method == "GET":
        return None
    if request.method == "POST" and not _csrf_ok():
        log.warning("POST %s refused: missing or wrong CSRF token (from %s)", request.path, request.remote_addr)
        abort(400, description="表单已过期或来源不明，请刷新页面后重试。")
    if request.endpoint == "auth.login":
        return None
    g.user = load_user()
    if g.user is None:
        if request.method == "POST":
            abort(403, description="请先登录。")
        return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
    if request.method == "POST" and request.endpoint not in VIEWER_POSTS and g.user.role != "clerk":
        log.warning("POST %s refused: %s is a viewer", request.path, g.user.name)
        abort(403, description="您的账号只能查看，不能进行操作。如需办理，请联系经办人员。")
    return None


def is_clerk() -> bool:
    return g.get("user") is not None and g.user.role == "clerk"


def actor() -> str:
    """The name an action is recorded under in the audit trail."""
    return f"web:{g.user.name}"


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute URL or a scheme-relative //host.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.overview")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status = None, 200
    name = ""
    if request.method == "POST":
        name = request.form.get("name", "").strip()[:64]
        password = request.form.get("password", "")
        address = request.remote_addr or "unknown"
        svc = services()
        now = svc.clock()
        wait = svc.throttle.wait_seconds(address, name, now)
        if wait:
            log.warning("login for %r from %s refused: throttled for %ds more", name, address, wait)
            error, status = f"登录失败次数过多，为安全起见请在{wait}秒后再试。", 429
        else:
            with svc.sessions.begin() as s:
                user = check_password(s, name, password)
                if user is not None:
                    user.last_login_at = now
                    uid, stamp, role = user.id, session_stamp(user), user.role
            if user is None:
                svc.throttle.failed(address, name, now)
                log.warning("login failed for %r from %s", name, address)
                error, status = "用户名或密码不正确，请重新输入。", 401
            else:
                svc.throttle.succeeded(address, name)
                session.clear()  # a fresh session (and CSRF token) after login: no fixation
                session.update(uid=uid, stamp=stamp, csrf=secrets.token_urlsafe(32))
                session.permanent = True
                log.info("web login: %s (%s) from %s", name, role, address)
                return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, name=name), status


@bp.route("/logout", methods=["POST"])
def logout():
    log.info("web logout: %s", g.user.name)
    session.clear()
    return redirect(url_for("auth.login"))


@bp.app_context_processor
def _template_helpers():
    return {"csrf_token": csrf_token, "is_clerk": is_clerk(), "user": g.get("user"),
            "app_version": current_app.config.get("MAILBOT_VERSION", "")}
