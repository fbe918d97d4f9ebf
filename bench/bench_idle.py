"""Benchmark: the idle daemon's memory and CPU per poll beside the floor's (issue 5: RSS after an
hour of polling an empty mailbox, target under 80 MB; issue 13: under 60 MB and under 10 ms of CPU
per empty poll).

Starts a private Dovecot (the test fixture's class, tests/support/dovecot.py) with two empty section
mailboxes, then `mailbot run` as a real process polling them every INTERVAL seconds instead of
every 5 minutes (the daemon's shortest interval is 1 s), until it has done POLLS polls (300 by
default: 25 times the 12 polls of an hour of normal polling; the start-up remind and summary
checks run too). Every second it samples the
RSS of the daemon and of its descendants (the forkserver and table readers, if any started) from
/proc, and prints the first sample after the first poll, the peak and the last, in MiB. At the same
time, against the same server, `bench/floor.py idle` polls the same two mailboxes (LOGIN, SELECT,
UID SEARCH, LOGOUT) as often: its RSS and CPU per poll are printed beside the daemon's (CPU per poll:
user + system time from /proc between the first poll and the last, over the polls in between).
Exits 1 when the daemon's peak is over the target. Needs dovecot-imapd. Not part of CI.

LEDGER (default 0) messages are put in the first mailbox before the daemon starts: its first poll
records them as baseline (first contact), so the empty polls measured after it run beside a ledger
of that size, as a daemon does after months (or after a big first contact). The floor's
`UID SEARCH ALL` then lists them all at every poll; mailbot asks only above its mark.

usage: python bench/bench_idle.py [POLLS] [INTERVAL_SECONDS] [LEDGER]      (default 300 1 0)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.dovecot import (DOVEADM_CANDIDATES, DOVECOT_CANDIDATES, LDA_CANDIDATES, Dovecot,  # noqa: E402
                             _become_subreaper, _find)
from support.loopback import private_dir  # noqa: E402

TARGET_MIB = 80.0
MAILBOXES = (("chuyoujiao", "chuyoujiao@example.test", "primary"), ("zjg", "zjg@example.test", "middle"))
SAMPLE_SECONDS = 1.0
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def write_config(directory: Path, server: Dovecot, interval_seconds: float) -> Path:
    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{directory / "state"}"', "",
             "[schedule]", f"poll_interval_minutes = {interval_seconds / 60!r}", "",
             "[summary]", 'recipients = ["leader@example.test"]', "",
             "[operator]", 'email = "operator@example.test"', "",
             "[[school]]", 'name = "安溪县北门小学"', 'level = "primary"', 'emails = ["school1@example.test"]', ""]
    for name, user, level in MAILBOXES:
        imap = server.imap_config(user)
        lines += ["[[mailbox]]", f'name = "{name}"', f'address = "{user}"', f'levels = ["{level}"]',
                  f'outbox_dir = "{directory / "outbox" / name}"', "",
                  "[mailbox.imap]", f'host = "{imap.host}"', f"port = {imap.port}", 'security = "plain"',
                  f'username = "{user}"', f'password_file = "{imap.password_file}"', ""]
    path = directory / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def rss_mib(pid: int) -> float:
    """Resident memory of one process (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB / 1024
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(root: int) -> list[int]:
    """Every process below `root`, from the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Poller:
    """A polling process, its stderr or stdout lines counted as polls, sampled every second."""

    def __init__(self, cmd: list[str], done_marker: str, stream: str):
        env = {**os.environ, "PYTHONUTF8": "1"}
        pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: subprocess.PIPE}
        self.proc = subprocess.Popen(cmd, text=True, env=env, **pipes)
        self.marker, self.lines, self.samples = done_marker, [], []
        self.first_cpu: tuple[int, float] | None = None  # (polls done, CPU seconds) at the first poll
        self.last_cpu: tuple[int, float] | None = None
        self.reader = threading.Thread(target=lambda: self.lines.extend(getattr(self.proc, stream)), daemon=True)
        self.reader.start()

    def polls(self) -> int:
        return sum(self.marker in line for line in list(self.lines))

    def sample(self, since: float) -> None:
        done = self.polls()
        if done >= 1 and self.proc.poll() is None:
            tree = [self.proc.pid] + descendants(self.proc.pid)
            cpu = sum(map(cpu_seconds, tree))
            self.first_cpu = self.first_cpu or (done, cpu)
            self.last_cpu = (done, cpu)
            self.samples.append((time.monotonic() - since, rss_mib(self.proc.pid), sum(map(rss_mib, tree)), len(tree)))

    def cpu_ms_per_poll(self) -> float | None:
        if self.first_cpu is None or self.last_cpu[0] <= self.first_cpu[0]:
            return None
        return 1000 * (self.last_cpu[1] - self.first_cpu[1]) / (self.last_cpu[0] - self.first_cpu[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)


def run_daemon(config: Path, polls: int, floor_cmd: list[str]) -> tuple[Poller, Poller, int, str]:
    """Run `mailbot run` and the floor poller side by side until both have polled `polls` times;
    both pollers (with their samples: seconds since start, own MiB, tree MiB, number of
    processes), the daemon's polls, and its stderr tail when it reported problems."""
    daemon = Poller([sys.executable, "-m", "mailbot", "--config", str(config), "run"], "job poll done", "stderr")
    floor = Poller(floor_cmd, "poll done", "stdout")
    started = time.monotonic()
    try:
        while daemon.proc.poll() is None and floor.proc.poll() is None:
            daemon.sample(started)
            floor.sample(started)
            if daemon.polls() >= polls and floor.polls() >= polls:
                break
            time.sleep(SAMPLE_SECONDS)
    finally:
        daemon.stop()
        floor.stop()
    proc, lines = daemon.proc, daemon.lines
    failures = [line for line in lines if "failed" in line]
    done = sum("job poll done" in line for line in lines)
    tail = "".join(lines[-5:]) + ("".join(failures[:5]) if failures else "")
    return daemon, floor, done, tail if proc.returncode or failures else ""


def main() -> int:
    polls = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    interval = max(float(sys.argv[2]) if len(sys.argv) > 2 else 1.0, 1.0)
    ledger = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    binary = _find(DOVECOT_CANDIDATES, "dovecot")
    if binary is None:
        print("dovecot is not installed (apt-get install dovecot-imapd)", file=sys.stderr)
        return 2
    _become_subreaper()
    directory = private_dir("mailbot-bench-idle-")
    server = Dovecot(directory, binary, _find(LDA_CANDIDATES, "dovecot-lda"), _find(DOVEADM_CANDIDATES, "doveadm"))
    try:
        server.start()
        server.append_many(MAILBOXES[0][1], [b"From: someone@example.test\r\nTo: %s\r\nSubject: old %d\r\n"
                                             b"Message-ID: <old%d@example.test>\r\n\r\nold mail\r\n"
                                             % (MAILBOXES[0][1].encode(), n, n) for n in range(ledger)])
        config = write_config(directory, server, interval)
        imap = server.imap_config(MAILBOXES[0][1])
        floor_cmd = [sys.executable, str(Path(__file__).resolve().parent / "floor.py"), "idle", imap.host,
                     str(imap.port), str(interval)] + [f"{user}={server.imap_config(user).password_file}"
                                                       for _, user, _ in MAILBOXES]
        daemon, floor, done, problems = run_daemon(config, polls, floor_cmd)
        samples = daemon.samples
    finally:
        server.close()
        shutil.rmtree(directory, ignore_errors=True)
    if problems:
        print(f"the daemon reported problems:\n{problems}", file=sys.stderr)
    if not samples:
        print("no poll completed", file=sys.stderr)
        return 1
    peak = max(samples, key=lambda s: s[1])
    peak_tree = max(samples, key=lambda s: s[2])
    print(f"{done} polls of 2 empty IMAP mailboxes every {interval:g} s in {samples[-1][0]:.0f} s"
          + (f" (the first beside {ledger} old messages, recorded as baseline by the first poll)" if ledger else ""))
    print(f"daemon RSS  MiB: start {samples[0][1]:.1f}  peak {peak[1]:.1f}  end {samples[-1][1]:.1f}")
    print(f"tree   RSS  MiB: start {samples[0][2]:.1f}  peak {peak_tree[2]:.1f}  end {samples[-1][2]:.1f}"
          f"  (up to {max(s[3] for s in samples)} processes)")
    quarter = len(samples) // 4 or 1
    first, last = samples[:quarter], samples[-quarter:]
    print(f"mean daemon RSS, first quarter {sum(s[1] for s in first) / len(first):.1f} MiB, "
          f"last quarter {sum(s[1] for s in last) / len(last):.1f} MiB")
    floor_peak = max((s[1] for s in floor.samples), default=0.0)
    mine, theirs = daemon.cpu_ms_per_poll(), floor.cpu_ms_per_poll()
    print(f"floor poller ({floor.polls()} polls): RSS peak {floor_peak:.1f} MiB -> daemon/floor {peak[1] / max(floor_peak, 0.1):.2f}")
    if mine is not None and theirs is not None:
        print(f"CPU per poll: daemon {mine:.1f} ms, floor {theirs:.1f} ms -> ratio {mine / max(theirs, 0.01):.2f} "
              f"(load {'/'.join(f'{x:.1f}' for x in os.getloadavg())})")
    return 0 if peak[1] < TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
