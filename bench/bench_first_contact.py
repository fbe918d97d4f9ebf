"""Benchmark: the first contact with a big mailbox, and a deliberate `poll --since` import, beside
the floor (issue 13 point 6). Not part of CI.

A private Dovecot (tests/support/dovecot.py's class) gets a mailbox of N small unrelated messages
(default 100,000, from unknown senders, no attachment), written straight into its Maildir as files
(much faster than APPEND; each file's mtime is its INTERNALDATE, spread over four years). One
untimed FETCH of every description warms Dovecot's index and cache. Then, in PAIRS interleaved
pairs (bench/measure.py: whole processes, start-up included, medians, peak RSS of the largest
process):

(1) first contact: `mailbot poll --no-send` on a fresh database (every message recorded as
    `baseline`, nothing downloaded) beside `floor.py first-contact` (UID SEARCH, one FETCH of the
    same headers and BODYSTRUCTURE per 500 UIDs, the ledger rows written to SQLite per batch);
(2) with --since: `mailbot poll --no-send --since 2000-01-01` on the database a first contact left
    (every baseline message described, triaged as ignored, recorded) beside the same floor.

Targets (issue 13): peak RSS under 80 MB and wall time within 2x of the floor's. Exits 1 when one is
missed. Needs dovecot-imapd.

usage: python bench/bench_first_contact.py [N] [PAIRS] [--since]      (default 100000 3)
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from measure import paired, report_targets  # noqa: E402
from support.dovecot import (DOVEADM_CANDIDATES, DOVECOT_CANDIDATES, LDA_CANDIDATES, MAIL_UID, Dovecot,  # noqa: E402
                             _become_subreaper, _find)

USER = "school3@example.test"
TARGET_MIB, TARGET_RATIO = 80 * 1000 * 1000 / 2**20, 2.0  # 80 MB
FLOOR_BATCH = 500
SCHOOLS = [("安溪县北门小学", "primary", "beimenxx@163.com"), ("安溪县城南实验小学", "primary", "cnsyxx@163.com")]


def fill_maildir(maildir: Path, count: int) -> None:
    """`count` small messages as Maildir files in cur/, delivered over four years up to now."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    start = datetime.now(timezone.utc) - timedelta(days=4 * 365)
    step = 4 * 365 * 86400 / max(count, 1)
    for number in range(count):
        sent = start + timedelta(seconds=number * step)
        raw = (f"From: someone{number % 5000}@elsewhere.test\r\nTo: {USER}\r\nSubject: note {number}\r\n"
               f"Message-ID: <n{number}@elsewhere.test>\r\nDate: {sent:%a, %d %b %Y %H:%M:%S +0000}\r\n"
               f"\r\nhello {number}\r\n").encode("ascii")
        path = maildir / "cur" / f"{int(sent.timestamp())}.M{number}P1.bench,S={len(raw)}:2,S"
        path.write_bytes(raw)
        os.utime(path, (sent.timestamp(), sent.timestamp()))
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(maildir.parent.parent):
            for name in dirs + files:
                os.chown(os.path.join(root, name), MAIL_UID, MAIL_UID)
        os.chown(maildir.parent.parent, MAIL_UID, MAIL_UID)


def write_config(directory: Path, server: Dovecot) -> Path:
    imap = server.imap_config(USER)
    state = directory / "state"
    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{state}"', "",
             "[[mailbox]]", 'name = "bench"', 'address = "chuyoujiao@163.com"', 'levels = ["primary"]',
             f'outbox_dir = "{state}/outbox"', "",
             "[mailbox.imap]", f'host = "{imap.host}"', f"port = {imap.port}", 'security = "plain"',
             f'username = "{USER}"', f'password_file = "{imap.password_file}"', ""]
    for name, level, address in SCHOOLS:
        lines += ["[[school]]", f'name = "{name}"', f'level = "{level}"', f'emails = ["{address}"]', ""]
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def outcomes(state: Path) -> dict[str, int]:
    with sqlite3.connect(state / "mailbot.sqlite3") as conn:
        return dict(conn.execute("SELECT outcome, count(*) FROM messages GROUP BY outcome").fetchall())


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 100_000
    pairs = int(args[1]) if len(args) > 1 else 3
    binary = _find(DOVECOT_CANDIDATES, "dovecot")
    if binary is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    _become_subreaper()
    out = HERE / "out" / "first-contact"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "dovecot").mkdir()
    server = Dovecot(out / "dovecot", binary, _find(LDA_CANDIDATES, "dovecot-lda"), _find(DOVEADM_CANDIDATES, "doveadm"))
    env = {**os.environ, "PYTHONUTF8": "1"}
    missed: list[str] = []
    try:
        started = time.perf_counter()
        fill_maildir(server.maildir(USER), count)
        server.start()
        imap = server.imap_config(USER)
        floor_db = out / "floor.sqlite3"
        floor = [sys.executable, str(HERE / "floor.py"), "first-contact", imap.host, str(imap.port), USER,
                 str(imap.password_file), str(floor_db), str(FLOOR_BATCH)]
        subprocess.run(floor, check=True, capture_output=True)  # Dovecot builds its index and cache
        print(f"{count} messages written and indexed in {time.perf_counter() - started:.1f} s", flush=True)

        config = write_config(out, server)
        state, template, baselined = out / "state", out / "state-template", out / "state-baselined"
        mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
        subprocess.run(mailbot + ["db", "upgrade"], check=True, capture_output=True, env=env)
        shutil.copytree(state, template)

        def fresh(source: Path):
            def prepare(side: str) -> None:
                floor_db.unlink(missing_ok=True)
                if side == "mailbot":
                    shutil.rmtree(state, ignore_errors=True)
                    shutil.copytree(source, state)
            return prepare

        def check(expected: str):
            def verify(side: str, run) -> None:
                if side == "floor":
                    if f'"recorded": {count}' not in run.stdout:
                        raise SystemExit(f"the floor recorded: {run.stdout[-300:]}")
                    return
                found = outcomes(state)
                if found.get(expected) != count:
                    raise SystemExit(f"mailbot recorded {found}, expected {count} {expected}")
            return verify

        jobs = [("first contact", mailbot + ["poll", "--no-send"], template, "baseline")]
        if "--since" in sys.argv:
            subprocess.run(mailbot + ["poll", "--no-send"], check=True, capture_output=True, env=env)
            shutil.copytree(state, baselined)
            jobs.append(("poll --since", mailbot + ["poll", "--no-send", "--json", "--since", "2000-01-01"],
                         baselined, "ignored"))
        for what, cmd, source, expected in jobs:
            pair = paired(floor, cmd, pairs, prepare=fresh(source), check=check(expected), env=env)
            print(pair.line(f"{what}, {count} messages"), flush=True)
            peak = pair.median("mailbot", "rss_mib")
            if peak >= TARGET_MIB:
                missed.append(f"{what}: peak {peak:.0f} MiB (under {TARGET_MIB:.0f} MiB)")
            if pair.ratio("wall") > TARGET_RATIO:
                missed.append(f"{what}: wall {pair.ratio('wall'):.2f}x the floor (at most {TARGET_RATIO:g}x)")
    finally:
        server.close()
    shutil.rmtree(out, ignore_errors=True)
    return report_targets(missed)


if __name__ == "__main__":
    sys.exit(main())
