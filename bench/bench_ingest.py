"""Benchmark: `mailbot ingest` over N generated submissions beside the floor, whole processes,
start-up and the workers' CPU included (bench/measure.py), interleaved pairs, medians.

Every message is durable when reported (archived, committed, reply queued). Not part of CI.

usage: python bench/bench_ingest.py [N] [PAIRS]     (default 1000 5; corpus cached in bench/out/)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from make_corpus import make_corpus, write_config  # noqa: E402
from measure import paired  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    corpus = HERE / "out" / f"corpus-{n}"
    if not (corpus / "roster.json").exists():
        t = time.perf_counter()
        make_corpus(corpus, n)
        print(f"generated {n} messages in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    files = [str(f) for f in sorted(corpus.glob("*.eml"))]
    sizes = sorted(os.path.getsize(p) for p in files)
    state = HERE / "out" / "state-ingest"
    floor_state = HERE / "out" / "state-floor"
    config = write_config(corpus, state)
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]

    def prepare(side: str) -> None:
        shutil.rmtree(floor_state if side == "floor" else state, ignore_errors=True)
        if side == "mailbot":  # the schema exists already, as in service
            subprocess.run(mailbot + ["db", "upgrade"], check=True, capture_output=True)

    def check(side: str, run) -> None:
        if side == "mailbot":
            outcomes = [json.loads(line)["outcome"] for line in run.stdout.splitlines() if line.startswith("{")]
            if outcomes.count("accepted") != n:
                raise SystemExit(f"mailbot accepted {outcomes.count('accepted')} of {n}\n{run.stderr[-3000:]}")

    floor = [sys.executable, str(HERE / "floor.py"), "ingest", str(floor_state / "floor.sqlite3"),
             str(floor_state / "archive"), *files]
    result = paired(floor, mailbot + ["ingest", "--json", *files], pairs, prepare, check,
                    env={**os.environ, "PYTHONUTF8": "1"})
    print(f"messages: {n} ({sizes[0] // 1024}-{sizes[-1] // 1024} KiB, attachment 15-30 KB xlsx); cores: {os.cpu_count()}")
    print(result.line(f"ingest {n}"))
    print(f"mailbot {n / result.median('mailbot', 'wall'):.0f} messages/s, "
          f"floor {n / result.median('floor', 'wall'):.0f} messages/s")


if __name__ == "__main__":
    main()
