"""Every sample message through the real CLI, judged by its expect.json exactly as
../shared/tools/check_corpus.py judges it (samples/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SAMPLES, ingest_json, run_mailbot, write_config

CASES = sorted(p for p in (SAMPLES / "cases").iterdir() if p.is_dir())
SEQUENCES = sorted(p for p in (SAMPLES / "sequences").iterdir() if p.is_dir())


def differences(expect: dict, got: dict) -> list[str]:
    diffs = []
    if "outcome" in expect and got["outcome"] != expect["outcome"]:
        diffs.append(f"outcome {got['outcome']} != {expect['outcome']}: {got['errors']}")
    if expect.get("month") and got["month"] != expect["month"]:
        diffs.append(f"month {got['month']} != {expect['month']}")
    if "reply" in expect and bool(got["reply"]) != bool(expect["reply"]):
        diffs.append(f"reply {got['reply']!r}, expected {'one' if expect['reply'] else 'none'}")
    if "rows" in expect:
        if len(got["rows"]) != len(expect["rows"]):
            diffs.append(f"{len(got['rows'])} rows != {len(expect['rows'])}: {got['rows']}")
        for i, (erow, grow) in enumerate(zip(expect["rows"], got["rows"])):
            for key, value in erow.items():
                if key == "school" and erow.get("ok") is False:
                    continue
                if grow.get(key) != value:
                    diffs.append(f"row {i + 1} {key}: {grow.get(key)!r} != {value!r} ({grow['errors']})")
    return diffs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sample_case(case: Path, tmp_path: Path):
    expect = json.loads((case / "expect.json").read_text(encoding="utf-8"))
    config = write_config(tmp_path)
    run_mailbot("db", "upgrade", config=config)
    (got,) = ingest_json(config, expect["mailbox"], case / "message.eml")
    assert got["file"] == str(case / "message.eml")
    assert differences(expect, got) == []


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s.name for s in SEQUENCES])
def test_sample_sequence(sequence: Path, tmp_path: Path):
    expect = json.loads((sequence / "expect.json").read_text(encoding="utf-8"))
    config = write_config(tmp_path)
    for eml, exp in zip(sorted(sequence.glob("*.eml")), expect["messages"]):
        (got,) = ingest_json(config, exp["mailbox"], eml)
        assert differences(exp, got) == [], eml.name
    status = json.loads(run_mailbot("status", "--month", expect["status"]["month"], "--json", config=config).stdout)
    by_name = {s["name"]: s for s in status["schools"]}
    for school in expect["status"]["schools"]:
        for key, value in school.items():
            assert by_name[school["name"]][key] == value, (school["name"], key)


def test_whole_samples_folder_twice_is_all_duplicates(tmp_path: Path):
    """Ingesting everything a second time changes nothing: every message is a duplicate."""
    config = write_config(tmp_path)
    files = [c / "message.eml" for c in CASES] + sorted(SAMPLES.glob("sequences/*/*.eml"))
    first = ingest_json(config, "zjg", *files)
    assert "duplicate" not in {r["outcome"] for r in first}
    status_before = run_mailbot("status", "--month", "2022-10", "--json", config=config).stdout
    outbox_before = run_mailbot("outbox", "list", "--json", config=config).stdout
    second = ingest_json(config, "zjg", *files)
    assert [r["outcome"] for r in second] == ["duplicate"] * len(files)
    assert all(r["reply"] is None for r in second)
    assert run_mailbot("status", "--month", "2022-10", "--json", config=config).stdout == status_before
    assert run_mailbot("outbox", "list", "--json", config=config).stdout == outbox_before
