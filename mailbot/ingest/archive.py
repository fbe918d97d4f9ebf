"""The raw-message archive: every message is written here before it is interpreted.

Two kinds, chosen by the database (`open_archive`): with SQLite, files under the state directory
(`Archive`); with PostgreSQL, where several instances on several machines share the database and
nothing else, rows of `raw_messages` in the database itself (`DatabaseArchive`), so any instance can
reprocess any message. A message's `archive_path` says which: a path relative to the state
directory, or "db:<sha256>"; `read_archived` reads either.

Files: content-addressed (sha256), so the same message stored twice is one file, and no name from the
mail is ever used as a path. A file is complete (written to a temporary name, then renamed) before
the pipeline reads the message, so a crashed process never leaves a half message. It is made
durable against power loss (fsync) in a background thread, in batches (`FSYNC_BATCH`), and `sync()`
waits for all of it before the database records the decision: the archive is always at least as
durable as what refers to it.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Files made durable together, then their folders: on ext4 the first fsync commits the journal for
# every file written before it, and the others then cost little. One file (and its folder) at a
# time cost a journal commit each: about 7 ms a message on this machine's disk, against about
# 0.5 ms in batches, which made the fsync thread the ingest's bottleneck (issue 13).
FSYNC_BATCH = 16


def _fsync_all(files: list[Path]) -> None:
    for path in files:
        _fsync(path)
    for folder in dict.fromkeys(path.parent for path in files):
        _fsync(folder)


class Archive:
    def __init__(self, directory: Path):
        self.directory = directory
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-fsync")
        self._pending: list[Future] = []
        self._unsynced: list[Path] = []  # stored, not yet handed to the fsync thread
        self._closed = False
        self._folders: set[Path] = set()  # made already: not one mkdir per message (issue 13)

    def store(self, raw: bytes, digest: str | None = None, session=None) -> tuple[str, str]:
        """Write raw bytes; return (sha256, path relative to the state directory). (`session` is
        DatabaseArchive's; a file needs none.)"""
        if self._closed:
            raise RuntimeError("the archive is closed")
        digest = digest or sha256_hex(raw)
        folder = self.directory / digest[:2]
        path = folder / f"{digest}.eml"
        if not path.exists():
            if folder not in self._folders:
                folder.mkdir(parents=True, exist_ok=True)
                self._folders.add(folder)
            tmp = folder / f".{digest}.{os.getpid()}.tmp"
            try:
                try:
                    tmp.write_bytes(raw)
                except FileNotFoundError:  # the folder was removed since (the daemon lives long)
                    folder.mkdir(parents=True, exist_ok=True)
                    tmp.write_bytes(raw)
                os.replace(tmp, path)
            except BaseException as exc:
                # A full disk (ENOSPC) or any other failure: the partial file goes, or each retry
                # of the message would leave one more behind (issue 11).
                tmp.unlink(missing_ok=True)
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    log.error("disk full: message %s not archived (%s); nothing of it is kept", digest[:12], exc)
                raise
            self._unsynced.append(path)
            if len(self._unsynced) >= FSYNC_BATCH:
                self._hand_over()
        return digest, str(path.relative_to(self.directory.parent))

    def _hand_over(self) -> None:
        files, self._unsynced = self._unsynced, []
        if files:
            self._pending.append(self._syncer.submit(_fsync_all, files))

    def sync(self) -> None:
        """Wait until everything stored so far is on disk (raises the first fsync error)."""
        self._hand_over()
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Wait for pending fsyncs, then stop the fsync thread (a later `store` raises). Idempotent."""
        self._closed = True
        try:
            self.sync()
        finally:
            self._syncer.shutdown()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


DB_PREFIX = "db:"


class DatabaseArchive:
    """Raw messages as rows of `raw_messages`, written in the session that records the message, so
    the bytes commit with what refers to them (nothing to sync separately)."""

    def store(self, raw: bytes, digest: str | None = None, session=None) -> tuple[str, str]:
        from datetime import datetime, timezone
        digest = digest or sha256_hex(raw)
        store_raw(session, digest, raw, datetime.now(timezone.utc))
        return digest, DB_PREFIX + digest

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


def store_raw(session, digest: str, raw: bytes, now) -> None:
    """Insert the bytes unless that digest is there already (another instance may be inserting the
    same message this moment: the database lets one insert win, the other does nothing)."""
    from sqlalchemy import select
    from mailbot.db.models import RawMessage
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
        session.execute(insert(RawMessage).values(sha256=digest, raw=raw, size=len(raw), stored_at=now)
                        .on_conflict_do_nothing(index_elements=["sha256"]))
    elif session.scalar(select(RawMessage.sha256).where(RawMessage.sha256 == digest)) is None:
        session.add(RawMessage(sha256=digest, raw=raw, size=len(raw), stored_at=now))
        session.flush()


def open_archive(config) -> "Archive | DatabaseArchive":
    """The archive for this config: in the database under PostgreSQL, else the state directory's."""
    return DatabaseArchive() if config.database_backend == "postgresql" else Archive(config.archive_dir)


def read_archived(session, state_dir: Path, relative: str) -> bytes:
    """The raw bytes a message's archive_path names (FileNotFoundError when they are gone)."""
    if relative.startswith(DB_PREFIX):
        from mailbot.db.models import RawMessage
        row = session.get(RawMessage, relative[len(DB_PREFIX):])
        if row is None:
            raise FileNotFoundError(f"raw message {relative} is not in the database")
        return row.raw
    return (state_dir / relative).read_bytes()


def delete_archived(session, state_dir: Path, relative: str) -> None:
    """Delete a message's archived bytes (retention of ignored mail)."""
    if relative.startswith(DB_PREFIX):
        from sqlalchemy import delete
        from mailbot.db.models import RawMessage
        session.execute(delete(RawMessage).where(RawMessage.sha256 == relative[len(DB_PREFIX):]))
    elif relative:
        (state_dir / relative).unlink(missing_ok=True)
