"""One time zone for people (issue 9, list item 6; SPEC 8): what the operator reads and what an
email says is in the configured zone with its offset, whatever zone the machine is set to."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from builders import BEIMEN_ROW, submission
from ops_world import Database, parsed
from support.cli import Result, run_process
from support.configs import write_config

MACHINE_ZONE = {"TZ": "UTC"}  # a server left on UTC, as most are


def mailbot(config: Path, *args: str) -> Result:
    """Its own process: the machine's zone is the process's (TZ), which this process cannot change."""
    return run_process(config, *args, timeout=120, env=MACHINE_ZONE)


def stranger_table(tmp_path: Path) -> Path:
    eml = tmp_path / "stranger.eml"
    eml.write_bytes(submission("someone@qq.com", "chuyoujiao@163.com", [BEIMEN_ROW],
                               date=datetime.fromisoformat("2022-10-20T20:11:00+08:00")))
    return eml


def test_quarantine_list_shows_local_time_with_its_offset(tmp_path):
    config = write_config(tmp_path)
    mailbot(config, "ingest", str(stranger_table(tmp_path)))

    text = mailbot(config, "quarantine", "list").stdout
    (item,) = json.loads(mailbot(config, "quarantine", "list", "--json").stdout)

    assert "2022-10-20 20:11 +08:00" in text
    assert item["received_at"] == "2022-10-20T20:11:00+08:00"


def test_outgoing_date_headers_carry_the_bureau_s_offset(tmp_path):
    config = write_config(tmp_path)
    eml = tmp_path / "table.eml"
    eml.write_bytes(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN_ROW]))
    mailbot(config, "ingest", str(eml))

    (receipt,) = Database(config).outbox()

    assert str(parsed(receipt.raw)["Date"]).endswith("+0800")


def test_log_lines_carry_the_configured_zone(tmp_path):
    config = write_config(tmp_path)
    proc = mailbot(config, "ingest", str(stranger_table(tmp_path)))

    first = next(line for line in proc.stderr.splitlines() if " INFO " in line)
    assert "+08:00" in first.split(" INFO ")[0], first


def test_a_log_stamp_is_the_record_s_own_second_in_the_zone_across_an_offset_change():
    """The formatter keeps the last second's stamp: records of the same second share it, the next
    second is stamped anew, and a zone's offset change (New York, 2022-11-06 02:00 EDT -> 01:00 EST)
    shows at once."""
    import logging
    from zoneinfo import ZoneInfo
    from mailbot.app.logtime import ZonedFormatter

    formatter = ZonedFormatter(ZoneInfo("America/New_York"))

    def stamp(created: float) -> str:
        record = logging.LogRecord("mailbot", logging.INFO, __file__, 1, "x", None, None)
        record.created = created
        return formatter.formatTime(record)

    before = datetime.fromisoformat("2022-11-06T05:59:59+00:00").timestamp()
    assert stamp(before + 0.2) == stamp(before + 0.9) == "2022-11-06 01:59:59 -04:00"
    assert stamp(before + 1.0) == "2022-11-06 01:00:00 -05:00"
    assert stamp(before + 0.5) == "2022-11-06 01:59:59 -04:00"  # an earlier second again
