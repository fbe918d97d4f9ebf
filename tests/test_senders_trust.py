"""`senders trust ADDRESS --unauthenticated` (issue 11 point 1, SPEC 3.4): the operator exempts one
registered address from sender authentication, knowingly; it is shown in `senders list`, audited,
and withdrawn with `senders forget ADDRESS --unauthenticated`."""

from __future__ import annotations

from sqlalchemy import select

from builders import submission
from mailbot.config import load_config
from mailbot.db.engine import engine_for, make_sessionmaker
from mailbot.db.models import AuditEntry
from support.cli import run_cli
from support.configs import write_config

SCHOOL = "beimenxx@163.com"
BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]


def ingest_unsigned(config, tmp_path, number: int) -> str:
    """An unsigned table from the school's registered address: under "dmarc" it proves nothing."""
    path = tmp_path / f"mail{number}.eml"
    path.write_bytes(submission(SCHOOL, "chuyoujiao@163.com", [BEIMEN[:3] + [1797 - number] + BEIMEN[4:]],
                                message_id=f"m{number}"))
    (result,) = run_cli(config, "ingest", "--mailbox", "chuyoujiao", "--json", path, check=False).json_lines()
    return result["outcome"]


def test_an_exempted_address_counts_without_authentication_until_the_exemption_is_withdrawn(tmp_path):
    config = write_config(tmp_path, sender_auth="dmarc")
    assert ingest_unsigned(config, tmp_path, 1) == "quarantined"

    trusted = run_cli(config, "senders", "trust", "BeimenXX@163.com", "--unauthenticated", "--json").json()
    assert (trusted["email"], trusted["school"], trusted["new"]) == (SCHOOL, "安溪县北门小学", True)
    assert ingest_unsigned(config, tmp_path, 2) == "accepted"

    listed = run_cli(config, "senders", "list", "--json").json()
    assert [(s["email"], s["school"], s["kind"]) for s in listed] == [(SCHOOL, "安溪县北门小学", "unauthenticated")]
    assert "without sender authentication" in run_cli(config, "senders", "list").stdout
    again = run_cli(config, "senders", "trust", SCHOOL, "--unauthenticated", "--json").json()
    assert again["new"] is False  # once is enough; nothing more in the audit trail

    run_cli(config, "senders", "forget", SCHOOL, "--unauthenticated")
    assert run_cli(config, "senders", "list", "--json").json() == []
    assert ingest_unsigned(config, tmp_path, 3) == "quarantined"

    engine = engine_for(load_config(config))
    with make_sessionmaker(engine)() as session:
        actions = [(a.action, a.target) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    engine.dispose()
    assert actions == [("sender_trust_unauthenticated", SCHOOL), ("sender_forget_unauthenticated", SCHOOL)]


def test_only_a_registered_address_is_exempted_and_only_when_asked_for_knowingly(tmp_path):
    config = write_config(tmp_path, sender_auth="dmarc")

    stranger = run_cli(config, "senders", "trust", "attacker@qq.com", "--unauthenticated", check=False)
    bare = run_cli(config, "senders", "trust", SCHOOL, check=False)
    nothing_to_withdraw = run_cli(config, "senders", "forget", SCHOOL, "--unauthenticated", check=False)

    assert stranger.exit_code == 2 and "not a registered address" in stranger.stderr
    assert bare.exit_code == 2 and "--unauthenticated" in bare.stderr
    assert nothing_to_withdraw.exit_code == 2 and "not exempted" in nothing_to_withdraw.stderr
    assert run_cli(config, "senders", "list", "--json").json() == []
