"""When mailbot creates its state_dir itself, nobody else can read it (issue 11 point 9): the
database and the raw mail (complaints included) were 0644 in 0755 directories."""

from __future__ import annotations

import os
import stat

from support.cli import run_process
from support.configs import write_config


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_and_everything_in_it_are_private(tmp_path):
    config = write_config(tmp_path, database_ready=False)  # mailbot makes state_dir itself
    message = (b"From: citizen@example.com\r\nTo: chuyoujiao@163.com\r\nSubject: complaint\r\n"
               b"Message-ID: <c1@example.com>\r\n\r\nplease look at this school\r\n")
    (tmp_path / "complaint.eml").write_bytes(message)
    old = os.umask(0o022)  # a usual login shell
    try:
        run_process(config, "ingest", "--mailbox", "chuyoujiao", tmp_path / "complaint.eml", timeout=120)
    finally:
        os.umask(old)
    state = tmp_path / "state"
    assert mode(state) == 0o700
    made = [p for p in state.rglob("*")]
    assert any(p.name.endswith(".sqlite3") for p in made) and any(p.parent.name != "state" for p in made if p.is_file())
    assert {oct(mode(p)) for p in made if p.is_file()} == {oct(0o600)}
    assert {oct(mode(p)) for p in made if p.is_dir()} == {oct(0o700)}
