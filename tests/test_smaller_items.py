"""The smaller things of issue 9 (list item 8), each as the operator, a school or a leader meets it."""

from __future__ import annotations

import pytest

import json
import logging
import re
import threading
import unicodedata
from pathlib import Path

import openpyxl

from builders import BEIMEN_ROW, HEADER, submission
from mailbot.app.daemon import Daemon
from ops_world import Database, parsed
from support.cli import run_cli
from support.configs import fast_config, write_config

NOW = "2022-10-26T12:00:00+08:00"


def ingest(config: Path, tmp_path: Path, raw: bytes, name: str = "m") -> dict:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    return json.loads(run_cli(config, "--now", NOW, "ingest", "--json", str(path), check=False).stdout)


def plain(raw: bytes) -> str:
    return parsed(raw).get_body(("plain",)).get_content()


def test_export_shows_an_excused_school_as_excused(tmp_path):
    config = write_config(tmp_path)
    run_cli(config, "--now", NOW, "excuse", "安溪县北门小学", "--month", "2022-10", "--reason", "停课装修")
    ingest(config, tmp_path, submission("cnsyxx@163.com", "chuyoujiao@163.com",
                                        [["安溪县城南实验小学", 1, 2000, 1900, "是", "科普"]]))
    out = tmp_path / "ledger.xlsx"

    run_cli(config, "--now", NOW, "export", "--out", str(out))

    sheet = next(ws for ws in openpyxl.load_workbook(out).worksheets if "10" in ws.title)
    row = next(r for r in sheet.iter_rows(values_only=True) if "安溪县北门小学" in r)
    assert "本月免报" in row and "未报送" not in row


def test_the_quarantine_notice_to_the_operator_is_all_chinese(tmp_path):
    config = write_config(tmp_path)
    ingest(config, tmp_path, submission("someone@qq.com", "chuyoujiao@163.com", [BEIMEN_ROW]))

    (notice,) = [o for o in Database(config).outbox() if o.kind == "operator_quarantine"]

    reason = next(line for line in plain(notice.raw).splitlines() if line.startswith("隔离原因"))
    assert not re.search(r"[A-Za-z]{3,}", reason), reason


def test_idle_waking_a_running_poll_logs_no_warning(tmp_path, caplog):
    config = fast_config(tmp_path)
    config.schedule.poll_interval_minutes = 60.0
    running, woken, second = threading.Event(), threading.Event(), threading.Event()
    polls = []

    def poll(should_stop):
        polls.append(1)
        if len(polls) == 1:
            running.set()
            woken.wait(30)  # the start-up poll is still running when the mail is announced
        else:
            second.set()

    def watch(wake, stopping):
        def announce():
            running.wait(30)
            wake("chuyoujiao")
            woken.set()
            second.wait(30)  # the poll for the announced mail, however long a busy machine takes
            daemon.request_stop()
        threading.Thread(target=announce, daemon=True).start()

    daemon = Daemon(config, {"poll": poll}, environ={}, watch=watch)
    with caplog.at_level(logging.INFO):
        assert daemon.run(install_signals=False) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("apscheduler")], \
        caplog.text
    assert caplog.text.count("job poll done") == 2  # the mail announced meanwhile is polled for after


def test_summary_out_to_a_folder_it_cannot_create_says_so_without_a_traceback(tmp_path):
    config = write_config(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    proc = run_cli(config, "--now", NOW, "summary", "--month", "2022-10", "--out", str(blocker / "preview"), check=False)

    assert proc.exit_code in (1, 2)
    assert "Traceback" not in proc.stderr and str(blocker / "preview") in proc.stderr


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_status_columns_line_up_with_chinese_names(tmp_path):
    config = write_config(tmp_path)
    for number, (sender, name) in enumerate([("beimenxx@163.com", "安溪县北门小学"),
                                             ("cnsyxx@163.com", "安溪县城南实验小学")]):
        ingest(config, tmp_path, submission(sender, "chuyoujiao@163.com", [[name, 1, 1500, 1400, "是", "科普"]]),
               f"m{number}")

    lines = run_cli(config, "--now", NOW, "status", "--month", "2022-10").stdout.splitlines()

    columns = {display_width(line[:line.index("1500")]) for line in lines if "1500" in line}
    assert len(columns) == 1, lines


def test_the_demo_keeps_chinese_in_file_names_and_prints_the_summary(tmp_path):
    proc = run_cli(None, "demo", "--out", str(tmp_path / "demo"))

    names = [p.name for p in (tmp_path / "demo" / "outbox").rglob("*.eml")]
    assert any(re.search(r"[\u4e00-\u9fff]", name) for name in names), names
    assert not any("____" in name for name in names), names
    lines = proc.stdout.splitlines()
    after = lines[lines.index(next(l for l in lines if "monthly summary to leadership:" in l)) + 1]
    assert after.strip(), proc.stdout


def test_quotes_inside_chinese_quotes_are_chinese_too():
    import io
    from mailbot.outbound.prefilled import build_template
    data = build_template("安溪县北门小学", "primary", "2022-10", deadline_day=24, mailbox_address="chuyoujiao@163.com")
    texts = [cell for row in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)
             for cell in row if isinstance(cell, str)]

    mixed = [text for text in texts if re.search(r"“[^”]*\"[^”]*”", text)]
    assert not mixed, mixed


def test_a_rejected_row_s_place_is_said_once(tmp_path):
    config = write_config(tmp_path)
    result = ingest(config, tmp_path, submission("beimenxx@163.com", "chuyoujiao@163.com",
                                                 [BEIMEN_ROW, ["安溪县不存在小学", 1, 100, 90, "是", "科普"]]))
    assert result["outcome"] == "accepted"
    (receipt,) = Database(config).outbox()

    text = plain(receipt.raw)
    assert text.count("第5行") == 1, text
