"""`mailbot demo` on a fresh install: a whole month, no server, no config (issue 5)."""

import email
import json
import time
from email.header import decode_header, make_header

from support.cli import run_cli, run_process


def test_demo_runs_a_whole_month(tmp_path):
    out = tmp_path / "demo"
    started = time.monotonic()
    proc = run_process(None, "demo", "--out", out)  # the installed script, as a newcomer runs it
    # The month runs on a simulated clock: a real wait (a throttle, a poll interval) would take hours.
    # 30 s was too close: under stress-ng --cpu 2 on a busy 2-core machine it took 36 s.
    assert time.monotonic() - started < 180
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    states = {s["name"]: s["state"] for s in status["schools"]}
    assert states["安溪县溪东中学"] == "late" and states["安溪县第六实验小学"] == "on_time"
    assert states["安溪县东门小学"] == "missing" and states["安溪县玉湖小学"] == "on_time"  # corrected after a rejection
    assert (out / "summary" / "summary.html").exists()
    assert "summary.html" in proc.stdout and "missing 3" in proc.stdout
    sent = [email.message_from_bytes(p.read_bytes()) for p in (out / "outbox").rglob("*.eml")]
    subjects = [str(make_header(decode_header(m["Subject"]))) for m in sent]
    to_dongmen = [s for m, s in zip(sent, subjects) if m["To"] == "dmxx_jws@126.com"]
    assert len(to_dongmen) == 3  # upcoming, due, overdue: once each
    assert any("汇总" in s for m, s in zip(sent, subjects) if m["To"] == "leader@example.gov.cn")
    # The parent's complaint is still in the inbox exactly where it was.
    complaint = [p for p in (out / "mail" / "chuyoujiao" / "new").iterdir() if b"parent@example.com" in p.read_bytes()]
    assert len(complaint) == 1


def test_demo_refuses_to_overwrite_a_folder_that_is_not_its_own(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = run_cli(None, "demo", "--out", tmp_path, check=False)
    assert result.exit_code == 2 and (tmp_path / "precious.txt").exists()
