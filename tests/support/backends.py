"""Which tests touch mailbot's database, and so run on both backends (CI: the whole suite on
SQLite, then `-m database --database=postgresql`; see .ci/run and conftest.py).

A module touches the database when it builds a config or a database through the harness (the
words below); that is decided from its source, so a new test module is marked without anyone
remembering to. A module that tests something only SQLite has (the file, its locking) is listed
in SQLITE_ONLY with the reason; a single test can also carry `@pytest.mark.database` itself.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

DATABASE_WORDS = re.compile(r"write_config|make_config|fast_config|server_config|prepare_database|make_engine|"
                            r"\bconsole\b|web_template|config_path|World\(|pipeline_world|ops_world|summary_sample")

SQLITE_ONLY: dict[str, str] = {  # a module, or module::test
    "test_config.py::test_state_dir_is_created": "the SQLite file is made in the state directory",
    "test_check.py::test_all_servers_answer_exit_0_with_what_was_found": "the probes of a SQLite config "
        "(with PostgreSQL `check` tries the database too: test_postgres_config.py)",
    "test_check.py::test_the_text_report_names_capabilities_a_server_lacks": "the same",
    "test_private_files.py::test_state_dir_and_everything_in_it_are_private": "the SQLite file and the archive's "
        "files in the state directory",
    "test_crash_schema.py::test_sigkill_during_schema_creation_never_bricks_the_database": "kills while the SQLite "
        "file is made (PostgreSQL's schema is made in one transaction)",
    "test_crash_schema.py::test_the_schema_is_made_by_one_process_at_a_time_and_the_waiter_finds_it_made": "the "
        "state directory's file lock around a new SQLite file (PostgreSQL: an advisory lock, migrations/env.py)",
    "test_disk_full_alarm.py::test_the_archive_full_alarms_once_from_memory_and_the_message_is_read_again": "the "
        "archive's files fill the disk (PostgreSQL keeps raw messages in the database)",
    "test_disk_full_alarm.py::test_a_real_full_filesystem_under_mailbot_poll": "the same, on a real full tmpfs",
    "test_pipeline.py::test_every_message_is_archived_before_interpretation": "the archive's files (PostgreSQL "
        "keeps raw messages in the database: test_db_copy.py, test_two_instances.py)",
    "test_pipeline.py::test_closing_the_pipeline_waits_for_the_archive_and_stops_its_thread": "the file "
        "archive's fsync thread",
    "test_pipeline.py::test_another_writer_between_a_commit_groups_first_read_and_write_cannot_fail_the_message":
        "SQLite's one write lock and its WAL snapshots (PostgreSQL locks rows)",
}


@lru_cache(maxsize=None)
def _module_touches(path: Path) -> bool:
    if path.name in SQLITE_ONLY:
        return False
    return bool(DATABASE_WORDS.search(path.read_text(encoding="utf-8")))


def touches_database(item) -> bool:
    if item.get_closest_marker("database") is not None:
        return True
    path = Path(str(item.fspath))
    if f"{path.name}::{item.originalname}" in SQLITE_ONLY:
        return False
    return path.name.startswith("test_") and _module_touches(path)
