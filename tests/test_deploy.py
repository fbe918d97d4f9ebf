"""The systemd unit: well-formed, hardened (exposure <= 2.5), and it runs what the docs say."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.installed import require_tool
from support.systemd_unit import exposure_score, unit_settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "mailbot.service"


def systemd_analyze() -> str:
    return require_tool("systemd-analyze")



def test_exposure_score_is_at_most_2_5():
    score, output = exposure_score(UNIT)
    assert score <= 2.5, output


def test_unit_verifies(tmp_path):
    tool = systemd_analyze()
    # verify insists that ExecStart= exists; the real path is only there after installation.
    unit = tmp_path / "mailbot.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/mailbot/venv/bin/mailbot", "/bin/true"),
                    encoding="utf-8")
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and ("Failed to connect to bus" in proc.stderr or "System has not been booted" in proc.stderr):
        pytest.skip(f"systemd-analyze verify cannot run here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert "mailbot.service" not in proc.stderr, proc.stderr  # no warnings about our unit


def test_unit_has_what_the_issue_and_the_readme_promise():
    s = unit_settings(UNIT)
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and "WatchdogSec" in s
    assert s["StateDirectory"] == ["mailbot"] and s["User"] == ["mailbot"]
    assert s["ExecStart"][0].endswith("mailbot --config /etc/mailbot/config.toml run")
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert key in s, key
    assert s["ProtectSystem"] == ["strict"]
    # The credentials the unit loads are the ones the README tells the operator to create.
    readme = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    for name in s["LoadCredential"]:
        assert f"/etc/credstore/{name}" in readme and "/run/credentials/mailbot.service/" in readme
    # The daemon's own stop timeout stays below systemd's, so it is never killed mid-message.
    from mailbot.app.daemon import STOP_TIMEOUT_SECONDS
    assert STOP_TIMEOUT_SECONDS < int(s["TimeoutStopSec"][0].rstrip("s"))
