"""The operator's view and mends (issue 9, list item 7; SPEC 8): every message with its outcome,
reason, submission and reply; the submission IDs `void` takes; a reply's text; retrying a failed
email to a corrected address; the remembered senders; a table handed in some other way with its
received date. Each through the real CLI, as the operator types it."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from builders import BEIMEN_ROW, HEADER, submission
from mailbot.app.cli import cli
from ops_world import Database
from support.cli import run_cli
from support.configs import server_config, write_config

NOW = "2022-10-22T12:00:00+08:00"
OPERATOR_COMMANDS = [("messages", "list"), ("messages", "show"), ("submissions", "list"), ("outbox", "show"),
                     ("outbox", "retry"), ("senders", "list"), ("senders", "forget")]


def mb(config: Path, *args: str, check: bool = True):
    return run_cli(config, "--now", NOW, *args, check=check)


def mb_json(config: Path, *args: str):
    return json.loads(mb(config, *args, "--json").stdout)


def ingest_all(config: Path, tmp_path: Path, *raws: bytes) -> list[dict]:
    paths = []
    for number, raw in enumerate(raws):
        path = tmp_path / f"in{len(list(tmp_path.glob('in*.eml')))}-{number}.eml"
        path.write_bytes(raw)
        paths.append(str(path))
    proc = mb(config, "ingest", "--json", *paths, check=False)
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("group,command", OPERATOR_COMMANDS)
def test_each_operator_command_exists_with_json_and_an_example(group, command):
    sub = cli.get_command(None, group).commands[command]
    assert "--json" in [opt for p in sub.params for opt in getattr(p, "opts", [])]
    assert "Example" in (sub.help or "")


def test_messages_list_shows_every_message_with_outcome_and_reason(tmp_path):
    config = write_config(tmp_path)
    ingest_all(config, tmp_path,
               submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW], message_id="ok"),
               submission("cnsyxx@163.com", "chuyoujiao@163.com", None, message_id="empty"),
               b"From: a@qq.com\r\nTo: chuyoujiao@163.com\r\nSubject: hello\r\nMessage-ID: <c@qq.com>\r\n\r\nhi\r\n")

    listed = mb_json(config, "messages", "list")
    text = mb(config, "messages", "list").stdout

    items = listed if isinstance(listed, list) else listed["messages"]
    assert sorted(m["outcome"] for m in items) == ["accepted", "ignored", "rejected"]
    rejected = next(m for m in items if m["outcome"] == "rejected")
    assert "没有附件" in rejected["reason"] and rejected["sender"] == "cnsyxx@163.com"
    assert all(m["received_at"].endswith("+08:00") for m in items)
    assert "2022-10-20 10:00 +08:00" in text and "cnsyxx@163.com" in text
    only = mb_json(config, "messages", "list", "--outcome", "rejected")
    assert [m["outcome"] for m in (only if isinstance(only, list) else only["messages"])] == ["rejected"]
    beimen = mb_json(config, "messages", "list", "--school", "安溪县北门小学", "--month", "2022-10")
    assert [m["sender"] for m in (beimen if isinstance(beimen, list) else beimen["messages"])] == ["beimenxx@163.com"]
    none = mb_json(config, "messages", "list", "--mailbox", "zjg")
    assert (none if isinstance(none, list) else none["messages"]) == []


def test_messages_show_gives_the_submission_it_made_and_the_reply_it_caused(tmp_path):
    config = write_config(tmp_path)
    ingest_all(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]))
    (message,) = Database(config).ledger()

    shown = mb_json(config, "messages", "show", str(message.id))
    text = mb(config, "messages", "show", str(message.id)).stdout

    (sub,) = Database(config).submissions()
    (reply,) = Database(config).outbox()
    assert [s["id"] for s in shown["submissions"]] == [sub.id]
    assert [m["id"] for m in shown["mail"]] == [reply.id]
    assert reply.subject in text and f"submission {sub.id}" in text
    assert mb(config, "messages", "show", "999", check=False).exit_code == 2


def test_submissions_list_gives_the_ids_void_takes_and_which_is_in_force(tmp_path):
    config = write_config(tmp_path)
    ingest_all(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW], message_id="1"))
    ingest_all(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com",
                                            [["安溪县北门小学", 1, 1880, 1800, "是", "科普"]], message_id="2"))

    subs = {s["id"]: s for s in mb_json(config, "submissions", "list", "--month", "2022-10")}
    first, second = sorted(subs)
    assert subs[second]["state"] == "in_force" and subs[first]["state"] == "replaced"

    mb(config, "void", str(second), "--reason", "wrong figures")
    subs = {s["id"]: s for s in mb_json(config, "submissions", "list", "--school", "安溪县北门小学")}
    assert subs[second]["state"] == "voided" and subs[first]["state"] == "in_force"
    assert f"{first}" in mb(config, "submissions", "list").stdout


def test_outbox_show_renders_the_email_as_sent(tmp_path):
    config = write_config(tmp_path)
    ingest_all(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]))
    (receipt,) = Database(config).outbox()

    text = mb(config, "outbox", "show", str(receipt.id)).stdout
    shown = mb_json(config, "outbox", "show", str(receipt.id))

    assert receipt.subject in text and "安溪县北门小学" in text and "1878" in text
    assert "Message-ID" in text and "=?utf-8?" not in text  # decoded for a person
    assert shown["id"] == receipt.id and "1878" in shown["text"]


def test_outbox_retry_sends_a_failed_email_to_the_corrected_address(tmp_path, dovecot, smtp_server):
    config = server_config(tmp_path, dovecot, smtp_server, extra="\n[sending]\nthrottle_seconds = 0\n")
    ingest_all(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]))
    smtp_server.fail("RCPT", "550 5.1.1 mailbox unavailable")
    mb(config, "outbox", "send", check=False)
    (failed,) = [o for o in Database(config).outbox() if o.kind == "receipt"]
    assert failed.status == "failed"

    retried = mb_json(config, "outbox", "retry", str(failed.id), "--to", "beimen_new@163.com")
    mb(config, "outbox", "send")

    rows = {o.id: o for o in Database(config).outbox()}
    assert rows[failed.id].status == "failed"  # the old one is kept as it was
    assert rows[retried["id"]].status == "sent" and rows[retried["id"]].to_addrs == ["beimen_new@163.com"]
    to_schools = [m.rcpt_tos for m in smtp_server.received if m.rcpt_tos != ["operator@example.test"]]
    assert to_schools == [["beimen_new@163.com"]]  # (the operator was told of the failure)
    shown = mb_json(config, "outbox", "show", str(failed.id))
    assert [r["id"] for r in shown["retries"]] == [retried["id"]]
    (entry,) = Database(config).audit_trail()  # the same entry the web console writes for a retry
    assert (entry.action, entry.target, entry.detail) == (
        "outbox_retry", f"outbox {failed.id}", {"new_outbox": retried["id"], "to": ["beimen_new@163.com"]})
    assert mb(config, "outbox", "retry", str(retried["id"]), check=False).exit_code == 2  # sent: not failed


def test_senders_list_and_forget(tmp_path):
    config = write_config(tmp_path)
    ingest_all(config, tmp_path, submission("beimen.teacher@qq.com", "chuyoujiao@163.com", [BEIMEN_ROW],
                                            message_id="q1"))
    (pending,) = mb_json(config, "quarantine", "list")
    mb(config, "quarantine", "approve", str(pending["id"]), "--remember")

    listed = mb_json(config, "senders", "list")
    assert [(s["email"], s["school"]) for s in listed] == [("beimen.teacher@qq.com", "安溪县北门小学")]
    assert "beimen.teacher@qq.com" in mb(config, "senders", "list").stdout

    mb(config, "senders", "forget", "Beimen.Teacher@qq.com")
    assert mb_json(config, "senders", "list") == []
    (again,) = ingest_all(config, tmp_path, submission("beimen.teacher@qq.com", "chuyoujiao@163.com", [BEIMEN_ROW],
                                                       message_id="q2"))
    assert again["outcome"] == "quarantined"
    assert mb(config, "senders", "forget", "nobody@qq.com", check=False).exit_code == 2


def bare_table(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["城区义务教育阶段学校课后服务开展情况汇总表"])
    ws.append(HEADER)
    ws.append(BEIMEN_ROW)
    wb.save(path)
    return path


def test_a_table_handed_in_on_time_some_other_way_keeps_its_received_time(tmp_path):
    config = write_config(tmp_path)
    table = bare_table(tmp_path / "北门小学.xlsx")

    run_cli(config, "--now", "2022-10-27T09:00:00+08:00", "ingest", "--school", "安溪县北门小学", "--month", "2022-10", "--received", "2022-10-23 16:30", str(table))

    status = json.loads(run_cli(config, "--now", "2022-10-27T09:00:00+08:00", "status", "--month", "2022-10", "--json").stdout)
    beimen = next(s for s in status["schools"] if s["name"] == "安溪县北门小学")
    assert beimen["state"] == "on_time" and beimen["submitted_at"] == "2022-10-23T16:30:00+08:00"
    bad = run_cli(config, "ingest", "--school", "安溪县北门小学", "--month", "2022-10", "--received", "yesterday", str(table), check=False)
    assert bad.exit_code == 2 and "YYYY-MM-DD HH:MM" in bad.stderr
