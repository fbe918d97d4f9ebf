"""The CLI's excuse, void and quarantine decisions write the audit trail (issue 12's gap): the same
entry the web console writes for the same action, through the same function, with the command
line's user as the actor (`cli:LOGIN`, where the web console writes `web:NAME`)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailbot.db.models import AuditEntry
from support.cli import run_cli
from support.web import Console, copy_state, logged_in

NOW = "2022-10-26T10:00:00+08:00"


@pytest.fixture
def state(web_template, tmp_path, monkeypatch):
    """The sample database (quarantine 1 pending: 宝华中学's table from an unknown address), its
    config, and the web console over it; the CLI's user is `clerk`."""
    monkeypatch.setenv("USER", "clerk")
    monkeypatch.delenv("SUDO_USER", raising=False)
    config = copy_state(web_template, tmp_path)
    console = Console(config)
    yield config, console
    console.close()


def cli(config, *args):
    return run_cli(config, "--now", NOW, *args)


def trail(console) -> list[tuple]:
    with console.sessions() as session:
        return [(e.actor, e.action, e.target, e.detail) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def submission_ids(config, school: str) -> list[int]:
    listed = cli(config, "submissions", "list", "--month", "2022-10", "--school", school, "--json").json()
    return [item["id"] for item in listed]


def test_cli_excuse_its_withdrawal_and_void_are_in_the_trail(state):
    config, console = state
    cli(config, "excuse", "安溪县北门小学", "--month", "2022-10", "--reason", "停课装修")
    cli(config, "excuse", "安溪县北门小学", "--month", "2022-10", "--reason", "again")  # nothing new: no entry
    cli(config, "excuse", "安溪县北门小学", "--month", "2022-10", "--undo")
    (wrong,) = submission_ids(config, "安溪县城南中学")
    cli(config, "void", str(wrong), "--reason", "sent by the wrong school")

    assert trail(console) == [
        ("cli:clerk", "excuse", "安溪县北门小学 2022-10", {"reason": "停课装修"}),
        ("cli:clerk", "excuse_withdraw", "安溪县北门小学 2022-10", {}),
        ("cli:clerk", "void", f"submission {wrong}",
         {"reason": "sent by the wrong school", "school": "安溪县城南中学", "month": "2022-10", "restored": None}),
    ]


def test_cli_and_web_write_the_same_entry_for_the_same_action(state):
    config, console = state
    client, token = logged_in(console.app, "clerk")
    client.post("/school/excuse", data={"csrf": token, "name": "安溪县北门小学", "month": "2022-10", "reason": "停课"})
    cli(config, "excuse", "安溪县东门小学", "--month", "2022-10", "--reason", "停课")
    web_void, cli_void = submission_ids(config, "安溪县城南中学") + submission_ids(config, "安溪县凤华小学")
    client.post(f"/submission/{web_void}/void", data={"csrf": token, "reason": "错报"})
    cli(config, "void", str(cli_void), "--reason", "错报")

    web_excuse, cli_excuse, web_voided, cli_voided = trail(console)
    assert (web_excuse[0], cli_excuse[0]) == ("web:clerk", "cli:clerk")
    assert web_excuse[1:] == ("excuse", "安溪县北门小学 2022-10", {"reason": "停课"})
    assert cli_excuse[1:] == ("excuse", "安溪县东门小学 2022-10", {"reason": "停课"})
    assert (web_voided[1], sorted(web_voided[3])) == (cli_voided[1], sorted(cli_voided[3])) == (
        "void", ["month", "reason", "restored", "school"])
    assert cli_voided[3]["school"] == "安溪县凤华小学" and cli_voided[2] == f"submission {cli_void}"


def test_cli_quarantine_approve_is_in_the_trail_and_a_refused_decision_is_not(state):
    config, console = state
    (pending,) = cli(config, "quarantine", "list", "--json").json()
    approved = cli(config, "quarantine", "approve", str(pending["id"]), "--json").json()
    refused = run_cli(config, "--now", NOW, "quarantine", "reject", str(pending["id"]), check=False)

    assert approved["outcome"] == "accepted" and refused.exit_code == 1
    assert trail(console) == [("cli:clerk", "quarantine_approve", f"quarantine {pending['id']}",
                               {"school": "、".join(pending["candidate_schools"]), "remember": False,
                                "outcome": "accepted"})]


def test_cli_quarantine_reject_is_in_the_trail(state):
    config, console = state
    (pending,) = cli(config, "quarantine", "list", "--json").json()
    cli(config, "quarantine", "reject", str(pending["id"]), "--reason", "非学校邮箱")

    assert trail(console) == [("cli:clerk", "quarantine_reject", f"quarantine {pending['id']}",
                               {"reason": "非学校邮箱"})]


def unwritable_trail(*args, **kwargs):
    raise RuntimeError("the audit trail cannot be written")


def test_an_approval_the_trail_cannot_record_is_not_made(state, monkeypatch):
    # The decision, the rows and the receipt it causes, and its audit entry are one transaction:
    # an approval that reached the database without its entry would be an action nobody can trace.
    config, console = state
    (pending,) = cli(config, "quarantine", "list", "--json").json()
    before = cli(config, "submissions", "list", "--month", "2022-10", "--json").json()
    monkeypatch.setattr("mailbot.db.audit.quarantine_approved", unwritable_trail)
    with pytest.raises(RuntimeError, match="audit trail"):
        cli(config, "quarantine", "approve", str(pending["id"]))
    monkeypatch.undo()

    assert cli(config, "quarantine", "list", "--json").json() == [pending]  # still pending, as it was
    assert cli(config, "submissions", "list", "--month", "2022-10", "--json").json() == before
    assert trail(console) == []
    approved = cli(config, "quarantine", "approve", str(pending["id"]), "--json").json()  # and can be approved
    assert approved["outcome"] == "accepted" and [entry[1] for entry in trail(console)] == ["quarantine_approve"]


def test_a_rejection_the_trail_cannot_record_is_not_made(state, monkeypatch):
    config, console = state
    (pending,) = cli(config, "quarantine", "list", "--json").json()
    monkeypatch.setattr("mailbot.db.audit.quarantine_rejected", unwritable_trail)
    with pytest.raises(RuntimeError, match="audit trail"):
        cli(config, "quarantine", "reject", str(pending["id"]))
    monkeypatch.undo()

    assert cli(config, "quarantine", "list", "--json").json() == [pending]
    assert trail(console) == []
