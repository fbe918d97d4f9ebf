"""Benchmark: `mailbot ingest` over the same N generated submissions on SQLite and on PostgreSQL
(a private server started as in the tests: tests/support/postgres.py; fsync on, as in production).

Whole process, start-up included, every message durable when reported. Not part of CI.

usage: python bench/bench_backends.py [N]        (default 1000; corpus cached in bench/out/)
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
sys.path.insert(0, str(HERE.parent / "tests"))
from make_corpus import make_corpus, write_config  # noqa: E402
from support.postgres import running_postgres  # noqa: E402


def ingest(config: Path, files: list[Path]) -> tuple[float, dict]:
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
    subprocess.run(mailbot + ["db", "upgrade"], check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.run(mailbot + ["ingest", "--json"] + [str(f) for f in files], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUTF8": "1"})
    wall = time.perf_counter() - start
    outcomes: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            outcome = json.loads(line)["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if proc.returncode != 0 or outcomes.get("accepted") != len(files):
        print(proc.stderr[-3000:], file=sys.stderr)
        sys.exit(1)
    return wall, outcomes


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    corpus = HERE / "out" / f"corpus-{n}"
    if not (corpus / "roster.json").exists():
        make_corpus(corpus, n)
    files = sorted(corpus.glob("*.eml"))
    results = {}
    state = HERE / "out" / "state-backends"
    shutil.rmtree(state, ignore_errors=True)
    config = write_config(corpus, state)
    results["sqlite"] = ingest(config, files)
    with running_postgres(fsync=True) as pg:
        shutil.rmtree(state, ignore_errors=True)
        name = pg.new_database("bench", template="template0")
        text = config.read_text(encoding="utf-8").replace(
            "[general]\n", f'[general]\ndatabase_url = "{pg.url(name)}"\ndatabase_password_file = "{pg.password_file}"\n', 1)
        pg_config = corpus / "config-postgresql.toml"
        pg_config.write_text(text, encoding="utf-8")
        results["postgresql"] = ingest(pg_config, files)
    for backend, (wall, outcomes) in results.items():
        print(f"{backend:<10} {len(files)} messages in {wall:.2f} s -> {len(files) / wall:.0f} messages/s {outcomes}")
    print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
