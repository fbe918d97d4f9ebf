"""Every sample message through the CLI, judged by its expect.json exactly as
../shared/tools/check_corpus.py judges it (samples/README.md). The cases run in this process; the
whole folder also goes through the installed script as its own process, twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import ingest_json, run_cli, run_process
from support.configs import SAMPLES, write_config
from support.samples import CASES, SEQUENCES, differences


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sample_case(case: Path, tmp_path: Path):
    expect = json.loads((case / "expect.json").read_text(encoding="utf-8"))
    config = write_config(tmp_path)
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
    status = run_cli(config, "status", "--month", expect["status"]["month"], "--json").json()
    by_name = {s["name"]: s for s in status["schools"]}
    for school in expect["status"]["schools"]:
        for key, value in school.items():
            assert by_name[school["name"]][key] == value, (school["name"], key)


def test_whole_samples_folder_twice_is_all_duplicates(tmp_path: Path):
    """Ingesting everything a second time changes nothing: every message is a duplicate. Both
    passes are one `mailbot ingest --json` process over all files, whose stdout is only JSON."""
    config = write_config(tmp_path)
    files = [c / "message.eml" for c in CASES] + sorted(SAMPLES.glob("sequences/*/*.eml"))
    first = run_process(config, "ingest", "--mailbox", "zjg", "--json", *files, check=False)
    assert first.exit_code in (0, 1), str(first)
    assert [r["file"] for r in first.json_lines()] == [str(f) for f in files]
    assert "duplicate" not in {r["outcome"] for r in first.json_lines()}
    status_before = run_cli(config, "status", "--month", "2022-10", "--json").stdout
    outbox_before = run_cli(config, "outbox", "list", "--json").stdout
    second = run_process(config, "ingest", "--mailbox", "zjg", "--json", *files, check=False)
    assert second.exit_code in (0, 1), str(second)
    assert [r["outcome"] for r in second.json_lines()] == ["duplicate"] * len(files)
    assert all(r["reply"] is None for r in second.json_lines())
    assert run_cli(config, "status", "--month", "2022-10", "--json").stdout == status_before
    assert run_cli(config, "outbox", "list", "--json").stdout == outbox_before
