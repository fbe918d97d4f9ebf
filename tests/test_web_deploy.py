"""The web console's systemd unit: well-formed, hardened (exposure <= 2.5), loopback only, and
what deploy/README.md tells the operator to install."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.installed import require_tool
from support.systemd_unit import exposure_score, unit_settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "mailbot-web.service"



def test_exposure_score_is_at_most_2_5():
    score, output = exposure_score(UNIT)
    assert score <= 2.5, output


def test_unit_verifies(tmp_path):
    tool = require_tool("systemd-analyze")
    unit = tmp_path / "mailbot-web.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/mailbot/venv/bin/mailbot", "/bin/true"),
                    encoding="utf-8")
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and ("Failed to connect to bus" in proc.stderr or "System has not been booted" in proc.stderr):
        pytest.skip(f"systemd-analyze verify cannot run here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert "mailbot-web.service" not in proc.stderr, proc.stderr


def test_unit_serves_on_loopback_as_the_daemons_user():
    s = unit_settings(UNIT)
    assert s["ExecStart"][0].endswith("mailbot --config /etc/mailbot/config.toml web --listen 127.0.0.1:8080")
    assert s["User"] == ["mailbot"] and s["StateDirectory"] == ["mailbot"]  # the daemon's database
    assert s["IPAddressDeny"] == ["any"] and s["IPAddressAllow"] == ["localhost"]
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    daemon = (ROOT / "deploy" / "mailbot.service").read_text(encoding="utf-8")
    assert "User=mailbot" in daemon and "StateDirectory=mailbot" in daemon
    readme = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    assert "deploy/mailbot-web.service" in readme and "proxy_pass http://127.0.0.1:8080" in readme
    assert "web user add" in readme and "https = true" in readme
