"""A directory as an outbox (SPEC 5): each message becomes `<key>.eml`, for the demo and tests.

Writing is atomic (temporary file, fsync, rename) so a reader never sees half a message, and
private (0600, as mkstemp makes it: a quarantine notice quotes a citizen's address and subject), and
idempotent: the outbox key names the file, so sending the same key twice leaves the first file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

from mailbot.errors import PermanentSendError, TemporarySendError

# Letters and digits of any script stay (a school's name in Chinese is the readable part of a key);
# path separators, control and shell-awkward characters do not.
_UNSAFE = re.compile(r"[^\w.@+=-]")
MAX_NAME = 120


class DirectoryOutbox:
    """Writes outgoing messages as .eml files into one directory (created when missing)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def send(self, key: str, from_addr: str, to_addrs: Iterable[str], raw: bytes) -> Path:
        """Write `raw` as `<safe-key>.eml`; returns its path. The envelope is not stored: the
        message's own headers say who it is for."""
        if not isinstance(raw, (bytes, bytearray)):
            raise PermanentSendError(f"outbox message {key!r} is not bytes")
        target = self.path / f"{safe_key(key)}.eml"
        if target.exists():
            return target
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.path)
            try:
                with os.fdopen(fd, "wb") as tmp:
                    tmp.write(raw)
                    tmp.flush()
                    os.fsync(tmp.fileno())
                os.replace(tmp_name, target)
            except BaseException:
                _remove(tmp_name)
                raise
            _fsync_directory(self.path)
        except OSError as exc:  # disk full, permissions: may be fixed, so retry later
            raise TemporarySendError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return target


def safe_key(key: str) -> str:
    """A file name from an outbox key: readable where it can be, unique where it must be.

    Anything outside a small safe alphabet is replaced; when that changed the key (or it was too
    long), a short hash of the original keeps two different keys from sharing a file.
    """
    text = str(key)
    cleaned = _UNSAFE.sub("_", text).lstrip(".") or "message"
    if cleaned == text and len(cleaned) <= MAX_NAME:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]
    return f"{cleaned[:MAX_NAME]}-{digest}"


def _fsync_directory(path: Path) -> None:
    # The rename is durable only once the directory itself is on disk.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass
