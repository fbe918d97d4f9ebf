"""Shared test helpers: a config written from the samples' roster, and the real CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"
ROSTER = tomllib.loads((SAMPLES / "roster.toml").read_text(encoding="utf-8"))


def write_config(tmp: Path, extra: str = "", operator: str | None = "operator@example.test") -> Path:
    """A maildir/outbox config for the samples' roster, state under tmp."""
    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{tmp / "state"}"', "",
             "[schedule]", "deadline_day = 24", "", "[summary]", 'recipients = ["leader@example.test"]', ""]
    if operator:
        lines += ["[operator]", f'email = "{operator}"', ""]
    for mb in ROSTER["mailbox"]:
        for sub in ("cur", "new", "tmp"):
            (tmp / "maildir" / mb["name"] / sub).mkdir(parents=True, exist_ok=True)
        lines += ["[[mailbox]]", f'name = "{mb["name"]}"', f'address = "{mb["address"]}"',
                  "levels = " + json.dumps(mb["levels"]), f'maildir = "{tmp / "maildir" / mb["name"]}"',
                  f'outbox_dir = "{tmp / "outbox" / mb["name"]}"', ""]
    for sc in ROSTER["school"]:
        lines += ["[[school]]", f"name = {json.dumps(sc['name'], ensure_ascii=False)}", f'level = "{sc["level"]}"',
                  "emails = " + json.dumps(sc["emails"], ensure_ascii=False),
                  "aliases = " + json.dumps(sc["aliases"], ensure_ascii=False), ""]
    path = tmp / "config.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def run_mailbot(*args: str, config: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mailbot"] + (["--config", str(config)] if config else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONUTF8": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def ingest_json(config: Path, mailbox: str, *files: Path) -> list[dict]:
    proc = run_mailbot("ingest", "--mailbox", mailbox, "--json", *map(str, files), config=config, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture(scope="session")
def web_template(tmp_path_factory) -> Path:
    """A state directory holding the samples ingested and the two web accounts, made once."""
    from support.web import Console, add_users, ingest_samples
    root = tmp_path_factory.mktemp("web-template")
    console = Console(write_config(root))
    ingest_samples(console.config, console.sessions)
    add_users(console.sessions)
    console.close()
    return root


@pytest.fixture
def console(web_template, tmp_path):
    """The web console over a fresh copy of the sample database."""
    from support.web import Console, copy_state
    c = Console(copy_state(web_template, tmp_path, write_config))
    yield c
    c.close()
