"""`mailbot db copy` (issue 14 point 4): a SQLite installation holding the samples moved to
PostgreSQL loses nothing: `status --json` and `export` say the same before and after, every
table's rows and sums agree, and every archived message is readable from the database."""

from __future__ import annotations

import shutil

from openpyxl import load_workbook
from sqlalchemy import func, select

from mailbot.config import load_config
from mailbot.db.engine import engine_for, make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Message, RawMessage
from support.cli import run_cli
from support.configs import SAMPLES, write_config
from support.shared_db import on_sqlite
from support.web import SAMPLE_NOW, ingest_samples

NOW = SAMPLE_NOW.isoformat()


def cells(path) -> dict[str, list[list]]:
    """A workbook's values sheet by sheet (the file's bytes carry the time it was written)."""
    workbook = load_workbook(path)
    return {sheet.title: [[c.value for c in row] for row in sheet.iter_rows()] for sheet in workbook}


def views(config, tmp_path, tag: str) -> tuple[str, dict]:
    status = run_cli(config, "--now", NOW, "status", "--month", "2022-10", "--json").stdout
    out = tmp_path / f"台账-{tag}.xlsx"
    run_cli(config, "--now", NOW, "export", "--from", "2022-03", "--to", "2022-10", "--out", str(out))
    return status, cells(out)


def test_a_sqlite_installation_with_the_samples_moves_to_postgresql_losing_nothing(tmp_path, postgres):
    config_path = on_sqlite(write_config(tmp_path, database_ready=False))
    config = load_config(config_path)
    engine = prepare_database(config)
    results = ingest_samples(config, make_sessionmaker(engine))
    engine.dispose()
    assert len(results) == len(list((SAMPLES / "cases").iterdir()))
    before = views(config_path, tmp_path, "before")
    source_sums = run_cli(config_path, "db", "checksum", "--json").json()

    target_name = postgres.new_database("copy_target", template="template0")
    copied = run_cli(config_path, "db", "copy", "--to", postgres.url(target_name),
                     "--password-file", str(postgres.password_file), "--json")
    report = copied.json()
    print({t["table"]: t["source_rows"] for t in report["tables"]})
    assert report["identical"] and report["archive_missing"] == []
    assert report["archive_imported"] == report["archive_checked"] > 0

    # The bureau switches the config over; the archive directory is not needed any more.
    shutil.rmtree(config.archive_dir)
    moved = tmp_path / "moved" / "config.toml"
    moved.parent.mkdir()
    moved.write_text(config_path.read_text(encoding="utf-8").replace(
        "[general]\n", f'[general]\ndatabase_url = "{postgres.url(target_name)}"\n'
        f'database_password_file = "{postgres.password_file}"\n', 1), encoding="utf-8")
    after = views(moved, tmp_path, "after")
    assert after[0] == before[0]  # status --json, byte for byte
    assert after[1] == before[1]  # the ledger, cell for cell
    summed = [t for t in run_cli(moved, "db", "checksum", "--json").json() if t["sha256"] is not None]
    assert summed == [t for t in source_sums if t["sha256"] is not None]  # checked again later, the same sums

    moved_config = load_config(moved)
    target = engine_for(moved_config)
    with make_sessionmaker(target)() as session:
        kept = session.scalar(select(func.count(func.distinct(Message.sha256))).where(Message.purged_at.is_(None),
                                                                                    Message.archive_path != ""))
        assert session.scalar(select(func.count()).select_from(RawMessage)) == kept
        assert not session.scalar(select(func.count()).select_from(Message).where(
            Message.archive_path.like("archive/%")))
    target.dispose()


def test_the_target_must_be_empty_and_the_password_never_inline(tmp_path, postgres):
    config_path = on_sqlite(write_config(tmp_path))
    inline = run_cli(config_path, "db", "copy", "--to", "postgresql+psycopg://mailbot:pw@127.0.0.1/x", check=False)
    assert inline.exit_code == 2 and "--to" in inline.stderr and "pw@" not in inline.stderr

    run_cli(config_path, "excuse", "安溪县北门小学", "--month", "2022-10", "--reason", "停课")
    name = postgres.new_database("copy_twice", template="template0")
    args = ["db", "copy", "--to", postgres.url(name), "--password-file", str(postgres.password_file)]
    assert run_cli(config_path, *args).exit_code == 0
    again = run_cli(config_path, *args, check=False)
    assert again.exit_code == 1 and "not empty" in again.stderr
