"""The clerks' web console (`mailbot web`): server-rendered pages over the same database as the
daemon, calling the same functions as the CLI. `create_app` builds it; nothing connects at import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from mailbot.config import Config

if TYPE_CHECKING:  # Flask is imported when an app is made, not when the CLI loads this package
    from flask import Flask
    from sqlalchemy.orm import Session, sessionmaker


def _version() -> str:
    try:
        return version("mailbot")
    except PackageNotFoundError:
        return "unknown"


def create_app(config: Config, sessions: "sessionmaker[Session]", clock: Callable[[], datetime] | None = None,
               secret: bytes | None = None) -> "Flask":
    from flask import Flask, render_template
    from werkzeug.exceptions import HTTPException

    from mailbot.web import auth, formatting, security
    from mailbot.web.context import Services, close_db
    from mailbot.web.mail_pages import bp as mail_bp
    from mailbot.web.pages import bp as pages_bp
    from mailbot.web.admin_pages import bp as admin_bp

    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(
        SECRET_KEY=secret if secret is not None else security.session_secret(config),
        SESSION_COOKIE_NAME="mailbot_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=config.web.https,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        MAX_CONTENT_LENGTH=64 * 1024,  # forms only; nobody uploads through the console
        MAILBOT_VERSION=_version(),
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["mailbot"] = Services(config, sessions, clock or (lambda: datetime.now(timezone.utc)))
    formatting.register(app, config.timezone)
    app.before_request(auth.guard)
    app.after_request(security.add_headers)
    app.teardown_appcontext(close_db)
    for blueprint in (auth.bp, pages_bp, mail_bp, admin_bp):
        app.register_blueprint(blueprint)

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException):
        messages = {400: "请求有误。", 403: "没有权限。", 404: "找不到您要的页面或记录。", 405: "不支持这种请求。",
                    413: "提交的内容太大。", 429: "请求过于频繁，请稍后再试。"}
        text = exc.description if exc.description and not exc.description.isascii() else messages.get(
            exc.code, "出错了，请稍后再试。")
        return render_template("error.html", code=exc.code, message=text), exc.code

    return app
