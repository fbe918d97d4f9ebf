"""A full disk while archiving (issue 11 point 9): the partial temporary file is removed, so retries
leave nothing behind, and the message is not marked as archived."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from mailbot.ingest.archive import Archive


def test_a_write_that_fails_half_way_leaves_no_temporary_file(tmp_path, monkeypatch):
    real_write = Path.write_bytes

    def disk_full_half_way(self, data):
        real_write(self, data[: len(data) // 2])  # what reached the disk before ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    archive = Archive(tmp_path / "archive")
    monkeypatch.setattr(Path, "write_bytes", disk_full_half_way)
    for _ in range(3):  # three attempts of the same message
        with pytest.raises(OSError) as raised:
            archive.store(b"From: a@b\r\n\r\n" + b"x" * 10_000)
        assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()

    assert [p for p in (tmp_path / "archive").rglob("*") if p.is_file()] == []
    digest, relative = archive.store(b"From: a@b\r\n\r\n" + b"x" * 10_000)  # space again: stored whole
    archive.close()
    assert (tmp_path / relative).stat().st_size == 10_013
