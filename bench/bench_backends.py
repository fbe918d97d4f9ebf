"""Benchmark: `mailbot ingest` over the same N generated submissions on SQLite and on PostgreSQL
(a private server started as in the tests, tests/support/postgres.py, but with fsync on, as in
production), in interleaved pairs (sqlite, postgresql, sqlite, ...), medians (bench/measure.py).

Whole process, start-up included, every message durable when reported; the schema is made before
each run (not timed). The CPU figure is mailbot's and its workers' (the PostgreSQL server's own
processes are not its descendants). Not part of CI.

usage: python bench/bench_backends.py [N] [PAIRS]      (default 1000 messages, 3 pairs)
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from make_corpus import make_corpus, write_config  # noqa: E402
from measure import load, run  # noqa: E402
from support.postgres import running_postgres  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    corpus = HERE / "out" / f"corpus-{n}"
    if not (corpus / "roster.json").exists():
        make_corpus(corpus, n)
    files = [str(f) for f in sorted(corpus.glob("*.eml"))]
    state = HERE / "out" / "state-backends"
    sqlite_config = write_config(corpus, state)
    runs: dict[str, list] = {"sqlite": [], "postgresql": []}
    with running_postgres(fsync=True) as pg:
        pg_config = corpus / "config-postgresql.toml"
        pg_config.write_text(sqlite_config.read_text(encoding="utf-8").replace(
            "[general]\n", f'[general]\ndatabase_url = "{pg.url("bench")}"\n'
            f'database_password_file = "{pg.password_file}"\n', 1), encoding="utf-8")
        before = load()
        for _ in range(pairs):
            for backend, config in (("sqlite", sqlite_config), ("postgresql", pg_config)):
                shutil.rmtree(state, ignore_errors=True)
                if backend == "postgresql":
                    pg.new_database("bench", template="template0")
                mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
                subprocess.run(mailbot + ["db", "upgrade"], check=True, capture_output=True)
                r = run(mailbot + ["ingest", "--json"] + files)
                accepted = sum(1 for line in r.stdout.splitlines()
                               if line.startswith("{") and json.loads(line)["outcome"] == "accepted")
                if r.returncode != 0 or accepted != n:
                    raise SystemExit(f"{backend}: {accepted}/{n} accepted\n{r.stderr[-3000:]}")
                runs[backend].append(r)
        after = load()
    for backend, rs in runs.items():
        wall = statistics.median(r.wall for r in rs)
        cpu = statistics.median(r.cpu for r in rs)
        print(f"{backend:<10} {n} messages: {wall:.2f} s wall -> {n / wall:.0f} messages/s; {cpu:.2f} CPU-s; "
              f"{statistics.median(r.rss_mib for r in rs):.0f} MiB (median of {len(rs)})")
    ratio = statistics.median(r.wall for r in runs["postgresql"]) / statistics.median(r.wall for r in runs["sqlite"])
    print(f"postgresql / sqlite wall: {ratio:.2f} (load {before} -> {after})")


if __name__ == "__main__":
    main()
