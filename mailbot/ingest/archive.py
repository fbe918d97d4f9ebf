"""The raw-message archive: every message is written here before it is interpreted.

Content-addressed (sha256), so the same message stored twice is one file, and no name from the
mail is ever used as a path. A file is complete (written to a temporary name, then renamed) before
the pipeline reads the message, so a crashed process never leaves a half message. It is made
durable against power loss (fsync) in a background thread, and `sync()` waits for that before the
database records the decision: the archive is always at least as durable as what refers to it.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Archive:
    def __init__(self, directory: Path):
        self.directory = directory
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-fsync")
        self._pending: list[Future] = []
        self._closed = False

    def store(self, raw: bytes, digest: str | None = None) -> tuple[str, str]:
        """Write raw bytes; return (sha256, path relative to the state directory)."""
        if self._closed:
            raise RuntimeError("the archive is closed")
        digest = digest or sha256_hex(raw)
        folder = self.directory / digest[:2]
        path = folder / f"{digest}.eml"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{digest}.{os.getpid()}.tmp"
            tmp.write_bytes(raw)
            os.replace(tmp, path)
            self._pending.append(self._syncer.submit(_fsync, path))
            self._pending.append(self._syncer.submit(_fsync, folder))
        return digest, str(path.relative_to(self.directory.parent))

    def sync(self) -> None:
        """Wait until everything stored so far is on disk (raises the first fsync error)."""
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


def read_archived(state_dir: Path, relative: str) -> bytes:
    return (state_dir / relative).read_bytes()
