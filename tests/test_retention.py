"""SPEC 5: archived copies of ignored mail are deleted after the retention; submissions are kept."""

from datetime import timedelta

from sqlalchemy import select

from builders import BEIMEN_ROW, submission
from mailbot.db.models import Message
from mailbot.ingest.archive import read_archived
from mailbot.ingest.retention import purge_ignored_archives
from support.pipeline_world import NOW, World


def archived(session, state_dir, archive_path) -> bool:
    try:
        read_archived(session, state_dir, archive_path)
    except FileNotFoundError:
        return False
    return True


def test_ignored_archives_are_deleted_after_the_retention_and_submissions_kept(tmp_path):
    w = World(tmp_path)
    complaint = w.ingest(submission("parent@example.com", "chuyoujiao@163.com", None, subject="投诉"))
    report = w.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]))
    assert (complaint["outcome"], report["outcome"]) == ("ignored", "accepted")
    with w.sessions.begin() as s:
        assert purge_ignored_archives(s, w.config, NOW + timedelta(days=29)) == 0
    with w.sessions.begin() as s:
        assert purge_ignored_archives(s, w.config, NOW + timedelta(days=31)) == 1
    with w.sessions() as s:
        kept = {m.outcome: archived(s, w.config.state_dir, m.archive_path) for m in s.scalars(select(Message))}
    assert kept == {"ignored": False, "accepted": True}  # a file, or a row of raw_messages (PostgreSQL)
    with w.sessions.begin() as s:
        assert purge_ignored_archives(s, w.config, NOW + timedelta(days=40)) == 0


def test_a_second_copy_of_ignored_mail_does_not_keep_its_archive(tmp_path):
    w = World(tmp_path)
    complaint = submission("parent@example.com", "chuyoujiao@163.com", None, subject="投诉")
    assert [w.ingest(complaint)["outcome"], w.ingest(complaint)["outcome"]] == ["ignored", "duplicate"]
    with w.sessions.begin() as s:
        assert purge_ignored_archives(s, w.config, NOW + timedelta(days=31)) == 1
    with w.sessions() as s:
        paths = {m.archive_path for m in s.scalars(select(Message))}
        assert len(paths) == 1 and not archived(s, w.config.state_dir, paths.pop())


def test_an_archive_folder_removed_meanwhile_is_made_again(tmp_path):
    # The archive remembers the folders it made (one mkdir each, not one a message); a long-lived
    # daemon's archive still stores a message whose folder someone removed since.
    import shutil
    from mailbot.ingest.archive import Archive
    with Archive(tmp_path / "archive") as archive:
        first = b"From: a@b\r\n\r\none"
        archive.store(first, "ab" + "0" * 62)
        archive.sync()
        shutil.rmtree(tmp_path / "archive" / "ab")
        digest, relative = archive.store(b"From: a@b\r\n\r\ntwo", "ab" + "1" * 62)
        archive.sync()
        assert (tmp_path / relative).read_bytes() == b"From: a@b\r\n\r\ntwo"


def test_sync_makes_every_stored_file_and_its_folder_durable(tmp_path, monkeypatch):
    # The fsync thread takes the files in batches (archive.FSYNC_BATCH): whatever was stored before
    # sync(), a full batch or not, is fsynced, and each file's folder after the file.
    from mailbot.ingest import archive as archive_module
    synced = []
    monkeypatch.setattr(archive_module, "_fsync", synced.append)
    with archive_module.Archive(tmp_path / "archive") as archive:
        paths = [tmp_path / archive.store(b"From: a@b\r\n\r\n%d" % i)[1] for i in range(archive_module.FSYNC_BATCH + 3)]
        archive.sync()
        assert set(synced) == set(paths) | {p.parent for p in paths}
        assert all(p.parent in synced[synced.index(p):] for p in paths)
