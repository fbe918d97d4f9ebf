"""The installation id: a random token made with the database and kept in it.

Message-IDs are derived from the outbox key so that an email queued again after a crash keeps its
id; the key alone (`reply:17`) repeats across installations and after a database is made anew,
so two different emails could share a Message-ID (the demo's reply 2 and a live receipt did).
Every Message-ID therefore also carries this installation's id: unique across installations,
stable for the life of the database (a restored backup keeps its own id and its own history).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.db.models import Installation

TOKEN_BYTES = 8  # 16 hex characters: collisions between installations are out of the question


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def installation_id(session: Session) -> str:
    """This database's id; made (in the caller's transaction) the first time it is asked for, for a
    database the migration did not give one."""
    token = session.info.get("installation_id")
    if token is not None:
        return token
    token = session.scalar(select(Installation.token).order_by(Installation.id).limit(1))
    if token is None:
        token = new_token()
        session.add(Installation(token=token, created_at=datetime.now(timezone.utc)))
        session.flush()
    else:  # stored, so fixed for the database's life: one query per session, not one per email
        session.info["installation_id"] = token
    return token
