"""Reading the project's systemd units in tests: their settings, and what systemd-analyze says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support.installed import require_tool


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, values in file order (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def exposure_score(unit: Path) -> tuple[float, str]:
    """`systemd-analyze security` of the unit: its overall exposure level, and the full output."""
    proc = subprocess.run([require_tool("systemd-analyze"), "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", output)
    assert match, output
    return float(match.group(1)), output
