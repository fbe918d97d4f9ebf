"""A bare table file entered by the operator (`ingest --school NAME --month YYYY-MM FILE`): for a
table a school sent some other way. Recorded as entered by the operator; nobody is answered.

The rows are built exactly as for mail (`mailbot.rules.decide.table_rows`), for the school and
month the operator names."""

from __future__ import annotations

import getpass
import logging
from datetime import datetime
from pathlib import Path

from mailbot.config import Config
from mailbot.db.submissions import record_rows
from mailbot.errors import MailbotError, UnreadableFile, WorkerFailure
from mailbot.rules.decide import table_rows
from mailbot.rules.identify import drop_repeated_rows
from mailbot.rules.model import Attachment
from mailbot.rules.outcome import Outcome, Result
from mailbot.rules.roster import Roster
from mailbot.tables.guards import read_table_file

log = logging.getLogger(__name__)


def enter_table(config: Config, sessions, runner, clock, path: Path, label: str, school: str, month: str,
                received_at: datetime | None = None) -> Result:
    """Record the table for `school` and `month`, received at `received_at` (when the school handed
    it in, as the operator says; lateness is judged by it), else now."""
    roster = Roster(config.schools)
    target = roster.match(school)
    if target is None:
        raise MailbotError(f"--school {school!r} is not in the roster")
    try:  # measured before it is read: a huge (or sparse) file never comes into this process
        data = read_table_file(path, config.limits, path.name)
    except UnreadableFile as exc:
        log.warning("operator's table %s refused: %s", path, exc.detail)
        return Result(label, Outcome.REJECTED, errors=[exc.message])
    att = Attachment(filename=path.name, content_type="application/octet-stream", data=data)
    (extracted,) = runner.extract_many([att])
    if isinstance(extracted, WorkerFailure):
        return Result(label, Outcome.FAILED, errors=[str(extracted)])
    if extracted.unreadable is not None:
        return Result(label, Outcome.REJECTED, errors=[extracted.unreadable.message])
    rows = drop_repeated_rows(table_rows(extracted.tables, roster, [target.name], lambda _table: month))
    ok = [r for r in rows if r.ok]
    if ok:
        now = clock()
        with sessions.begin() as session:
            record_rows(session, config, None, ok, received_at or now, now, entered_by=getpass.getuser())
        log.info("operator entered %d row(s) for %s %s from %s", len(ok), target.name, month, path)
    return Result(label, Outcome.ACCEPTED if ok else Outcome.REJECTED, month=month if ok else None, rows=rows,
                  errors=[] if rows else ["no table with the header 学校名称 / 在校学生数 / 参与课后服务学生数 found"])
