"""One migrated SQLite database per test session, copied into each test's state directory.

Running the Alembic migrations for every test costs an Alembic import and a schema build each
time; a copy of a file migrated once by the real migrations is the same database, except that
whatever a migration makes at random (the installation id in Message-IDs) is the same in every
copy. Tests of the migrations themselves, of a first command on an empty state directory, or of a
database made anew start without it (write_config(..., database_ready=False)).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

DATABASE_NAME = "mailbot.sqlite3"  # what config.database_url defaults to under state_dir

_directory: Path | None = None
_template: Path | None = None


def use_directory(directory: Path) -> None:
    """Where the template is made (a session-scoped pytest directory; see conftest.py)."""
    global _directory, _template
    _directory, _template = directory, None


def template() -> Path:
    """The migrated template, made on first use."""
    global _template
    if _template is None:
        from mailbot.db.engine import make_engine
        from mailbot.db.migrate import upgrade

        directory = _directory or Path(tempfile.mkdtemp(prefix="mailbot-template-"))
        path = directory / DATABASE_NAME
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
        finally:
            engine.dispose()  # the last connection checkpoints the WAL into the file
        _template = path
    return _template


def seed(state_dir: Path) -> Path:
    """A copy of the template as state_dir's database, where config.database_url points."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / DATABASE_NAME
    shutil.copyfile(template(), target)
    return target
