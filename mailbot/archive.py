"""The raw-message archive: every message is written here before it is interpreted.

Content-addressed (sha256), so the same message stored twice is one file, and no name from the
mail is ever used as a path.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def archive_raw(archive_dir: Path, raw: bytes, digest: str | None = None) -> tuple[str, str]:
    """Store raw bytes durably; return (sha256, path relative to the archive's parent)."""
    digest = digest or sha256_hex(raw)
    folder = archive_dir / digest[:2]
    path = folder / f"{digest}.eml"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{digest}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return digest, str(path.relative_to(archive_dir.parent))


def read_archived(state_dir: Path, relative: str) -> bytes:
    return (state_dir / relative).read_bytes()
