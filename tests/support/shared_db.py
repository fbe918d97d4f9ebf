"""Configs on the session's PostgreSQL whatever --database says: the tests of several instances
sharing one database (issue 14) need PostgreSQL itself."""

from __future__ import annotations

import json
from pathlib import Path

from support.configs import write_config
from support.postgres import database_name


def on_postgres(config_path: Path, postgres) -> Path:
    """Point a written config at a new, empty database of its own on `postgres` (made on first use)."""
    state_dir = config_path.parent / "state"
    name = postgres.new_database(database_name(state_dir) + "_pg", template="template0")
    keys = {"database_url": postgres.url(name), "database_password_file": str(postgres.password_file)}
    lines = [line for line in config_path.read_text(encoding="utf-8").splitlines()
             if not line.startswith(("database_url =", "database_password_file ="))]
    at = lines.index("[general]") + 1
    lines[at:at] = [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config_path


def postgres_config(tmp_path: Path, postgres, extra: str = "") -> Path:
    """write_config's samples roster on Maildir, its database on `postgres`."""
    return on_postgres(write_config(tmp_path, extra, database_ready=False), postgres)


def on_sqlite(config_path: Path) -> Path:
    """Point a written config back at SQLite's default file in its state directory."""
    lines = [line for line in config_path.read_text(encoding="utf-8").splitlines()
             if not line.startswith(("database_url =", "database_password_file ="))]
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config_path
