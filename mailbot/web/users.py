"""Web console accounts: add, list, change password, remove (`mailbot web user ...`).

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended
parameter set). A session remembers a stamp derived from the hash, so changing a password or
removing the account ends that user's sessions everywhere.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.db.models import WEB_ROLES as ROLES, WebUser
from mailbot.errors import MailbotError

MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_hasher = PasswordHasher()  # argon2id
# Verified against when the name is unknown, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(MailbotError):
    """A user command named an unknown user, a taken name, a bad role or a weak password."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def session_stamp(user: WebUser) -> str:
    """Changes whenever the password does: sessions carrying an older stamp are no longer valid."""
    return hashlib.sha256(f"{user.id}:{user.password_hash}".encode()).hexdigest()[:32]


def check_password(session: Session, name: str, password: str) -> WebUser | None:
    """The user when the name and password match, else None (same cost either way)."""
    user = session.scalar(select(WebUser).where(WebUser.name == name))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def add_user(session: Session, name: str, role: str, password: str, now: datetime) -> WebUser:
    if not _NAME.match(name or ""):
        raise UserError(f"user name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if session.scalar(select(WebUser.id).where(WebUser.name == name)) is not None:
        raise UserError(f"user {name} exists already (change the password with `mailbot web user passwd {name}`)")
    user = WebUser(name=name, role=role, password_hash=hash_password(password), created_at=now,
                   password_changed_at=now)
    session.add(user)
    session.flush()
    return user


def _get(session: Session, name: str) -> WebUser:
    user = session.scalar(select(WebUser).where(WebUser.name == name))
    if user is None:
        raise UserError(f"no web user {name!r} (see `mailbot web user list`)")
    return user


def set_password(session: Session, name: str, password: str, now: datetime) -> WebUser:
    user = _get(session, name)
    user.password_hash, user.password_changed_at = hash_password(password), now
    session.flush()
    return user


def remove_user(session: Session, name: str) -> None:
    session.delete(_get(session, name))
    session.flush()


def list_users(session: Session) -> list[dict]:
    return [{"name": u.name, "role": u.role, "created_at": u.created_at.isoformat(),
             "password_changed_at": u.password_changed_at.isoformat(),
             "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None}
            for u in session.scalars(select(WebUser).order_by(WebUser.name))]
