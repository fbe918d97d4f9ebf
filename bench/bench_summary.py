"""Benchmark: the monthly summary and the status at province scale (issue 13: 10,000 schools x 36
months, `summary --out` under 5 s, `status --json` under 1 s, peak under 150 MB), each as a whole
process beside the floor (bench/floor.py) in interleaved pairs, medians (bench/measure.py).

The state directory (a config of SCHOOLS schools, the database filled with every month's rows in
force) is made once and cached in bench/out/. Exits 1 when a target is missed. Not part of CI.

usage: python bench/bench_summary.py [SCHOOLS] [MONTHS] [PAIRS]     (default 10000 36 5)
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from measure import paired, report_targets  # noqa: E402
from support.summary_sample import month_sequence, sample_roster, sample_rows  # noqa: E402

SUMMARY_SECONDS, STATUS_SECONDS, PEAK_MIB = 5.0, 1.0, 150 / 1.048576


def make_state(folder: Path, schools_count: int, months_count: int) -> tuple[Path, str]:
    """A config listing the schools and its database holding their rows in force (cached)."""
    folder = folder.resolve()
    config = folder / "config.toml"
    months = month_sequence("2022-10", months_count)
    if (folder / "ready").exists():
        return config, months[-1]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    schools = sample_roster(schools_count)
    # A province keeps its roster as a CSV saved from Excel (general.roster_file), not as 10,000 TOML tables.
    roster = folder / "schools.csv"
    with roster.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["name", "level", "emails", "aliases"])
        out.writerows([s.name, s.level, ";".join(s.emails), ""] for s in schools)
    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{folder / "state"}"', f'roster_file = "{roster}"',
             "", "[summary]", 'recipients = ["leader@example.test"]', ""]
    for name, address, level in (("chuyoujiao", "chuyoujiao@163.com", "primary"), ("zjg", "zjg23236764@163.com", "middle")):
        lines += ["[[mailbox]]", f'name = "{name}"', f'address = "{address}"', f'levels = ["{level}"]',
                  f'maildir = "{folder}/maildir/{name}"', f'outbox_dir = "{folder}/outbox/{name}"', ""]
    config.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), "db", "upgrade"], check=True,
                   capture_output=True)
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from mailbot.db.engine import make_engine
    from mailbot.db.models import Submission
    engine = make_engine(f"sqlite:///{folder / 'state' / 'mailbot.sqlite3'}")
    created = datetime(2022, 11, 1, tzinfo=timezone.utc)
    with Session(engine) as session:
        session.execute(insert(Submission), [
            {"school": r.school, "month": r.month, "sender": r.sender, "received_at": r.received_at, "late": r.late,
             "created_at": created, "schools_count": r.schools_count, "enrolled": r.enrolled,
             "participating": r.participating, "two_plus_n": r.two_plus_n, "services": list(r.services), "n": r.n}
            for r in sample_rows(schools, months)])
        session.commit()
    engine.dispose()
    (folder / "ready").touch()
    return config, months[-1]


def main() -> int:
    schools_count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    months_count = int(sys.argv[2]) if len(sys.argv) > 2 else 36
    pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    folder = HERE / "out" / f"province-csv-{schools_count}x{months_count}"
    config, month = make_state(folder, schools_count, months_count)
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
    floor = [sys.executable, str(HERE / "floor.py")]
    print(f"{schools_count} schools x {months_count} months, month {month}")
    missed = []
    out = folder / "preview"
    summary = paired(floor + ["summary", str(config), month, str(out / "floor")],
                     mailbot + ["--now", "2022-10-25T10:00:00+08:00", "summary", "--month", month,
                                "--out", str(out / "mailbot")], pairs)
    print(summary.line("summary --out"))
    status = paired(floor + ["status", str(config), month], mailbot + ["status", "--month", month, "--json"], pairs)
    print(status.line("status --json"))
    for what, pair, seconds in (("summary", summary, SUMMARY_SECONDS), ("status", status, STATUS_SECONDS)):
        if pair.median("mailbot", "wall") > seconds:
            missed.append(f"{what} over {seconds} s")
        if pair.median("mailbot", "rss_mib") > PEAK_MIB:
            missed.append(f"{what} peak over 150 MB")
    return report_targets(missed)


if __name__ == "__main__":
    sys.exit(main())
