"""Benchmark: `mailbot ingest` over N generated submissions, whole process, start-up included.

Every message is durable when reported (archived, committed, reply queued). Not part of CI.

usage: python bench/bench_ingest.py [N]          (default 1000; corpus cached in bench/out/)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from make_corpus import make_corpus, write_config  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    corpus = HERE / "out" / f"corpus-{n}"
    if not (corpus / "roster.json").exists():
        t = time.perf_counter()
        make_corpus(corpus, n)
        print(f"generated {n} messages in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    files = sorted(corpus.glob("*.eml"))
    sizes = sorted(len(p.read_bytes()) for p in files)
    state = HERE / "out" / "state-ingest"
    shutil.rmtree(state, ignore_errors=True)
    config = write_config(corpus, state)
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
    subprocess.run(mailbot + ["db", "upgrade"], check=True, capture_output=True)
    cmd = ["/usr/bin/time", "-v"] + mailbot + ["ingest", "--json"] + [str(f) for f in files]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUTF8": "1"})
    wall = time.perf_counter() - start
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    outcomes = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    print(f"messages: {len(files)} ({sizes[0] // 1024}-{sizes[-1] // 1024} KiB, attachment 15-30 KB xlsx)")
    print(f"outcomes: {outcomes}")
    print(f"wall: {wall:.2f} s  ->  {len(files) / wall:.0f} messages/s (whole process, start-up included)")
    print(f"max RSS: {int(rss.group(1)) // 1024 if rss else '?'} MiB; cores: {os.cpu_count()}")
    if proc.returncode != 0 or outcomes.get("accepted") != len(files):
        print(proc.stderr[-3000:], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
