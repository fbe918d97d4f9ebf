"""Message-IDs unique per installation (issue 9, list item 5): a random installation id is made
with the database and kept in it, so two installations (or a database made anew) never reuse a
Message-ID, while the same installation keeps the same id for the same outbox row."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

from builders import BEIMEN_ROW, submission
from ops_world import Database, parsed
from support.cli import run_cli
from support.configs import write_config


def demo_message_ids(out: Path) -> set[str]:
    run_cli(None, "demo", "--out", str(out))
    return {str(parsed(path.read_bytes())["Message-ID"]) for path in (out / "outbox").rglob("*.eml")}


def test_two_demo_runs_give_disjoint_message_ids(tmp_path):
    first, second = demo_message_ids(tmp_path / "one"), demo_message_ids(tmp_path / "two")

    assert len(first) > 10 and len(second) == len(first)
    assert first.isdisjoint(second)


def test_a_database_made_anew_does_not_reuse_message_ids(tmp_path):
    eml = tmp_path / "table.eml"
    eml.write_bytes(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]))
    ids = []
    for attempt in ("a", "b"):
        config = write_config(tmp_path / attempt, database_ready=False)  # each database made anew
        run_cli(config, "ingest", "--json", str(eml))
        (receipt,) = Database(config).outbox()
        ids.append(receipt.message_id)
    assert ids[0] != ids[1]


def test_the_installation_id_stays_with_the_database(tmp_path):
    config = write_config(tmp_path)
    for number in range(2):
        eml = tmp_path / f"t{number}.eml"
        eml.write_bytes(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW], message_id=f"t{number}"))
        json.loads(run_cli(config, "ingest", "--json", str(eml)).stdout)
    domains_and_tags = {m.message_id.split("@")[0].split(".")[1] for m in Database(config).outbox()}
    assert len(domains_and_tags) == 1  # one installation, one id in every Message-ID it makes
