"""Benchmark: the monthly summary for 2,000 schools x 24 months (issue 4: under 2 s).

Times what `mailbot summary --send` does after start-up: read the rows in force from SQLite,
aggregate, render the HTML and text, and write the .xlsx. The database is filled first (not timed).
Exits 1 when over the budget. Not part of CI.

usage: python bench/bench_summary.py [SCHOOLS] [MONTHS]      (default 2000 24)
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mailbot.db.engine import make_engine
from mailbot.db.models import Base, Submission
from mailbot.summary.aggregate import summarise
from mailbot.summary.load import rows_for_summary
from mailbot.summary.render import render_summary
from mailbot.summary.workbook import attachment_name, build_summary_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.summary_sample import TZ, month_sequence, sample_roster, sample_rows  # noqa: E402

BUDGET_SECONDS = 2.0


def fill(session: Session, rows) -> None:
    created = datetime(2022, 11, 1, tzinfo=timezone.utc)
    session.execute(insert(Submission), [
        {"school": r.school, "month": r.month, "sender": r.sender, "received_at": r.received_at, "late": r.late,
         "created_at": created, "schools_count": r.schools_count, "enrolled": r.enrolled,
         "participating": r.participating, "two_plus_n": r.two_plus_n, "services": list(r.services), "n": r.n}
        for r in rows])
    session.commit()


def main() -> int:
    schools_count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    months_count = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    schools = sample_roster(schools_count)
    months = month_sequence("2022-10", months_count)
    rows = sample_rows(schools, months)
    now = datetime(2022, 10, 25, 10, 0, tzinfo=TZ)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            fill(session, rows)
        timings = {}
        start = time.perf_counter()
        with Session(engine) as session:
            stored = rows_for_summary(session, months[-1])
        timings["load"] = time.perf_counter() - start
        mark = time.perf_counter()
        summary = summarise(months[-1], schools, stored, set(), deadline_day=24, tz=TZ)
        timings["aggregate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        composed = render_summary(summary, TZ, now, attachment_name(months[-1]))
        timings["html+text"] = time.perf_counter() - mark
        mark = time.perf_counter()
        xlsx = build_summary_workbook(summary, TZ, now)
        timings["xlsx"] = time.perf_counter() - mark
        total = time.perf_counter() - start
        engine.dispose()
    print(f"schools: {schools_count}, months: {months_count}, rows in force: {len(stored)}")
    print("  ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))
    print(f"summary total: {total:.2f} s (budget {BUDGET_SECONDS:.0f} s); html {len(composed.html) // 1024} KiB, "
          f"xlsx {len(xlsx) // 1024} KiB")
    return 0 if total < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
