"""How the benchmarks time a whole process beside the floor: wall clock, CPU of the process and of
every descendant (getrusage(RUSAGE_CHILDREN) includes reaped grandchildren; the wrapper is a
subreaper, so descendants left orphaned, such as multiprocessing's forkserver with the ingest
workers it reaped, are reaped and counted too), and the peak RSS of the largest process in the tree.

The command runs under a tiny wrapper process: Linux carries a process's peak RSS across fork and
exec, so a child of the (large) benchmark process would report the benchmark's own peak.

On a shared 2-core machine an absolute time says little, so `paired` runs the floor and mailbot
alternately (floor, mailbot, floor, mailbot, ...) and reports medians and the ratio of the medians,
with the load average when the pairs started and ended.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds, descendants included
    rss_mib: float  # the largest process's peak
    returncode: int
    stdout: str
    stderr: str


WRAPPER = """
import ctypes, os, resource, sys, time
# A subreaper: a descendant whose parent exits before it is reaped (multiprocessing's forkserver,
# which reaps the ingest workers, is never waited for by the main process) is handed to this
# process instead of init, so its CPU and that of its own reaped children is counted too.
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
status = os.waitpid(pid, 0)[1]
wall = time.perf_counter() - start
while True:  # the orphans: they exit once the command has (the forkserver at its pipe's EOF)
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
u = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"{wall} {u.ru_utime + u.ru_stime} {u.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(cmd: Sequence[str], env: dict | None = None, cwd: str | None = None) -> Run:
    """One whole process, timed from fork to exit by the wrapper (its own start-up not counted)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as figures:
        proc = subprocess.run([sys.executable, "-S", "-c", WRAPPER, figures.name, *cmd], stdout=out, stderr=err,
                              env=env, cwd=cwd)
        wall, cpu, maxrss = figures.read().split()
        out.seek(0)
        err.seek(0)
        return Run(float(wall), float(cpu), int(maxrss) / 1024, proc.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass
class Pair:
    floor: list[Run]
    mailbot: list[Run]
    load_before: str
    load_after: str

    def median(self, side: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in getattr(self, side))

    def ratio(self, field: str) -> float:
        return self.median("mailbot", field) / max(self.median("floor", field), 1e-9)

    def line(self, what: str) -> str:
        m, f = (lambda field: self.median("mailbot", field)), (lambda field: self.median("floor", field))
        return (f"{what}: mailbot {m('wall'):.3f} s wall, {m('cpu'):.3f} CPU-s, {m('rss_mib'):.0f} MiB | "
                f"floor {f('wall'):.3f} s, {f('cpu'):.3f} CPU-s, {f('rss_mib'):.0f} MiB | "
                f"ratio wall {self.ratio('wall'):.2f}, CPU {self.ratio('cpu'):.2f} "
                f"(median of {len(self.mailbot)} pairs; load {self.load_before} -> {self.load_after})")


def paired(floor_cmd: Sequence[str], mailbot_cmd: Sequence[str], pairs: int = 5,
           prepare: Callable[[str], None] | None = None, check: Callable[[str, Run], None] | None = None,
           env: dict | None = None) -> Pair:
    """Run floor and mailbot alternately `pairs` times; `prepare(side)` before each run (fresh state,
    not timed), `check(side, run)` after (raise when the run did not do the work)."""
    result = Pair([], [], load(), "")
    for _ in range(pairs):
        for side, cmd in (("floor", floor_cmd), ("mailbot", mailbot_cmd)):
            if prepare is not None:
                prepare(side)
            r = run(cmd, env=env)
            if r.returncode != 0:
                raise SystemExit(f"{side} failed ({r.returncode}): {' '.join(cmd)[:200]}\n{r.stderr[-3000:]}")
            if check is not None:
                check(side, r)
            getattr(result, side).append(r)
    result.load_after = load()
    return result


def report_targets(missed: list[str]) -> int:
    """Print which targets a benchmark met; its exit status (1 when any was missed)."""
    print("targets: " + ("met" if not missed else "missed: " + "; ".join(missed)))
    return 1 if missed else 0
