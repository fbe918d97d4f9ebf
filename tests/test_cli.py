"""The CLI as scripts and operators use it (SPEC 8): exit codes, JSON on stdout only, help texts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from builders import table_xlsx
from mailbot.app.cli import cli
from support.cli import run_cli, run_process
from support.configs import SAMPLES, write_config

def all_commands(group=cli, prefix=()):
    for name in group.list_commands(None):
        yield " ".join(prefix + (name,))
        command = group.get_command(None, name)
        if hasattr(command, "commands"):
            yield from all_commands(command, prefix + (name,))


def test_each_command_module_lists_the_commands_it_defines():
    import importlib
    from mailbot.app.cli import COMMAND_MODULES
    assert len(list(all_commands())) > 30  # the walk below sees every command, subcommands included
    for module, names in COMMAND_MODULES.items():
        assert tuple(c.name for c in importlib.import_module(module).COMMANDS) == tuple(names)


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_list_of_commands_in_help_is_what_the_commands_own_help_says(width):
    """`mailbot --help` lists the commands from cli.py's table, without importing their modules
    (issue 13): the same lines click prints from each command's own help."""
    import click
    from mailbot.app.cli import cli

    def listing(format_commands) -> str:
        ctx = click.Context(cli, info_name="mailbot")
        formatter = ctx.make_formatter()
        formatter.width = width
        format_commands(ctx, formatter)
        return formatter.getvalue()

    table = listing(cli.format_commands)
    assert "status" in table and table == listing(lambda ctx, f: click.Group.format_commands(cli, ctx, f))


@pytest.mark.parametrize("args,unneeded", [
    (["--help"], {"sqlalchemy", "alembic", "jinja2", "openpyxl", "flask", "mailbot.db"}),
    (["status", "--month", "2022-10", "--json"], {"alembic", "jinja2", "openpyxl", "flask", "mailbot.ingest",
                                                 "mailbot.outbound", "mailbot.web"}),
])
def test_a_command_imports_only_what_it_uses(tmp_path, args, unneeded):
    """What answers at once (issue 13): modules, not the clock. `status` on a database at the
    current schema reads the stored revision, without Alembic."""
    config = write_config(tmp_path)
    run_cli(config, "db", "upgrade")
    code = ("import runpy, sys\nsys.argv = ['mailbot'] + sys.argv[1:]\ntry:\n"
            "    runpy.run_module('mailbot', run_name='__main__')\nexcept SystemExit as exc:\n"
            "    assert not exc.code, exc.code\nprint(' '.join(sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, "--config", str(config), *args], capture_output=True,
                          text=True, timeout=120)
    loaded = set(proc.stderr.split("\n")[-2].split())
    assert "mailbot.app.cli" in loaded, proc.stderr
    assert {m for m in loaded if m.split(".")[0] in unneeded or ".".join(m.split(".")[:2]) in unneeded} == set()


@pytest.mark.parametrize("command", sorted(all_commands()))
def test_every_command_has_help_with_an_example(command):
    result = run_cli(None, *command.split(), "--help")
    assert "Example" in result.stdout


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
    (result,) = run_cli(config, "ingest", "--school", "北门小学", "--month", "2022-09", "--json", table).json_lines()
    assert result["outcome"] == "accepted" and result["month"] == "2022-09" and result["reply"] is None
    assert result["rows"][0]["school"] == "安溪县北门小学" and result["rows"][0]["n"] == 3
    status = run_cli(config, "status", "--month", "2022-09", "--json").json()
    school = next(s for s in status["schools"] if s["name"] == "安溪县北门小学")
    assert school["enrolled"] == 1878


def test_school_without_month_is_bad_usage(tmp_path):
    config = write_config(tmp_path)
    result = run_cli(config, "ingest", "--school", "北门小学", SAMPLES / "roster.toml", check=False)
    assert result.exit_code == 2


def test_json_output_is_only_json_and_status_has_the_spec_shape(tmp_path):
    """The installed script as its own process: nothing but JSON reaches the real stdout (not
    Alembic's start-up, not a worker's output), on a state directory without a database yet."""
    config = write_config(tmp_path, database_ready=False)
    eml = SAMPLES / "cases" / "001-163-webmail-xlsx" / "message.eml"
    proc = run_process(config, "ingest", "--mailbox", "chuyoujiao", "--json", eml)
    result = json.loads(proc.stdout)
    assert set(result) == {"file", "message_id", "mailbox", "sender", "outcome", "month", "rows", "errors",
                           "warnings", "reply"}
    assert set(result["rows"][0]) >= {"school", "schools_count", "enrolled", "participating", "two_plus_n",
                                      "services", "n", "month", "ok", "errors", "warnings"}
    status = json.loads(run_cli(config, "status", "--month", "2022-10", "--json").stdout)
    assert set(status) == {"month", "deadline", "schools", "totals"}
    assert set(status["totals"]) == {"required", "on_time", "late", "missing", "enrolled", "participating",
                                     "two_plus_n_schools", "two_plus_three_schools"}
    beimen = next(s for s in status["schools"] if s["name"] == "安溪县北门小学")
    assert beimen["state"] == "on_time" and beimen["submitted_at"].endswith("+08:00")
    assert beimen["services"] and all(s not in ("作业辅导", "体育活动") for s in beimen["services"])


def test_quarantine_from_the_command_line(tmp_path):
    config = write_config(tmp_path)
    eml = SAMPLES / "cases" / "009-unknown-sender-quarantined" / "message.eml"
    run_cli(config, "ingest", "--mailbox", "zjg", eml)
    listed = run_cli(config, "quarantine", "list", "--json").json()
    assert len(listed) == 1 and listed[0]["candidate_schools"]
    approved = run_cli(config, "quarantine", "approve", listed[0]["id"], "--json").json()
    assert approved["outcome"] == "accepted" and approved["reply"]
    again = run_cli(config, "quarantine", "reject", listed[0]["id"], check=False)
    assert again.exit_code == 1 and "already approved" in again.stderr
    assert run_cli(config, "quarantine", "list", "--json").json() == []
