"""Benchmark: mailbot over IMAP against one private Dovecot (issue 3). Not part of CI.

One Dovecot (tests/support/dovecot.py's class, on /dev/shm) is seeded with the 1,000 submissions of
bench/make_corpus.py (cached in bench/out/corpus-1000) and measured three ways:

(a) fetch alone: ImapSession.fetch_raw over every UID, timed inside this process from connect to
    the last byte, against `mbsync` (isync) as a whole process pulling the same mailbox into a
    fresh Maildir on /dev/shm; best of 3 after one warm-up each, plain and TLS. Target ratio <= 1.5.
(b) `mailbot poll --no-send --json` as a whole process (start-up, fetch, ingest, receipts queued
    in a directory outbox) over the 1,000 messages in the two section mailboxes. Target >= 150/s.
(c) an empty poll (connect, login, ID, SELECT, UID SEARCH above the last UID) on a mailbox of 20
    vs 20,000 small messages: commands sent, bytes the server answered (through the recording
    proxy) and time (median of 30, direct, alternating); then `mailbot poll --no-send` as a whole
    process on each, once a first poll has settled its ledger (median of 5). Target ratio <= 1.2.

Needs dovecot-imapd and isync. Exits 1 when a target is missed.

usage: python bench/bench_imap.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from make_corpus import make_corpus  # noqa: E402
from support.dovecot import (DOVEADM_CANDIDATES, DOVECOT_CANDIDATES, LDA_CANDIDATES, Dovecot,  # noqa: E402
                             _become_subreaper, _find)
from support.loopback import USERS, private_dir  # noqa: E402
from support.standins import RecordingProxy  # noqa: E402

from mailbot.transports.imap import ImapInbox  # noqa: E402

N = 1000
FETCH_USER = "school1@example.test"  # all 1,000 submissions, for (a)
SECTION_USERS = {"primary": "chuyoujiao@example.test", "middle": "zjg@example.test"}  # 500 each, for (b)
SMALL_USER, BIG_USER = "school2@example.test", "school3@example.test"  # 20 and 20,000 messages, for (c)
SMALL_COUNT, BIG_COUNT = 20, 20_000
TARGET_FETCH_RATIO, TARGET_RATE, TARGET_EMPTY_RATIO = 1.5, 150.0, 1.2


def small_message(number: int) -> bytes:
    return (f"From: someone{number}@elsewhere.test\r\nTo: school3@example.test\r\n"
            f"Subject: note {number}\r\nMessage-ID: <n{number}@elsewhere.test>\r\n"
            f"Date: Mon, 30 Nov 2026 08:00:00 +0800\r\n\r\nhello {number}\r\n").encode("ascii")


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


# -- (a) fetch vs mbsync --------------------------------------------------------------------------


def mailbot_fetch(server: Dovecot, security: str, expected_bytes: int) -> None:
    inbox = ImapInbox(server.mailbox_config(FETCH_USER, security))
    with inbox.session() as session:
        got = sum(len(raw) for _, raw in session.fetch_raw(session.uids_after(0)))
    if got != expected_bytes:
        raise SystemExit(f"mailbot fetched {got} bytes, expected {expected_bytes}")


def mbsync_rc(server: Dovecot, security: str, local: Path) -> str:
    """TESTING.md §4's verified .mbsyncrc; `Host localhost` because isync ignores IP SANs."""
    transport = (f"Host localhost\nPort {server.ssl_port}\nSSLType IMAPS\nCertificateFile {server.ca_file}\n"
                 if security == "ssl" else f"Host 127.0.0.1\nPort {server.port}\nSSLType None\nAuthMechs LOGIN\n")
    return (f"IMAPAccount a\n{transport}User {FETCH_USER}\nPass {USERS[FETCH_USER]}\n\n"
            "IMAPStore r\nAccount a\n\n"
            f"MaildirStore l\nPath {local}/m/\nInbox {local}/m/INBOX\nSubFolders Verbatim\n\n"
            "Channel c\nFar :r:\nNear :l:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n")


