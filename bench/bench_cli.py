"""Benchmark: a CLI that answers at once (issue 13: `mailbot --help` under 0.2 s, `status` on a small
database under 0.5 s), whole processes beside the floor in interleaved pairs, medians
(bench/measure.py). The floor of `--help` is `python -c pass`; the floor of `status` is
bench/floor.py's (the config read, one query, JSON out). Also prints what `--help` and `status`
import that they need not: SQLAlchemy, Alembic. Exits 1 when a target is missed. Not part of CI.

usage: python bench/bench_cli.py [PAIRS]      (default 11)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, "/work/shared/tools")
from measure import paired, report_targets  # noqa: E402

SAMPLES = Path("/work/shared/samples")
HELP_SECONDS, STATUS_SECONDS = 0.2, 0.5


def small_state() -> Path:
    """The samples' config (43 schools) with one accepted table in its database."""
    from check_corpus import write_config
    folder = HERE / "out" / "cli-small"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = write_config(folder, SAMPLES)
    case = SAMPLES / "cases" / "001-163-webmail-xlsx"
    mailbox = json.loads((case / "expect.json").read_text())["mailbox"]
    subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), "ingest", "--mailbox", mailbox,
                    str(case / "message.eml")], check=True, capture_output=True)
    return config


def imported(args: list[str]) -> set[str]:
    code = ("import sys, runpy; sys.argv = ['mailbot'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('mailbot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    return set(proc.stderr.split("\n")[-2].split())


def main() -> int:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    config = small_state()
    mailbot = [sys.executable, "-m", "mailbot"]
    missed = []
    help_ = paired([sys.executable, "-c", "pass"], mailbot + ["--help"], pairs)
    print(help_.line("mailbot --help"))
    status = paired([sys.executable, str(HERE / "floor.py"), "status", str(config), "2022-10"],
                    mailbot + ["--config", str(config), "status", "--month", "2022-10", "--json"], pairs)
    print(status.line("status --json, 43 schools"))
    for what, args in (("--help", ["--help"]), ("status", ["--config", str(config), "status", "--month", "2022-10"])):
        heavy = sorted(imported(args) & {"sqlalchemy", "alembic", "jinja2", "openpyxl", "lxml", "flask"})
        print(f"mailbot {what} imports: {', '.join(heavy) or 'none of sqlalchemy, alembic, jinja2, openpyxl, lxml, flask'}")
    if help_.median("mailbot", "wall") > HELP_SECONDS:
        missed.append(f"--help over {HELP_SECONDS} s")
    if status.median("mailbot", "wall") > STATUS_SECONDS:
        missed.append(f"status over {STATUS_SECONDS} s")
    return report_targets(missed)


if __name__ == "__main__":
    sys.exit(main())
