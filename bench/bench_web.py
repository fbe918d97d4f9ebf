"""Benchmark: the web console's month overview and a school's page with 2,000 schools x 24 months
(issue 12: median and worst of 50 requests each under 200 ms).

The database gets what a county's two years leave behind: one submission per school and month
(about 10% missing, some replaced), each with its message in the ledger and its receipt in the
outbox. Requests go over HTTP to the app served by waitress (as `mailbot web` serves it), logged in
as a clerk; the time is from sending the request to the last byte of the page. Filling the
database is not timed. Exits 1 when over the budget. Not part of CI.

usage: python bench/bench_web.py [SCHOOLS] [MONTHS] [REQUESTS]      (default 2000 24 50)
"""

from __future__ import annotations

import http.client
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mailbot.config import config_from_dict
from mailbot.db.engine import engine_for, make_sessionmaker
from mailbot.db.migrate import upgrade
from mailbot.db.models import Message, Outbox, Submission
from mailbot.web import create_app
from mailbot.web.users import add_user

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.summary_sample import TZ, month_sequence, sample_roster, sample_rows  # noqa: E402
from support.web import served  # noqa: E402

BUDGET_MS = 200.0
PASSWORD = "bench-password-1"


def fill(session: Session, rows) -> None:
    created = datetime(2022, 11, 1, tzinfo=timezone.utc)
    messages, outbox = [], []
    for index, r in enumerate(rows, start=1):
        messages.append({"id": index, "mailbox": "chuyoujiao", "source": "imap", "uid": str(index), "folder": "INBOX",
                         "uidvalidity": 1, "message_id": f"m{index}@163.com", "sha256": f"{index:064x}",
                         "archive_path": f"archive/{index}.eml", "size": 20_000, "sender": r.sender,
                         "subject": f"{r.school}{r.month}课后服务汇总表", "date": r.received_at,
                         "received_at": r.received_at, "read_at": r.received_at, "outcome": "accepted",
                         "errors": [], "warnings": [], "attempts": 1,
                         "result": {"month": r.month, "rows": [{"school": r.school, "ok": True}]}})
        outbox.append({"key": f"reply:{index}", "kind": "receipt", "mailbox": "chuyoujiao",
                       "from_addr": "chuyoujiao@163.com", "recipient": r.sender, "to_addrs": [r.sender],
                       "subject": f"回执：{r.school}", "message_id": f"r{index}@163.com", "raw": b"x" * 2000,
                       "message_pk": index, "status": "sent", "attempts": 1, "next_attempt_at": created,
                       "created_at": r.received_at, "sent_at": r.received_at + timedelta(minutes=1)})
    session.execute(insert(Message), messages)
    session.execute(insert(Outbox), outbox)
    session.execute(insert(Submission), [
        {"school": r.school, "month": r.month, "sender": r.sender, "received_at": r.received_at, "late": r.late,
         "created_at": created, "schools_count": r.schools_count, "enrolled": r.enrolled, "message_pk": index,
         "participating": r.participating, "two_plus_n": r.two_plus_n, "services": list(r.services), "n": r.n,
         "sheet": "Sheet1", "row_number": 4}
        for index, r in enumerate(rows, start=1)])
    session.commit()


def login(base: str) -> str:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf" value="([^"]+)"', response.read().decode()).group(1)
    body = urllib.parse.urlencode({"csrf": token, "name": "bench", "password": PASSWORD})
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = conn.getresponse()
    response.read()
    assert response.status == 302, response.status
    conn.close()
    return response.getheader("Set-Cookie").split(";")[0]


def timed(base: str, cookie: str, paths: list[str]) -> list[float]:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    times = []
    for path in paths:
        start = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status == 200 and len(body) > 1000, (path, response.status)
    conn.close()
    return times


def main() -> int:
    schools_count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    months_count = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    requests = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    schools = sample_roster(schools_count)
    months = month_sequence("2022-10", months_count)
    rows = sample_rows(schools, months)
    now = datetime(2022, 10, 26, 10, 0, tzinfo=TZ)
    with tempfile.TemporaryDirectory() as folder:
        config = config_from_dict({"general": {"state_dir": folder},
                                   "mailbox": [{"name": "chuyoujiao", "address": "chuyoujiao@163.com",
                                                "levels": ["primary", "middle"], "maildir": "in", "outbox_dir": "out"}]},
                                  Path(folder))
        config.schools = schools
        engine = engine_for(config)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            fill(session, rows)
        with sessions.begin() as session:
            add_user(session, "bench", "clerk", PASSWORD, now)
            in_db = session.scalar(select(Submission.id).order_by(Submission.id.desc()).limit(1))
        app = create_app(config, sessions, lambda: now, secret=b"b" * 32)
        rng = random.Random(7)
        with served(app) as base:
            cookie = login(base)
            timed(base, cookie, ["/", f"/school?name={urllib.parse.quote(schools[0].name)}"])  # warm up
            results = {
                "overview (本月概览, all 2,000 schools)": timed(base, cookie, [f"/?month={months[-1]}"] * requests),
                "a school's page (24 months)": timed(base, cookie, [
                    f"/school?name={urllib.parse.quote(rng.choice(schools).name)}" for _ in range(requests)]),
            }
        engine.dispose()
    print(f"schools: {schools_count}, months: {months_count}, submissions: {in_db}, requests each: {requests}")
    ok = True
    for name, times in results.items():
        median, worst = statistics.median(times), max(times)
        ok &= worst < BUDGET_MS
        print(f"{name}: median {median:.0f} ms, worst {worst:.0f} ms (budget {BUDGET_MS:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
