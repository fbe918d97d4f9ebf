"""Replies to our own mail without a table (issue 9, list item 3; SPEC 3.4/4): "收到，谢谢！" to a
receipt is `ignored` (left for the staff, nobody answered); a reply to a reminder or a rejection
without a table still gets the rejection with the template, since the school tried."""

from __future__ import annotations

import pytest

import json
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from pathlib import Path

from builders import BEIMEN_ROW, submission
from ops_world import Database, parsed
from support.cli import run_cli
from support.configs import write_config

NOW = "2022-10-20T12:00:00+08:00"


def ingest(config: Path, tmp_path: Path, raw: bytes, name: str) -> dict:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    proc = run_cli(config, "--now", NOW, "ingest", "--json", str(path))
    return json.loads(proc.stdout)


def reply_to(original: bytes, body: str, sender: str = "beimenxx@163.com") -> bytes:
    ours = parsed(original)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ours["From"]
    msg["Subject"] = "Re: " + str(ours["Subject"])
    msg["Date"] = format_datetime(datetime.fromisoformat("2022-10-20T14:00:00+08:00"))
    msg["Message-ID"] = "<reply-of-beimen@163.com>"
    msg["In-Reply-To"] = ours["Message-ID"]
    msg["References"] = ours["Message-ID"]
    quoted = "\n".join("> " + line for line in ours.get_body(("plain",)).get_content().splitlines())
    msg.set_content(f"{body}\n\n{quoted}\n")
    return msg.as_bytes()


def test_thanks_for_a_receipt_is_ignored_and_not_answered(tmp_path):
    config = write_config(tmp_path)
    first = ingest(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]), "table")
    assert first["outcome"] == "accepted"
    (receipt,) = Database(config).outbox()

    result = ingest(config, tmp_path, reply_to(receipt.raw, "收到，谢谢！"), "thanks")

    assert result["outcome"] == "ignored" and result["reply"] is None
    assert [o.kind for o in Database(config).outbox()] == ["receipt"]
    status = json.loads(run_cli(config, "--now", NOW, "status", "--month", "2022-10", "--json").stdout)
    assert {s["name"]: s["state"] for s in status["schools"]}["安溪县北门小学"] == "on_time"


def test_a_reply_to_a_reminder_without_the_table_still_gets_the_template(tmp_path):
    """Not a change: kept as it was (the school tried), next to the change above."""
    config = write_config(tmp_path)
    run_cli(config, "--now", NOW, "remind", "--month", "2022-10", "--stage", "upcoming")
    reminder = next(o for o in Database(config).outbox() if o.recipient == "beimenxx@163.com")

    result = ingest(config, tmp_path, reply_to(reminder.raw, "好的，马上报送。"), "reply")

    assert result["outcome"] == "rejected" and result["reply"] is not None
    rejection = Database(config).outbox()[-1]
    assert rejection.kind == "rejection"
    names = [part.get_filename() for part in parsed(rejection.raw).iter_attachments()]
    assert names and names[0].endswith(".xlsx")
