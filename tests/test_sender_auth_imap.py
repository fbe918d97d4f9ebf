"""Sender authentication end to end on a real Dovecot with the IMAP default in force (issue 11
point 1): nothing configures sender_auth, so the mailboxes are "dmarc"; an unsigned mail in a
school's name is quarantined, the same mail with a real DKIM signature (the key's DNS answer
injected) is accepted, and so is one whose aligned pass comes from the configured authserv_id."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from builders import submission
from mailbot.config import load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Quarantine
from mailbot.ingest.isolation import InlineRunner
from mailbot.ingest.pipeline import Pipeline
from mailbot.ingest.poll import poll_mailboxes
from support.configs import ACCOUNTS, server_config
from support.dkim_keys import FakeDns, make_key, sign

NOW = datetime(2022, 10, 20, 3, 0, tzinfo=timezone.utc)
SCHOOL = "beimenxx@163.com"
BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]
RECEIVER = "mx25.163.com"  # the receiving server whose Authentication-Results are trusted


@pytest.fixture
def imap_world(tmp_path, dovecot):
    path = server_config(tmp_path, dovecot, None, sender_auth=None,
                         extra=f'\n[security]\nauthserv_ids = ["{RECEIVER}"]\n')
    config = load_config(path)
    assert all(config.security.mode_for(mb, "imap") == "dmarc" for mb in config.mailboxes)
    engine = prepare_database(config)
    sessions = make_sessionmaker(engine)
    pipeline = Pipeline(config, sessions, InlineRunner(config.limits), lambda: NOW,
                        txt_lookup=FakeDns({"s1._domainkey.163.com": make_key().txt_record}))

    def poll() -> dict[str, str]:
        results: dict[str, str] = {}
        poll_mailboxes(config, sessions, pipeline, lambda: NOW,
                       lambda result: results.setdefault(result.as_json()["message_id"],
                                                         result.as_json()["outcome"]))
        return results

    poll()  # the baseline of first contact (SPEC 5): the mailboxes are empty
    yield dovecot, poll, sessions
    pipeline.close()
    engine.dispose()


def school_mail(message_id: str, pupils: int) -> bytes:
    row = BEIMEN[:3] + [pupils] + BEIMEN[4:]
    return submission(SCHOOL, "chuyoujiao@163.com", [row], message_id=message_id)


def test_under_the_imap_default_only_an_authenticated_school_mail_counts(imap_world):
    dovecot, poll, sessions = imap_world
    user = ACCOUNTS["chuyoujiao"]
    dovecot.append(user, school_mail("forged", 1797))
    dovecot.append(user, sign(school_mail("signed", 1796), "163.com", make_key()))
    dovecot.append(user, f"Authentication-Results: {RECEIVER}; dkim=pass header.d=163.com;\r\n".encode()
                   + school_mail("vouched", 1795))

    outcomes = poll()

    assert outcomes == {"forged@test": "quarantined", "signed@test": "accepted",
                        "vouched@test": "accepted"}
    with sessions() as session:
        (held,) = session.scalars(select(Quarantine)).all()
    assert held.reason.startswith("unverified sender: ")
