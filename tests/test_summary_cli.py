"""`mailbot summary` and `mailbot export` on ingested sample messages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from support.cli import ingest_json, run_cli
from support.configs import SAMPLES, write_config

NOW = "2022-10-25T10:00:00+08:00"
XLSX = "2022年10月城区义务教育阶段学校课后服务开展情况汇总表.xlsx"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """One on-time and one late submission for October 2022; ingested once for this module."""
    config = write_config(tmp_path_factory.mktemp("summary-cli"))
    sequence = SAMPLES / "sequences" / "002-on-time-late-missing"
    ingest_json(config, "chuyoujiao", sequence / "01.eml")
    ingest_json(config, "zjg", sequence / "02.eml")
    return config


def mailbot(config: Path, *args: str):
    return run_cli(config, "--now", NOW, *args, check=False)


def outbox(config: Path) -> list[dict]:
    return json.loads(mailbot(config, "outbox", "list", "--json").stdout)


def test_summary_preview_files_and_send_once_unless_forced(ingested, tmp_path):
    config = ingested
    out = tmp_path / "preview"

    result = mailbot(config, "summary", "--month", "2022-10", "--out", str(out))
    assert result.exit_code == 0, result
    assert sorted(p.name for p in out.iterdir()) == sorted([XLSX, "summary.html", "summary.txt"])
    text = (out / "summary.txt").read_text(encoding="utf-8")
    assert "已报送学校：2/20所（按时1所，逾期1所，未报送18所）" in text
    assert "安溪县育才中学（初中部）（中学），2022年10月25日 00:10报送" in text
    assert "安溪县鹤前小学" in (out / "summary.html").read_text(encoding="utf-8")
    table = load_workbook(out / XLSX)["汇总表"]
    assert "安溪县第六实验小学" in [c.value for c in table["B"]]

    assert mailbot(config, "summary", "--month", "2022-10", "--send").exit_code == 0
    again = mailbot(config, "summary", "--month", "2022-10", "--send")
    assert again.exit_code == 0 and "queued before" in again.stderr
    summaries = [o for o in outbox(config) if o["kind"] == "summary"]
    assert len(summaries) == 1
    assert summaries[0]["to"] == ["leader@example.test"]
    assert summaries[0]["subject"] == "【课后服务】2022年10月城区学校课后服务开展情况汇总"

    assert mailbot(config, "summary", "--month", "2022-10", "--send", "--force").exit_code == 0
    assert len([o for o in outbox(config) if o["kind"] == "summary"]) == 2


def test_summary_without_options_prints_the_text(ingested):
    config = ingested
    result = mailbot(config, "summary", "--month", "2022-10")
    assert result.exit_code == 0 and result.stdout.startswith("各位领导：")


def test_summary_send_without_recipients_names_the_key(ingested):
    config = ingested.with_name("no-recipients.toml")
    config.write_text(ingested.read_text(encoding="utf-8").replace('recipients = ["leader@example.test"]',
                                                                 "recipients = []"), encoding="utf-8")
    result = mailbot(config, "summary", "--month", "2022-10", "--send")
    assert result.exit_code == 2  # a configuration error
    assert "configuration error" in result.stderr and "summary.recipients" in result.stderr


def test_export_writes_the_ledger(ingested, tmp_path):
    config = ingested
    out = tmp_path / "台账.xlsx"
    result = mailbot(config, "export", "--out", str(out))
    assert result.exit_code == 0, result
    wb = load_workbook(io.BytesIO(out.read_bytes()))
    assert wb.sheetnames == ["全部月份", "2022年10月", "报送记录"]
    october = {row[2].value: row for row in wb["2022年10月"].iter_rows(min_row=2)}
    assert october["安溪县育才中学（初中部）"][3].value == "逾期报送"
    assert october["安溪县鹤前小学"][3].value == "未报送"
    bad = mailbot(config, "export", "--from", "2022-11", "--to", "2022-10", "--out", str(out))
    assert bad.exit_code == 2
