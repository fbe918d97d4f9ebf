"""Every message of tests/corpus (one per class of real-world input in issue 10) through the whole
pipeline: its outcome, the words of its reason, a reply to From, and never `failed`."""

from __future__ import annotations

import pytest

from corpus.build import lazy_cases
from support.pipeline_world import World

CASES = lazy_cases()  # each message is made by the test that reads it


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)  # one each: the daily reply cap would otherwise stop the answers
    yield w
    w.engine.dispose()


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_message(world, name):
    make, outcome, word = CASES[name]
    raw = make()
    result = world.ingest(raw)
    assert result["outcome"] == outcome, result["errors"]
    if word:
        assert any(word in error for error in result["errors"]), result["errors"]
    if outcome in ("accepted", "rejected"):
        sender = raw.split(b"From: ", 1)[1].split(b"\n", 1)[0].decode().strip()
        assert result["sender"] == sender and result["reply"]["to"] == [sender]
    if outcome == "accepted":
        assert result["rows"] and all(row["ok"] for row in result["rows"]), result["rows"]
    assert not any("可能是照片" in error for error in result["errors"])
