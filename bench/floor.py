"""The floor: only the irreducible work of each benchmarked job, written plainly, so every figure in
bench/README.md is a ratio to what this machine can do at all in the same minute.

  floor.py ingest DB ARCHIVE FILE...   read each file, parse the MIME, read every cell of every sheet
                                       with python-calamine (2 worker processes), archive the raw
                                       message (fdatasync each, the folder once per batch), insert its
                                       rows into SQLite, one synchronous commit per 50 messages
  floor.py status CONFIG MONTH         the config's roster (TOML and roster_file CSV), the month's
                                       rows in force by one query, every school's state as JSON
  floor.py summary CONFIG MONTH OUT    the roster, one GROUP BY query for the trend, the month's rows,
                                       a write-only .xlsx of one row per school and an HTML table
  floor.py idle HOST PORT INTERVAL USER=PASSWORD_FILE...
                                       every INTERVAL seconds, for each user: connect, LOGIN, SELECT
                                       INBOX, UID SEARCH ALL, LOGOUT; prints "poll done" after each round
  floor.py first-contact HOST PORT USER PASSWORD_FILE DB BATCH
                                       a first look at a big mailbox: UID SEARCH ALL, then per BATCH
                                       UIDs one FETCH of the headers and BODYSTRUCTURE mailbot's
                                       description asks for, and the ledger rows written to SQLite
                                       in one synchronous commit per batch
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import os
import sqlite3
import sys
from multiprocessing import Pool
from pathlib import Path

BATCH = 50


def read_tables(path: str) -> tuple[str, list[list]]:
    from python_calamine import CalamineWorkbook
    raw = Path(path).read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    rows = []
    for part in msg.iter_attachments():
        book = CalamineWorkbook.from_filelike(io.BytesIO(part.get_content()))
        for name in book.sheet_names:
            cells = book.get_sheet_by_name(name).to_python()
            header = next((i for i, row in enumerate(cells) if "学校名称" in row), None)
            if header is not None:
                rows += [row for row in cells[header + 1:] if row and row[0] and isinstance(row[2], float)]
    return str(msg["From"]), rows


def ingest(db: str, archive: str, paths: list[str]) -> None:
    Path(archive).mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       "CREATE TABLE IF NOT EXISTS rows (sender TEXT, school TEXT, cells TEXT)")
    folder = os.open(archive, os.O_RDONLY)
    pending: list[int] = []
    conn.execute("BEGIN")
    with Pool(2) as pool:
        for path, (sender, rows) in zip(paths, pool.imap(read_tables, paths, chunksize=4)):
            raw = Path(path).read_bytes()
            fd = os.open(os.path.join(archive, hashlib.sha256(raw).hexdigest() + ".eml"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, raw)
            pending.append(fd)
            conn.executemany("INSERT INTO rows VALUES (?, ?, ?)",
                             [(sender, row[0], json.dumps(row, ensure_ascii=False)) for row in rows])
            if len(pending) >= BATCH or path == paths[-1]:
                for fd in pending:
                    os.fdatasync(fd)
                    os.close(fd)
                os.fsync(folder)
                pending.clear()
                conn.execute("COMMIT")
                conn.execute("BEGIN")
    conn.execute("COMMIT")
    print(json.dumps({"messages": len(paths), "rows": conn.execute("SELECT count(*) FROM rows").fetchone()[0]}))


IN_FORCE = "FROM submissions WHERE replaced_by IS NULL AND voided_at IS NULL"


def roster(config: str) -> tuple[list[str], sqlite3.Connection]:
    import csv
    import tomllib
    with open(config, "rb") as f:
        cfg = tomllib.load(f)
    names = [s["name"] for s in cfg.get("school", [])]
    if "roster_file" in cfg["general"]:
        with open(cfg["general"]["roster_file"], encoding="utf-8", newline="") as f:
            names += [row["name"] for row in csv.DictReader(f)]
    return names, sqlite3.connect(Path(cfg["general"]["state_dir"]) / "mailbot.sqlite3")


def status(config: str, month: str) -> None:
    schools, conn = roster(config)
    rows = {r[0]: r for r in conn.execute(
        f"SELECT school, received_at, late, enrolled, participating, two_plus_n, n {IN_FORCE} AND month = ?", (month,))}
    out = [{"name": name, "state": ("late" if rows[name][2] else "on_time") if name in rows else "missing",
            "received_at": rows[name][1] if name in rows else None,
            "enrolled": rows[name][3] if name in rows else None} for name in schools]
    print(json.dumps({"month": month, "schools": out, "totals": {"reported": len(rows)}}, ensure_ascii=False))


def summary(config: str, month: str, out: str) -> None:
    from openpyxl import Workbook
    schools, conn = roster(config)
    trend = conn.execute(f"SELECT month, count(*), sum(late), sum(enrolled), sum(participating) {IN_FORCE} "
                         "AND month <= ? GROUP BY month ORDER BY month", (month,)).fetchall()
    rows = conn.execute(f"SELECT school, received_at, late, enrolled, participating, two_plus_n, n, services "
                        f"{IN_FORCE} AND month = ? ORDER BY id", (month,)).fetchall()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("汇总表")
    sheet.append(["学校名称", "报送时间", "迟报", "在校学生数", "参与学生数", "2+N", "N", "拓展服务项目"])
    html = ["<table>"]
    by_school = {row[0]: row for row in rows}
    for school in schools:
        if school not in by_school:
            sheet.append([school, "未报送"])
            continue
        _, received_at, late, enrolled, participating, two_plus_n, n, services = by_school[school]
        names = "、".join(json.loads(services or "[]"))
        sheet.append([school, received_at, "是" if late else "否", enrolled, participating, two_plus_n, n, names])
        html.append(f"<tr><td>{school}</td><td>{enrolled}</td><td>{participating}</td><td>{names}</td></tr>")
    Path(out).mkdir(parents=True, exist_ok=True)
    book.save(os.path.join(out, "floor.xlsx"))
    Path(out, "floor.html").write_text("\n".join(html + [f"<p>{t}</p>" for t in trend]) + "</table>", encoding="utf-8")
    print(json.dumps({"rows": len(rows), "months": len(trend)}))


def idle(host: str, port: int, interval: float, accounts: list[str]) -> None:
    import imaplib
    import time
    users = [(user, Path(path).read_text().strip()) for user, _, path in (a.partition("=") for a in accounts)]
    while True:
        started = time.monotonic()
        for user, password in users:
            imap = imaplib.IMAP4(host, port, timeout=30)
            imap.login(user, password)
            imap.select("INBOX")
            imap.uid("SEARCH", "ALL")
            imap.logout()
        print("poll done", flush=True)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


# The headers mailbot's description fetches (mailbot.transports.imap_responses.HEADER_FIELDS).
DESCRIBE = [b"UID", b"RFC822.SIZE", b"FLAGS", b"INTERNALDATE", b"BODYSTRUCTURE",
            b"BODY.PEEK[HEADER.FIELDS (FROM MESSAGE-ID X-MAILBOT AUTO-SUBMITTED PRECEDENCE X-AUTOREPLY "
            b"X-AUTORESPOND X-AUTOREPLY-FROM X-AUTO-RESPONSE-SUPPRESS LIST-ID)]"]


def first_contact(host: str, port: int, user: str, password_file: str, db: str, batch: int) -> None:
    import email.parser
    import email.utils
    from imapclient import IMAPClient
    client = IMAPClient(host, port=port, ssl=False, timeout=60)
    client.login(user, Path(password_file).read_text().strip())
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS ledger "
                       "(uid INTEGER PRIMARY KEY, message_id TEXT, sender TEXT, size INTEGER, arrived TEXT)")
    parser = email.parser.BytesHeaderParser()
    for start in range(0, len(uids), batch):
        rows = []
        for uid, item in client.fetch(uids[start:start + batch], DESCRIBE).items():
            header = next(v for k, v in item.items() if k.startswith(b"BODY[HEADER"))
            headers = parser.parsebytes(header)
            rows.append((uid, headers["Message-ID"], email.utils.parseaddr(headers["From"] or "")[1],
                         item[b"RFC822.SIZE"], item[b"INTERNALDATE"].isoformat()))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    client.logout()
    print(json.dumps({"recorded": conn.execute("SELECT count(*) FROM ledger").fetchone()[0]}))


if __name__ == "__main__":
    job, args = sys.argv[1], sys.argv[2:]
    if job == "ingest":
        ingest(args[0], args[1], args[2:])
    elif job == "status":
        status(args[0], args[1])
    elif job == "summary":
        summary(args[0], args[1], args[2])
    elif job == "idle":
        idle(args[0], int(args[1]), float(args[2]), args[3:])
    elif job == "first-contact":
        first_contact(args[0], int(args[1]), args[2], args[3], args[4], int(args[5]))
    else:
        raise SystemExit(__doc__)
