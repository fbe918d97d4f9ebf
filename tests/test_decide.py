"""`mailbot.rules.decide`: every outcome, warning and "reply or not" from data, no database."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from builders import submission
from mailbot.config import load_config
from mailbot.ingest.analysis import analyse
from mailbot.rules.decide import OUTCOME_RULES, Context, decide
from mailbot.rules.outcome import Outcome, Reply, Result, Twin
from mailbot.rules.roster import Roster
from support.configs import write_config

BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]
CHENGNAN = ["安溪县城南实验小学", 1, 2100, 2000, "是", "科普、美术"]
RECEIVED = datetime(2022, 10, 20, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_config(write_config(tmp_path_factory.mktemp("decide")))


def decided(config, raw: bytes, **context):
    analysis = analyse(raw, config.limits, config.timezone.key)
    facts = dict(received_at=RECEIVED, timezone=config.timezone, mailbox_levels=("primary",),
                 address_for_level={"primary": "chuyoujiao@163.com", "middle": "zjg23236764@163.com"},
                 own_addresses=frozenset({"chuyoujiao@163.com", "zjg23236764@163.com"}), message_bytes=len(raw),
                 max_message_bytes=config.limits.max_message_bytes, reply_cap=3, replies_today=0)
    return decide(analysis.message, analysis, Roster(config.schools), Context(**{**facts, **context}))


def test_a_valid_table_is_accepted_with_a_receipt_to_the_sender(config):
    decision = decided(config, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN]))
    assert decision.outcome == Outcome.ACCEPTED and decision.reply == Reply("receipt", ["beimenxx@163.com"])
    assert [r.school for r in decision.recorded_rows] == ["安溪县北门小学"] and decision.warnings == []


def test_the_daily_cap_is_data_the_decision_reads(config):
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN])
    assert decided(config, raw, reply_cap=2, replies_today=1).reply is not None
    capped = decided(config, raw, reply_cap=2, replies_today=2)
    assert capped.outcome == Outcome.ACCEPTED and capped.reply is None and capped.reply_cap == "recipient"
    assert capped.warnings == ["今日已向该邮箱自动回复2次，本次不再回复。"]


def test_the_wrong_mailbox_is_a_warning_of_the_decision(config):
    decision = decided(config, submission("beimenxx@163.com", "zjg23236764@163.com", [BEIMEN]),
                       mailbox_levels=("middle",))
    assert decision.outcome == Outcome.ACCEPTED and decision.reply.kind == "receipt"
    assert decision.warnings == [decision.wrong_mailbox_note]
    assert "初幼教股邮箱 chuyoujiao@163.com" in decision.wrong_mailbox_note


def test_reply_to_is_answered_only_when_registered_for_the_same_school(config):
    # Issue 11: a Reply-To let anyone use the bureau's account to mail strangers.
    stranger = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], headers={"Reply-To": "office@beimen.test"})
    ours = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], headers={"Reply-To": "chuyoujiao@163.com"})
    other_school = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN],
                              headers={"Reply-To": "cnsx_jwc@126.com"})
    same_school = submission("cnsyxx@163.com", "chuyoujiao@163.com", [CHENGNAN],
                             headers={"Reply-To": "cnsx_jwc@126.com"})
    assert decided(config, stranger).reply.to == ["beimenxx@163.com"]
    assert decided(config, ours).reply.to == ["beimenxx@163.com"]
    assert decided(config, other_school).reply.to == ["beimenxx@163.com"]
    assert decided(config, same_school).reply.to == ["cnsx_jwc@126.com"]


def test_the_reply_cap_holds_per_sender_and_per_mailbox(config):
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN])
    by_sender = decided(config, raw, replies_for_sender=3)
    assert by_sender.reply is None and by_sender.reply_cap == "sender"
    capped = decided(config, raw, replies_from_mailbox=150, reply_cap_per_mailbox=150)
    assert capped.reply is None and capped.reply_cap == "mailbox"
    assert capped.warnings == ["今日本邮箱的自动回复已达上限，本次不再回复。"]
    assert decided(config, raw, replies_for_sender=2, replies_from_mailbox=149, reply_cap_per_mailbox=150).reply


def test_an_earlier_copy_makes_a_duplicate_unless_the_operator_approved_it(config):
    raw = submission("teacher@qq.com", "chuyoujiao@163.com", [BEIMEN])
    twin = Twin(7, "m7@test", "teacher@qq.com")
    assert decided(config, raw).outcome == Outcome.QUARANTINED
    assert decided(config, raw, twin=twin).outcome == Outcome.DUPLICATE
    approved = decided(config, raw, twin=twin, trusted_schools=("安溪县北门小学",))
    assert approved.outcome == Outcome.ACCEPTED and approved.reply.to == ["teacher@qq.com"]


def test_an_unreadable_table_states_its_reason_once(config):
    """Issue 10, defect 8: the reason used to be listed twice (once more by "why nothing")."""
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", None,
                     attachments=[("汇总表.xlsx", b"PK\x03\x04 not a zip at all", "application/octet-stream")])
    decision = decided(config, raw)
    assert decision.outcome == Outcome.REJECTED and decision.reply.kind == "rejection"
    assert len(decision.errors) == 1 and "《汇总表.xlsx》" in decision.errors[0]


def test_automatic_mail_is_ignored_before_anything_else(config):
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], headers={"Auto-Submitted": "auto-replied"})
    decision = decided(config, raw)
    assert decision.outcome == Outcome.IGNORED and decision.reply is None and decision.reason
    assert OUTCOME_RULES[-1].__name__ == "submission"  # the one rule that always decides comes last


def test_a_result_is_the_ingest_json_object_with_its_keys_in_order(config):
    decision = decided(config, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id="m1"))
    result = Result.of("m1.eml", "chuyoujiao", "m1@test", "beimenxx@163.com", decision,
                       {"to": ["beimenxx@163.com"], "subject": "回执"})
    as_json = result.as_json()
    assert list(as_json) == ["file", "message_id", "mailbox", "sender", "outcome", "month", "rows", "errors",
                             "warnings", "reply"]
    assert as_json["outcome"] == "accepted" and type(as_json["outcome"]) is str and as_json["month"] == "2022-10"
    assert as_json["rows"][0]["school"] == "安溪县北门小学"
    with pytest.raises(ValueError):
        Result("x", "acepted")  # a misspelt outcome is refused, not stored