def mbsync_fetch(server: Dovecot, security: str, scratch: Path) -> None:
    """A whole `mbsync` process into a fresh Maildir (a first pull, like mailbot's first poll)."""
    local = Path(tempfile.mkdtemp(dir=scratch))
    (local / "m").mkdir()
    (local / "rc").write_text(mbsync_rc(server, security, local), encoding="utf-8")
    try:
        proc = subprocess.run(["mbsync", "-q", "-c", str(local / "rc"), "-a"], capture_output=True, text=True)
        pulled = len(list((local / "m" / "INBOX" / "new").iterdir())) + len(list((local / "m" / "INBOX" / "cur").iterdir()))
        if proc.returncode != 0 or pulled != N:
            raise SystemExit(f"mbsync failed ({pulled} messages): {proc.stderr[-2000:]}")
    finally:
        shutil.rmtree(local)


# -- (b) mailbot poll end to end ------------------------------------------------------------------


SECTION_MAILBOXES = (("chuyoujiao", "chuyoujiao@163.com", "primary", SECTION_USERS["primary"]),
                     ("zjg", "zjg23236764@163.com", "middle", SECTION_USERS["middle"]))


def write_poll_config(directory: Path, server: Dovecot, roster: list[dict],
                      mailboxes: tuple[tuple[str, str, str, str], ...] = SECTION_MAILBOXES,
                      port: int | None = None) -> Path:
    """make_corpus's roster; IMAP mailboxes (name, address, level, Dovecot user) with directory
    outboxes, on Dovecot's plain port or `port` (the recording proxy).

    The corpus addresses mail to the 163.com accounts; those stay the configured addresses while
    the Dovecot users are the IMAP usernames.
    """
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{state}"', ""]
    for name, address, level, user in mailboxes:
        imap = server.imap_config(user)
        lines += ["[[mailbox]]", f'name = "{name}"', f'address = "{address}"', f'levels = ["{level}"]',
                  f'outbox_dir = "{state}/outbox/{name}"', "",
                  "[mailbox.imap]", f'host = "{imap.host}"', f"port = {port or imap.port}", 'security = "plain"',
                  f'username = "{imap.username}"', f'password_file = "{imap.password_file}"', ""]
    for school in roster:
        lines += ["[[school]]", f"name = {json.dumps(school['name'], ensure_ascii=False)}",
                  f'level = "{school["level"]}"', f"emails = {json.dumps(school['emails'])}", ""]
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_poll(config: Path) -> tuple[float, dict[str, int], str, int]:
    """Wall time of one `mailbot poll --no-send --json`, its outcomes, stderr tail, max RSS KiB."""
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
    env = {**os.environ, "PYTHONUTF8": "1"}
    subprocess.run(mailbot + ["db", "upgrade"], check=True, capture_output=True, env=env)
    cmd = ["/usr/bin/time", "-f", "maxrss=%M"] + mailbot + ["poll", "--no-send", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            outcome = json.loads(line).get("outcome", "?")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    rss = [int(line.split("=")[1]) for line in proc.stderr.splitlines() if line.startswith("maxrss=")]
    return wall, outcomes, proc.stderr[-2000:] if proc.returncode else "", rss[-1] if rss else 0


# -- (c) empty poll on 20 vs 20,000 ---------------------------------------------------------------


def empty_poll(server: Dovecot, user: str, last_uid: int, port: int | None = None) -> int:
    """Connect, log in, select and ask for UIDs above the mark; the commands sent."""
    config = server.mailbox_config(user)
    if port is not None:  # through the recording proxy
        config = dataclasses.replace(config, imap=dataclasses.replace(config.imap, port=port))
    with ImapInbox(config).session() as session:
        if session.exists != last_uid:
            raise SystemExit(f"{user} holds {session.exists} messages, expected {last_uid}")
        if session.uids_after(last_uid):
            raise SystemExit(f"{user}: the empty poll found messages")
        return session.commands_sent


def measure_empty_polls(server: Dovecot, mailboxes: list[tuple[str, int]], rounds: int = 30) -> list[tuple[int, int, float]]:
    """(commands, bytes the server answered, median seconds) of an empty poll of each mailbox.

    The timed polls alternate between the mailboxes so that drift (CPU frequency, caches) falls
    on both alike.
    """
    traffic = []
    for user, last_uid in mailboxes:
        proxy = RecordingProxy(server.port)
        try:
            commands = empty_poll(server, user, last_uid, proxy.port)
            time.sleep(0.05)  # let the proxy's pump copy the last bytes
            traffic.append((commands, len(proxy.server_bytes)))
        finally:
            proxy.close()
    times: list[list[float]] = [[] for _ in mailboxes]
    for round_number in range(rounds + 1):
        for index, (user, last_uid) in enumerate(mailboxes):
            started = time.perf_counter()
            empty_poll(server, user, last_uid)
            if round_number:  # the first round warms up
                times[index].append(time.perf_counter() - started)
    return [(commands, answered, statistics.median(seconds)) for (commands, answered), seconds in zip(traffic, times)]


def measure_empty_mailbot_polls(directory: Path, server: Dovecot, roster: list[dict],
                                mailboxes: list[tuple[str, int]], rounds: int = 5) -> list[tuple[int, float]]:
    """(IMAP commands, median wall seconds) of an empty `mailbot poll --no-send` as a whole
    process, for each mailbox after a first poll has settled its ledger (every message there is
    from an unknown sender, so it is described, never downloaded)."""
    env = {**os.environ, "PYTHONUTF8": "1"}
    proxy = RecordingProxy(server.port)
    commands, polls = [], []
    try:
        for user, _ in mailboxes:
            mailbox = (("bench", "chuyoujiao@163.com", "primary", user),)
            config = write_poll_config(directory / user, server, roster[:2], mailbox, proxy.port)
            poll = [sys.executable, "-m", "mailbot", "--config", str(config), "poll", "--no-send"]
            subprocess.run(poll[:5] + ["db", "upgrade"], check=True, capture_output=True, env=env)
            subprocess.run(poll, check=True, capture_output=True, env=env)  # settles the ledger
            time.sleep(0.05)
            proxy.reset()
            subprocess.run(poll, check=True, capture_output=True, env=env)
            time.sleep(0.05)
            commands.append(len(proxy.commands()))
            polls.append(poll)
        times: list[list[float]] = [[] for _ in mailboxes]
        for _ in range(rounds):
            for index, poll in enumerate(polls):
                started = time.perf_counter()
                subprocess.run(poll, check=True, capture_output=True, env=env)
                times[index].append(time.perf_counter() - started)
    finally:
        proxy.close()
    return [(count, statistics.median(seconds)) for count, seconds in zip(commands, times)]


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    binary = _find(DOVECOT_CANDIDATES, "dovecot")
    if binary is None or shutil.which("mbsync") is None:
        print("needs dovecot-imapd and isync (apt-get install dovecot-imapd isync)", file=sys.stderr)
        return 2
    corpus = HERE / "out" / f"corpus-{N}"
    if not (corpus / "roster.json").exists():
        started = time.perf_counter()
        make_corpus(corpus, N)
        print(f"generated {N} messages in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    raws = [path.read_bytes() for path in sorted(corpus.glob("*.eml"))]
    roster = json.loads((corpus / "roster.json").read_text(encoding="utf-8"))
    total_bytes = sum(map(len, raws))

    _become_subreaper()
    directory = private_dir("mailbot-bench-imap-")
    server = Dovecot(directory, binary, _find(LDA_CANDIDATES, "dovecot-lda"), _find(DOVEADM_CANDIDATES, "doveadm"))
    failed = False
    try:
        server.start()
        started = time.perf_counter()
        server.append_many(FETCH_USER, raws, chunk=100)
        for level, user in SECTION_USERS.items():
            server.append_many(user, [raw for raw, school in zip(raws, roster) if school["level"] == level], chunk=100)
        server.append_many(SMALL_USER, [small_message(n) for n in range(SMALL_COUNT)])
        server.append_many(BIG_USER, [small_message(n) for n in range(BIG_COUNT)], chunk=2000)
        print(f"seeded Dovecot in {time.perf_counter() - started:.1f} s: {N} submissions "
              f"({total_bytes / N / 1024:.1f} KiB each, {total_bytes / 1e6:.1f} MB), "
              f"{SMALL_COUNT} and {BIG_COUNT} small messages", file=sys.stderr, flush=True)

        rows = []
        scratch = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
        try:
            for security in ("plain", "ssl"):
                mailbot_fetch(server, security, total_bytes)  # warm Dovecot's index and cache
                mbsync_fetch(server, security, scratch)
                ours = best_of(3, lambda: mailbot_fetch(server, security, total_bytes))
                theirs = best_of(3, lambda: mbsync_fetch(server, security, scratch))
                ratio = ours / theirs
                failed |= ratio > TARGET_FETCH_RATIO
                rows.append((f"(a) fetch {N}, {'TLS' if security == 'ssl' else 'plain'}",
                             f"mailbot {ours:.3f} s / mbsync {theirs:.3f} s = {ratio:.2f}",
                             f"<= {TARGET_FETCH_RATIO}"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

        config = write_poll_config(directory, server, roster)
        wall, outcomes, problems, rss_kib = run_poll(config)
        rate = N / wall
        failed |= rate < TARGET_RATE or outcomes.get("accepted") != N
        rows.append((f"(b) mailbot poll, {N} messages", f"{wall:.2f} s = {rate:.0f} messages/s, "
                     f"max RSS {rss_kib // 1024} MiB; {outcomes}", f">= {TARGET_RATE:.0f}/s"))
        if problems:
            print(f"mailbot poll failed:\n{problems}", file=sys.stderr)

        small, big = measure_empty_polls(server, [(SMALL_USER, SMALL_COUNT), (BIG_USER, BIG_COUNT)])
        ratio = big[2] / small[2]
        failed |= ratio > TARGET_EMPTY_RATIO or big[0] != small[0]
        for count, (commands, answered, seconds) in ((SMALL_COUNT, small), (BIG_COUNT, big)):
            rows.append((f"(c) empty poll, {count} messages",
                         f"{commands} commands, {answered} bytes answered, {seconds * 1000:.2f} ms", ""))
        rows.append(("(c) empty poll time, 20,000 / 20", f"{ratio:.2f}", f"<= {TARGET_EMPTY_RATIO}"))
        whole = measure_empty_mailbot_polls(directory / "empty", server, roster,
                                            [(SMALL_USER, SMALL_COUNT), (BIG_USER, BIG_COUNT)])
        for count, (commands, seconds) in zip((SMALL_COUNT, BIG_COUNT), whole):
            rows.append((f"(c) empty `mailbot poll`, {count}", f"{commands} commands, {seconds:.3f} s (whole process)", ""))
        whole_ratio = whole[1][1] / whole[0][1]
        failed |= whole_ratio > TARGET_EMPTY_RATIO or whole[0][0] != whole[1][0]
        rows.append(("(c) empty `mailbot poll`, 20,000 / 20", f"{whole_ratio:.2f}", f"<= {TARGET_EMPTY_RATIO}"))
    finally:
        server.close()
        shutil.rmtree(directory, ignore_errors=True)

    width = max(len(row[0]) for row in rows)
    for what, figure, target in rows:
        print(f"{what:<{width}}  {figure}" + (f"  (target {target})" if target else ""))
    print(f"cores: {os.cpu_count()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
