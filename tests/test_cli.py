"""The CLI as scripts and operators use it (SPEC 8): exit codes, JSON on stdout only, help texts."""

from __future__ import annotations

import json

import pytest

from builders import table_xlsx
from conftest import SAMPLES, run_mailbot, write_config
from mailbot.app.cli import cli

def all_commands(group=cli, prefix=()):
    for name, command in group.commands.items():
        yield " ".join(prefix + (name,))
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))


@pytest.mark.parametrize("command", sorted(all_commands()))
def test_every_command_has_help_with_an_example(command):
    from click.testing import CliRunner
    result = CliRunner().invoke(cli, command.split() + ["--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_readme_documents_every_command():
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    leaves = [c for c in all_commands() if not hasattr(cli.get_command(None, c.split()[0]), "commands")
              or " " in c]
    missing = [c for c in leaves if f"mailbot {c}" not in readme]
    assert missing == []


def test_bare_table_entered_by_the_operator(tmp_path):
    config = write_config(tmp_path)
    table = tmp_path / "北门小学.xlsx"
    table.write_bytes(table_xlsx([["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]], title=None))
    proc = run_mailbot("ingest", "--school", "北门小学", "--month", "2022-09", "--json", str(table), config=config)
    (result,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert result["outcome"] == "accepted" and result["month"] == "2022-09" and result["reply"] is None
    assert result["rows"][0]["school"] == "安溪县北门小学" and result["rows"][0]["n"] == 3
    status = json.loads(run_mailbot("status", "--month", "2022-09", "--json", config=config).stdout)
    school = next(s for s in status["schools"] if s["name"] == "安溪县北门小学")
    assert school["enrolled"] == 1878


def test_school_without_month_is_bad_usage(tmp_path):
    config = write_config(tmp_path)
    proc = run_mailbot("ingest", "--school", "北门小学", str(SAMPLES / "roster.toml"), config=config, check=False)
    assert proc.returncode == 2


def test_json_output_is_only_json_and_status_has_the_spec_shape(tmp_path):
    config = write_config(tmp_path)
    eml = SAMPLES / "cases" / "001-163-webmail-xlsx" / "message.eml"
    proc = run_mailbot("ingest", "--mailbox", "chuyoujiao", "--json", str(eml), config=config)
    result = json.loads(proc.stdout)
    assert set(result) == {"file", "message_id", "mailbox", "sender", "outcome", "month", "rows", "errors",
                           "warnings", "reply"}
    assert set(result["rows"][0]) >= {"school", "schools_count", "enrolled", "participating", "two_plus_n",
                                      "services", "n", "month", "ok", "errors", "warnings"}
    status = json.loads(run_mailbot("status", "--month", "2022-10", "--json", config=config).stdout)
    assert set(status) == {"month", "deadline", "schools", "totals"}
    assert set(status["totals"]) == {"required", "on_time", "late", "missing", "enrolled", "participating",
                                     "two_plus_n_schools", "two_plus_three_schools"}
    beimen = next(s for s in status["schools"] if s["name"] == "安溪县北门小学")
    assert beimen["state"] == "on_time" and beimen["submitted_at"].endswith("+08:00")
    assert beimen["services"] and all(s not in ("作业辅导", "体育活动") for s in beimen["services"])


def test_quarantine_from_the_command_line(tmp_path):
    config = write_config(tmp_path)
    eml = SAMPLES / "cases" / "009-unknown-sender-quarantined" / "message.eml"
    run_mailbot("ingest", "--mailbox", "zjg", str(eml), config=config)
    listed = json.loads(run_mailbot("quarantine", "list", "--json", config=config).stdout)
    assert len(listed) == 1 and listed[0]["candidate_schools"]
    approved = json.loads(run_mailbot("quarantine", "approve", str(listed[0]["id"]), "--json", config=config).stdout)
    assert approved["outcome"] == "accepted" and approved["reply"]
    again = run_mailbot("quarantine", "reject", str(listed[0]["id"]), config=config, check=False)
    assert again.returncode == 1 and "already approved" in again.stderr
    assert json.loads(run_mailbot("quarantine", "list", "--json", config=config).stdout) == []
