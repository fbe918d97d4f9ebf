"""The first start on a mailbox that already holds years of mail (issue 9, list item 1; SPEC 5):
the first poll records what is there as `baseline` without downloading or answering it; history
comes in only on purpose (`poll --since`, or `[general] first_poll_since`), recorded but never
answered unless `--reply`; and nothing that reached the mailbox more than `reply_max_age_days`
before it is processed is answered automatically. `ingest FILE`, run on purpose, is exempt."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from builders import submission
from ops_world import Database, archive_files, parsed
from support.cli import run_cli, start_process
from support.configs import server_config, write_config
from support.standins import HoldingProxy, RecordingProxy

SCHOOLS = [("beimenxx@163.com", "安溪县北门小学"), ("cnsyxx@163.com", "安溪县城南实验小学"),
           ("axlsx@163.com", "安溪县第六实验小学")]
BOX = "chuyoujiao@example.test"


def old_submission(number: int, sent: datetime) -> bytes:
    sender, name = SCHOOLS[number % len(SCHOOLS)]
    return submission(sender, "chuyoujiao@163.com", [[name, 1, 1000 + number, 900 + number, "是", "科普、阅读"]],
                      date=sent, message_id=f"old{number}", subject=f"{sent:%Y年%m月}课后服务汇总表")


def complaint(number: int, sent: datetime) -> bytes:
    return (f"From: citizen{number}@qq.com\r\nTo: chuyoujiao@163.com\r\nSubject: complaint {number}\r\n"
            f"Date: {sent:%a, %d %b %Y %H:%M:%S +0800}\r\nMessage-ID: <complaint{number}@qq.com>\r\n\r\n"
            "The road outside the school is dark.\r\n").encode()


def history(count: int) -> list[tuple[bytes, datetime]]:
    """`count` messages over 2022-2025: four in five are submissions, the rest complaints."""
    start = datetime(2022, 3, 1, 9, tzinfo=timezone.utc)
    out = []
    for number in range(count):
        sent = start + timedelta(days=7 * number)
        out.append((complaint(number, sent) if number % 5 == 4 else old_submission(number, sent), sent))
    return out


def seed(server, user: str, messages: list[tuple[bytes, datetime]]) -> None:
    """APPEND with the INTERNALDATE each message had when it arrived (a real mailbox's history)."""
    client = server.client(user)
    client.multiappend("INBOX", [{"msg": raw, "date": when} for raw, when in messages])


def poll(config: Path, *args: str) -> list[dict]:
    proc = run_cli(config, "poll", "--json", *args, check=False)
    assert proc.exit_code == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_the_first_poll_of_a_full_mailbox_downloads_and_answers_nothing(tmp_path, dovecot, imap_proxy):
    seed(dovecot, BOX, history(200))
    config = server_config(tmp_path, dovecot, None, imap_port=imap_proxy.port)

    poll(config)

    db = Database(config)
    assert db.outcomes() == {"baseline": 200}
    assert db.outbox() == [] and db.submissions() == []
    assert archive_files(config) == []
    assert not [c for c in imap_proxy.client_lines() if "BODY.PEEK[]" in c.upper()]  # nothing downloaded

    # A school writes after the start: it gets its receipt as always.
    dovecot.append(BOX, submission("beimenxx@163.com", "chuyoujiao@163.com",
                                   [["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]],
                                   date=datetime.now(timezone.utc), message_id="fresh-one"))
    results = poll(config)
    assert [(r["outcome"], r["reply"] is not None) for r in results] == [("accepted", True)]
    assert [o.kind for o in db.outbox()] == ["receipt"]


def test_poll_since_imports_history_on_purpose_recorded_and_never_answered(tmp_path, dovecot):
    seed(dovecot, BOX, history(40))
    config = server_config(tmp_path, dovecot, None)
    poll(config)  # the baseline

    results = poll(config, "--since", "2022-01-01")

    assert len(results) == 40
    assert {r["outcome"] for r in results} == {"accepted", "ignored"}
    assert all(r["reply"] is None for r in results)
    db = Database(config)
    assert db.outbox() == []  # not a receipt, not a notice
    assert len(db.submissions()) == 32
    assert db.outcomes()["baseline"] == 0 or "baseline" not in db.outcomes()

    # Asked again, nothing is imported twice.
    assert {r["outcome"] for r in poll(config, "--since", "2022-01-01")} <= {"duplicate"}
    assert len(Database(config).submissions()) == 32


def test_poll_since_with_reply_answers_the_imported_history(tmp_path, dovecot):
    seed(dovecot, BOX, history(5))
    config = server_config(tmp_path, dovecot, None)
    poll(config)

    results = poll(config, "--since", "2022-01-01", "--reply")

    # The complaint is triaged from its description, like new mail, before the downloads.
    assert [r["outcome"] for r in results] == ["ignored"] + ["accepted"] * 4
    assert [o.kind for o in Database(config).outbox()] == ["receipt"] * 4


def test_poll_since_takes_a_date(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    proc = run_cli(config, "poll", "--since", "last year", check=False)
    assert proc.exit_code == 2 and "YYYY-MM-DD" in proc.stderr


def test_first_poll_since_in_the_config_imports_only_the_recent_history(tmp_path, dovecot):
    seed(dovecot, BOX, history(60))  # 2022-03 .. 2023-04
    config = server_config(tmp_path, dovecot, None)
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[general]\n", '[general]\nfirst_poll_since = "2023-01-01"\n'), encoding="utf-8")

    results = poll(config)

    db = Database(config)
    since = datetime(2022, 12, 31, 16, tzinfo=timezone.utc)  # 2023-01-01 00:00 in Asia/Shanghai
    expected = sum(1 for _raw, arrived in history(60) if arrived >= since)
    imported = [m for m in db.ledger() if m.outcome != "baseline"]
    assert len(results) == len(imported) == expected > 0
    assert db.outcomes()["baseline"] == 60 - expected
    assert db.submissions() and all(s.received_at >= since - timedelta(days=1) for s in db.submissions())
    assert db.outbox() == []


def test_mail_that_waited_too_long_is_recorded_not_answered_and_the_operator_is_told(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    poll(config)  # an empty mailbox: the baseline is nothing
    now = datetime.now(timezone.utc)
    seed(dovecot, BOX, [
        (submission("beimenxx@163.com", "chuyoujiao@163.com", [["安溪县北门小学", 1, 1878, 1797, "是", "科普"]],
                    date=now - timedelta(days=30), message_id="waited"), now - timedelta(days=30)),
        (submission("cnsyxx@163.com", "chuyoujiao@163.com", [["安溪县城南实验小学", 1, 2000, 1900, "是", "科普"]],
                    date=now - timedelta(days=1), message_id="recent"), now - timedelta(days=1)),
    ])

    results = {r["message_id"]: r for r in poll(config)}

    assert results["waited@test"]["outcome"] == "accepted" and results["waited@test"]["reply"] is None
    assert results["recent@test"]["outcome"] == "accepted" and results["recent@test"]["reply"] is not None
    sent = Database(config).outbox()
    assert sorted((o.kind, o.recipient) for o in sent if o.recipient != "operator@example.test") == [
        ("receipt", "cnsyxx@163.com")]
    told = [o for o in sent if o.recipient == "operator@example.test"]
    assert len(told) == 1
    assert "beimenxx@163.com" in parsed(told[0].raw).get_body(("plain",)).get_content()


def test_reply_max_age_days_is_a_setting(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    config.write_text(config.read_text(encoding="utf-8") + "\n[replies]\nreply_max_age_days = 60\n", encoding="utf-8")
    poll(config)
    now = datetime.now(timezone.utc)
    seed(dovecot, BOX, [(submission("beimenxx@163.com", "chuyoujiao@163.com",
                                    [["安溪县北门小学", 1, 1878, 1797, "是", "科普"]], date=now - timedelta(days=30),
                                    message_id="waited"), now - timedelta(days=30))])

    (result,) = poll(config)

    assert result["reply"] is not None


def test_a_new_uidvalidity_with_nothing_known_is_a_new_baseline(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    poll(config)  # the empty INBOX, under its first UIDVALIDITY
    seed(dovecot, BOX, history(10))
    dovecot.reset_uids(BOX)  # the folder is recreated: nothing in it matches the ledger

    poll(config)

    db = Database(config)
    assert db.outcomes() == {"baseline": 10}
    assert db.outbox() == []


def test_a_maildir_starts_with_a_baseline_and_judges_age_by_delivery_time(tmp_path):
    config = write_config(tmp_path)
    new = tmp_path / "maildir" / "chuyoujiao" / "new"
    for number, (raw, _) in enumerate(history(3)):
        (new / f"old{number}.host").write_bytes(raw)

    run_cli(config, "poll")
    db = Database(config)
    assert db.outcomes() == {"baseline": 3} and db.outbox() == []

    waited = new / "waited.host"
    waited.write_bytes(submission("beimenxx@163.com", "chuyoujiao@163.com",
                                  [["安溪县北门小学", 1, 1878, 1797, "是", "科普"]], message_id="waited"))
    month_ago = time.time() - 30 * 86400
    os.utime(waited, (month_ago, month_ago))
    (new / "fresh.host").write_bytes(submission("cnsyxx@163.com", "chuyoujiao@163.com",
                                                [["安溪县城南实验小学", 1, 2000, 1900, "是", "科普"]],
                                                message_id="fresh"))
    run_cli(config, "poll", "--no-send")

    outcomes = {m.message_id: m.outcome for m in db.ledger()}
    assert outcomes["waited@test"] == outcomes["fresh@test"] == "accepted"
    assert [(o.kind, o.recipient) for o in db.outbox() if o.kind in ("receipt", "rejection")] == [
        ("receipt", "cnsyxx@163.com")]


def test_ingest_run_on_purpose_answers_old_mail(tmp_path):
    config = write_config(tmp_path)
    eml = tmp_path / "old.eml"
    eml.write_bytes(old_submission(0, datetime(2022, 10, 20, 2, tzinfo=timezone.utc)))

    proc = run_cli(config, "ingest", "--json", str(eml))

    result = json.loads(proc.stdout)
    assert result["outcome"] == "accepted" and result["reply"] is not None


def test_a_big_first_contact_is_committed_a_chunk_at_a_time_and_a_kill_resumes_after_the_last(tmp_path, dovecot):
    """Issue 13 point 6: a mailbox of 1,200 messages described and recorded 100 UIDs at a time.
    The poll is killed while it waits for the answer to its 4th description: the 3 chunks before
    are committed, and the next poll records the other 900 without describing the first 300 again."""
    dovecot.append_many(BOX, [complaint(number, datetime(2024, 1, 1, tzinfo=timezone.utc)) for number in range(1200)])
    held = HoldingProxy(dovecot.port, "BODYSTRUCTURE", nth=4)
    config = server_config(tmp_path, dovecot, None, "[limits]\nledger_chunk = 100\n", imap_port=held.port)
    try:
        proc = start_process(config, "poll", "--no-send", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert held.held.wait(120), "the poll never asked for a 4th chunk"
        finally:
            proc.kill()
            proc.wait()
    finally:
        held.close()
    db = Database(config)
    assert db.outcomes() == {"baseline": 300}
    assert sorted(int(m.uid) for m in db.ledger()) == list(range(1, 301))

    recording = RecordingProxy(dovecot.port)
    try:
        config.write_text(config.read_text(encoding="utf-8").replace(f"port = {held.port}\n",
                                                                     f"port = {recording.port}\n"), encoding="utf-8")
        assert poll(config) == []
        described = [line for line in recording.client_lines() if "BODYSTRUCTURE" in line.upper()]
        assert not [line for line in recording.client_lines() if "BODY.PEEK[]" in line.upper()]
        assert len(described) == 9 and all(" 1:" not in line and ",1," not in line for line in described)
        assert db.outcomes() == {"baseline": 1200}
        assert sorted(int(m.uid) for m in db.ledger()) == list(range(1, 1201))

        # The folder is past first contact: what arrives now is new mail, answered as always.
        dovecot.append(BOX, submission("beimenxx@163.com", "chuyoujiao@163.com",
                                       [["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]],
                                       date=datetime.now(timezone.utc), message_id="after-the-baseline"))
        assert [r["outcome"] for r in poll(config)] == ["accepted"]
    finally:
        recording.close()
