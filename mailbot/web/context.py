"""What a request needs: the config, the database sessions, the clock, the login throttle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import Config
from mailbot.timeutil import current_month
from mailbot.web.throttle import LoginThrottle


@dataclass
class Services:
    config: Config
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


def services() -> Services:
    return current_app.extensions["mailbot"]


def db() -> Session:
    """This request's read session: one short transaction, closed when the request ends."""
    if "db" not in g:
        g.db = services().sessions()
    return g.db


def close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def this_month() -> str:
    svc = services()
    return current_month(svc.clock(), svc.config.timezone)
