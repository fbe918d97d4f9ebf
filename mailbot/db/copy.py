"""`mailbot db copy --to URL`: move an installation's database to another one (SQLite to
PostgreSQL, issue 14), losing nothing, and say how to check it.

1. The target is migrated to the current schema and must be empty (a copy never merges).
2. Every table is copied row by row with its primary keys, parents before children, in batches;
   PostgreSQL's id sequences are then set past the copied ids.
3. Raw messages archived as files under the state directory are read into the target's
   `raw_messages` when the target is PostgreSQL (instances on other machines have no such
   directory), and those messages' archive_path becomes "db:<sha256>".
4. Both databases are summed up table by table (`checksums`: rows, and a SHA-256 over the rows in
   key order, times in UTC, bytes by their own SHA-256), and every archived message is read back
   from the target and its SHA-256 compared. `mailbot db checksum` prints the same sums for any
   configured database later.

messages.archive_path is left out of the sums (step 3 rewrites it on purpose), and so is
raw_messages (the target holds the imported files besides what the source held); step 4 checks them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, MetaData, Table, func, insert, select, text, update
from sqlalchemy.engine import Engine

from mailbot.db.models import Base, Message
from mailbot.errors import MailbotError

log = logging.getLogger(__name__)

BATCH = 500
NOT_SUMMED = {"messages": {"archive_path"}, "raw_messages": None}  # None: the whole table


@dataclass
class TableSum:
    table: str
    rows: int
    sha256: str | None  # None: not summed (see NOT_SUMMED)


@dataclass
class CopyReport:
    source: list[TableSum]
    target: list[TableSum]
    archive_imported: int = 0  # files read into raw_messages
    archive_checked: int = 0  # messages whose raw bytes were read back from the target and matched
    archive_missing: list[int] = field(default_factory=list)  # message ids whose file was not there

    @property
    def identical(self) -> bool:
        """Every summed table has the same rows and sum on both sides."""
        def summed(sums):
            return [(s.table, s.rows, s.sha256) for s in sums if s.sha256 is not None]
        return summed(self.source) == summed(self.target) and len(self.source) == len(self.target)


def _canonical(value) -> object:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (bytes, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    return value


def checksums(engine: Engine) -> list[TableSum]:
    """Rows and a SHA-256 of every table of the schema, in the same order on any backend."""
    sums = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            left_out = NOT_SUMMED.get(table.name, set())
            rows = conn.scalar(select(func.count()).select_from(table))
            if left_out is None:
                sums.append(TableSum(table.name, rows, None))
                continue
            columns = [c for c in table.columns if c.name not in left_out]
            digest = hashlib.sha256()
            for row in conn.execute(select(*columns).order_by(*table.primary_key.columns)):
                line = {c.name: _canonical(v) for c, v in zip(columns, row)}
                digest.update(json.dumps(line, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n")
            sums.append(TableSum(table.name, rows, digest.hexdigest()))
    return sums


def _require_empty(target: Engine) -> None:
    with target.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name == "installation":
                continue  # made by the migration itself; replaced by the source's below
            if conn.scalar(select(func.count()).select_from(table)):
                raise MailbotError(f"the target database is not empty (table {table.name} has rows): "
                                   "db copy only copies into a new, empty database")


def copy_database(source: Engine, target: Engine, state_dir: Path) -> CopyReport:
    """Copy everything from `source` into the (empty) `target`; see the module docstring."""
    from mailbot.db.migrate import upgrade
    upgrade(target)
    _require_empty(target)
    with source.connect() as src, target.begin() as dst:
        dst.execute(Base.metadata.tables["installation"].delete())
        for table in Base.metadata.sorted_tables:
            into = _writable(table)
            batch = []
            for row in src.execute(select(table).order_by(*table.primary_key.columns)):
                batch.append(dict(row._mapping))
                if len(batch) >= BATCH:
                    dst.execute(insert(into), batch)
                    batch = []
            if batch:
                dst.execute(insert(into), batch)
        if target.dialect.name == "postgresql":
            _advance_sequences(dst)
    report = CopyReport(source=[], target=[])
    if target.dialect.name == "postgresql":
        _import_archive(target, state_dir, report)
    _check_archive(target, state_dir, report)
    report.source, report.target = checksums(source), checksums(target)
    return report


def _writable(table: Table) -> Table:
    """The table as the copy writes it: a JSON column's None is SQL NULL, as it was in the source
    (by default SQLAlchemy would write the JSON value null)."""
    copy = table.to_metadata(MetaData())
    for column in copy.columns:
        if isinstance(column.type, JSON):
            column.type = JSON(none_as_null=True)
    return copy


def _advance_sequences(conn) -> None:
    for table in Base.metadata.sorted_tables:
        if "id" in table.columns and table.columns["id"].autoincrement in (True, "auto") and \
                table.columns["id"].primary_key:
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                              f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))


def _import_archive(target: Engine, state_dir: Path, report: CopyReport) -> None:
    """Archive files into raw_messages, one transaction per batch of messages."""
    from mailbot.ingest.archive import DB_PREFIX, store_raw
    from sqlalchemy.orm import Session
    with Session(target) as session:
        todo = session.execute(select(Message.id, Message.sha256, Message.archive_path).where(
            Message.archive_path != "", ~Message.archive_path.startswith(DB_PREFIX),
            Message.purged_at.is_(None))).all()
        for n, (pk, digest, relative) in enumerate(todo, 1):
            path = state_dir / relative
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                report.archive_missing.append(pk)
                log.error("message #%d: its archive file %s is missing; left as it was", pk, path)
                continue
            store_raw(session, digest, raw, datetime.now(timezone.utc))
            session.execute(update(Message).where(Message.id == pk).values(archive_path=DB_PREFIX + digest))
            report.archive_imported += 1
            if n % BATCH == 0:
                session.commit()
        session.commit()


def _check_archive(target: Engine, state_dir: Path, report: CopyReport) -> None:
    """Read every kept message's raw bytes back from where the target says they are."""
    from mailbot.ingest.archive import read_archived
    from sqlalchemy.orm import Session
    with Session(target) as session:
        kept = session.execute(select(Message.id, Message.sha256, Message.archive_path).where(
            Message.archive_path != "", Message.purged_at.is_(None))).all()
        for pk, digest, relative in kept:
            if pk in report.archive_missing:
                continue
            try:
                raw = read_archived(session, state_dir, relative)
            except FileNotFoundError:
                report.archive_missing.append(pk)
                continue
            if hashlib.sha256(raw).hexdigest() != digest:
                raise MailbotError(f"message #{pk}: the archived bytes do not match its SHA-256")
            report.archive_checked += 1
