"""Sender authentication in the pipeline (issue 11 point 1): under "dmarc" a registered sender's
mail counts only with an aligned pass, here mailbot's own DKIM check of a real signature; without
one it is quarantined as "unverified sender" and the operator's notice says which check failed."""

from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import select

from builders import submission
from mailbot.db.models import Quarantine
from support.dkim_keys import FakeDns, make_key, sign
from support.pipeline_world import World

SCHOOL = "beimenxx@163.com"
BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]
KEY_NAME = "s1._domainkey.163.com"


@pytest.fixture
def dmarc_world(tmp_path):
    world = World(tmp_path, sender_auth="dmarc")
    world.pipeline.txt_lookup = FakeDns({KEY_NAME: make_key().txt_record})
    yield world
    world.engine.dispose()


def school_mail(message_id: str, **kwargs) -> bytes:
    return submission(SCHOOL, "chuyoujiao@163.com", [BEIMEN], message_id=message_id, **kwargs)


def notice_text(world) -> str:
    (notice,) = [m for m in world.outbox() if m.kind == "operator_quarantine"]
    return email.message_from_bytes(notice.raw, policy=email.policy.default).get_body(("plain",)).get_content()


def test_a_real_aligned_dkim_signature_is_accepted(dmarc_world):
    result = dmarc_world.ingest(sign(school_mail("signed"), "163.com", make_key()))
    assert result["outcome"] == "accepted" and result["reply"]["to"] == [SCHOOL]


def test_no_authentication_is_quarantined_with_the_failed_check_for_the_operator(dmarc_world):
    result = dmarc_world.ingest(school_mail("unsigned"))
    assert result["outcome"] == "quarantined" and result["reply"] is None
    with dmarc_world.sessions() as session:
        held = session.scalar(select(Quarantine))
    assert held.reason.startswith("unverified sender: ")
    assert "no Authentication-Results" in notice_text(dmarc_world)
    assert "发件邮箱虽在学校名册中，但未能确认邮件确实来自该邮箱" in notice_text(dmarc_world)
    assert [m.to_addrs for m in dmarc_world.outbox()] == [["operator@example.test"]]  # nobody else


def test_a_temporary_dns_error_is_quarantined_and_says_so(dmarc_world):
    dmarc_world.pipeline.txt_lookup = FakeDns(failing={KEY_NAME})
    result = dmarc_world.ingest(sign(school_mail("dns"), "163.com", make_key()))
    assert result["outcome"] == "quarantined"
    assert "temporary DNS error" in notice_text(dmarc_world)


def test_an_attackers_spf_pass_is_quarantined(dmarc_world):
    forged = school_mail("forged", headers={}).replace(
        b"From:", b"Authentication-Results: mx25; spf=pass smtp.mail=evil@attacker.example;\r\nFrom:", 1)
    assert dmarc_world.ingest(forged)["outcome"] == "quarantined"


def test_the_samples_mode_evidence_still_quarantines_evidence_of_forgery(tmp_path):
    world = World(tmp_path, sender_auth=None)  # the Maildir default: "evidence"
    clean = world.ingest(school_mail("clean"))
    forged = world.ingest(school_mail("dmarc").replace(
        b"From:", b"Authentication-Results: mx25; dmarc=fail header.from=163.com;\r\nFrom:", 1))
    assert (clean["outcome"], forged["outcome"]) == ("accepted", "quarantined")
    assert "未通过的验证：DMARC failed: dmarc=fail for 163.com" in notice_text(world)
    world.engine.dispose()


def test_a_stranger_is_told_to_the_operator_as_not_in_the_roster(dmarc_world):
    stranger = submission("someone@qq.com", "chuyoujiao@163.com", [BEIMEN], message_id="stranger")
    assert dmarc_world.ingest(stranger)["outcome"] == "quarantined"
    assert "发件邮箱不在学校名册中" in notice_text(dmarc_world)
