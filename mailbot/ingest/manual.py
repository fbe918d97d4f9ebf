"""A bare table file entered by the operator (`ingest --school NAME --month YYYY-MM FILE`): for a
table a school sent some other way. Recorded as entered by the operator; nobody is answered."""

from __future__ import annotations

import getpass
import logging
from pathlib import Path

from mailbot.config import Config
from mailbot.errors import MailbotError, WorkerFailure
from mailbot.rules.identify import drop_repeated_rows, identify_rows
from mailbot.rules.model import Attachment
from mailbot.ingest.pipeline import row_json
from mailbot.rules.rows import interpret_row
from mailbot.rules.roster import Roster
from mailbot.db.submissions import record_rows

log = logging.getLogger(__name__)


def enter_table(config: Config, sessions, runner, clock, path: Path, label: str, school: str, month: str) -> dict:
    roster = Roster(config.schools)
    target = roster.match(school)
    if target is None:
        raise MailbotError(f"--school {school!r} is not in the roster")
    result = {"file": label, "message_id": None, "mailbox": None, "sender": "", "outcome": "rejected",
              "month": None, "rows": [], "errors": [], "warnings": [], "reply": None}
    att = Attachment(filename=path.name, content_type="application/octet-stream", data=path.read_bytes())
    (extracted,) = runner.extract_many([att])
    if isinstance(extracted, WorkerFailure):
        result.update(outcome="failed", errors=[str(extracted)])
        return result
    if extracted.unreadable is not None:
        result["errors"] = [extracted.unreadable.message]
        return result
    rows = []
    for table in extracted.tables:
        table_rows = [interpret_row(raw, table.layout) for raw in table.rows]
        for row in table_rows:
            row.month = month
        identify_rows(table_rows, [target.name], roster, len(table.rows))
        rows.extend(table_rows)
    rows = drop_repeated_rows(rows)
    ok = [r for r in rows if r.ok]
    now = clock()
    if ok:
        with sessions.begin() as session:
            record_rows(session, config, None, ok, now, now, entered_by=getpass.getuser())
        result.update(outcome="accepted", month=month)
        log.info("operator entered %d row(s) for %s %s from %s", len(ok), target.name, month, path)
    result["rows"] = [row_json(r) for r in rows]
    if not rows:
        result["errors"] = ["no table with the header 学校名称 / 在校学生数 / 参与课后服务学生数 found"]
    return result
