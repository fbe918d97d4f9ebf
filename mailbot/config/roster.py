"""The roster as a CSV file (general.roster_file), as staff save it from Excel or WPS."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mailbot.config.schema import LEVELS, School
from mailbot.errors import ConfigError


def decode_roster_bytes(raw: bytes) -> str:
    """CSV rosters come as staff save them from Excel or WPS: UTF-8 (with or without BOM) or GBK."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def load_roster_csv(path: Path) -> list[School]:
    """Columns: name, level, emails, aliases (emails and aliases separated by ';')."""
    try:
        text = decode_roster_bytes(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"general.roster_file {path} cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"general.roster_file {path} is neither UTF-8 nor GBK text") from exc
    schools = []
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"name", "level"} <= {f.strip() for f in reader.fieldnames}:
        raise ConfigError(f"general.roster_file {path} needs a header line: name,level,emails,aliases")
    for line_no, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("name"):
            continue
        level = {"小学": "primary", "中学": "middle", "初中": "middle"}.get(row.get("level", ""), row.get("level", ""))
        if level not in LEVELS:
            raise ConfigError(f"general.roster_file {path} line {line_no}: level must be primary or middle, not {row.get('level')!r}")
        split = lambda s: [x.strip() for x in s.replace("；", ";").split(";") if x.strip()]  # noqa: E731
        schools.append(School(name=row["name"], level=level,
                              emails=[e.lower() for e in split(row.get("emails", ""))],
                              aliases=split(row.get("aliases", ""))))
    return schools
