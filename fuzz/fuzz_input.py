"""Coverage-guided fuzzing of what mailbot does to untrusted input (issue 10). Not part of CI.

    .venv/bin/python fuzz/fuzz_input.py --minutes 30 [--report fuzz/out/report.json]

One libFuzzer run (atheris) over three entry points, chosen by the input's first byte:
- the raw message, through the whole pipeline (parse, classify, read, decide, store, reply) with
  the inline reader, into a scratch database;
- the rest of the input as one attachment of a submission from a registered school, under a
  content type and name also taken from the input;
- the rest as a file given straight to each table reader (read_table_bytes + find_tables).
The seeds are the sample messages and their attachments (tests/samples) and the corpus files
(tests/corpus). Each problem is recorded, not raised, so the run goes on: an unhandled exception, a
`failed` outcome, an input that takes over 2 s, and the process's peak RSS passing 200 MB. Problems
are de-duplicated by kind and the innermost mailbot frame; the report holds executions, distinct
problems and a reproducer of each (fuzz/out/crashes/).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

# --replay runs saved inputs without instrumentation, at the speed mailbot really runs.
_REPLAY = "--replay" in sys.argv
with (contextlib.nullcontext() if _REPLAY else atheris.instrument_imports(include=["mailbot"])):
    from mailbot.config import Limits, load_config
    from mailbot.db.engine import make_sessionmaker
    from mailbot.db.migrate import prepare_database
    from mailbot.ingest.isolation import InlineRunner
    from mailbot.ingest.pipeline import Inbound, Pipeline
    from mailbot.tables.locate import find_tables
    from mailbot.tables.readers import read_table_bytes

SLOW_SECONDS = 2.0
RSS_LIMIT_MB = 200
HANG_SECONDS = 20  # an input still running after this is recorded as a hang and abandoned
TYPES = ["application/octet-stream", "image/jpeg", "application/vnd.ms-excel", "text/csv", "application/zip",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/ms-tnef",
         "message/rfc822"]
NAMES = ["汇总表.xlsx", "汇总表.xls", "汇总表.et", "汇总表.ods", "汇总表.csv", "汇总表.docx", "汇总表.zip", "IMG_0001.jpg",
         "winmail.dat", "转发.eml", "未命名"]
READER_NAMES = ["a.xlsx", "a.xls", "a.ods", "a.csv", "a.docx", "a.zip", "a.et", "a"]


class Hang(BaseException):
    pass


class Harness:
    def __init__(self, report: Path):
        self.report_path = report
        self.crash_dir = report.parent / "crashes"
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        self.state = Path(tempfile.mkdtemp(prefix="mailbot-fuzz-"))
        from conftest import write_config
        self.config = load_config(write_config(self.state))
        self.engine = prepare_database(self.config)
        self.pipeline = Pipeline(self.config, make_sessionmaker(self.engine), InlineRunner(self.config.limits),
                                 lambda: __import__("datetime").datetime(2022, 10, 20, 3, 0,
                                                                        tzinfo=__import__("datetime").timezone.utc))
        self.pipeline.batch_size = 1
        self.limits = Limits()
        self.executions = 0
        self.by_target = {"message": 0, "attachment": 0, "reader": 0}
        self.problems: dict[str, dict] = {}
        self.slowest = (0.0, "")
        self.started = time.time()
        self.last_write = 0.0
        self.rss_flagged = False

    # -- one input -----------------------------------------------------------------------------
    def run(self, data: bytes) -> None:
        self.executions += 1
        if not data:
            return
        selector, body = data[0], data[1:]
        target = ("message", "attachment", "reader")[selector % 3]
        self.by_target[target] += 1
        began = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            if target == "message":
                self._message(body)
            elif target == "attachment":
                self._attachment(selector, body)
            else:
                self._reader(selector, body)
        except Hang:
            self._record("hang", f"over {HANG_SECONDS} s", data, "")
        except BaseException as exc:  # noqa: BLE001 - everything is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._record("exception", f"{type(exc).__name__}: {str(exc)[:200]}", data, traceback.format_exc())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed = time.monotonic() - began
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, target)
        if elapsed > SLOW_SECONDS:
            self._record("slow", f"{target} over {SLOW_SECONDS:g} s", data, f"{elapsed:9.2f} s")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if rss_mb > RSS_LIMIT_MB and not self.rss_flagged:
            self.rss_flagged = True
            self._record("memory", f"peak RSS passed {RSS_LIMIT_MB} MB ({rss_mb:.0f} MB) on {target}", data, "")
        if time.time() - self.last_write > 30:
            self.write_report()

    def _message(self, raw: bytes) -> None:
        result = self.pipeline.process(Inbound(raw=raw, mailbox="chuyoujiao", label="fuzz"))
        if result.outcome == "failed":
            raise AssertionError(f"outcome failed: {result.errors[:1]}")

    def _attachment(self, selector: int, content: bytes) -> None:
        from builders import submission
        content_type = TYPES[selector // 3 % len(TYPES)]
        name = NAMES[selector // 24 % len(NAMES)]
        raw = submission("beimenxx@163.com", "chuyoujiao@163.com", subject="课后服务汇总表",
                         message_id=hashlib.sha1(content + bytes([selector])).hexdigest(),
                         attachments=[(name, content, content_type)])
        self._message(raw)

    def _reader(self, selector: int, content: bytes) -> None:
        from mailbot.errors import UnreadableFile
        name = READER_NAMES[selector // 3 % len(READER_NAMES)]
        try:
            for table_file in read_table_bytes(content, name, self.limits, allow_archive=True):
                find_tables(table_file)
        except UnreadableFile as problem:
            if not problem.message:
                raise AssertionError(f"refusal without words: {problem.kind}")

    # -- findings --------------------------------------------------------------------------------
    def _record(self, kind: str, summary: str, data: bytes, detail: str) -> None:
        frame = ""
        for line in detail.splitlines():
            if "/mailbot/" in line and line.strip().startswith("File"):
                frame = line.strip()
        shape = re.sub(r"\d+", "#", summary)[:100]  # "over 2 s on message 1234" and 1235 are one problem
        key = hashlib.sha1(f"{kind}|{shape}|{frame}".encode()).hexdigest()[:12]
        found = self.problems.setdefault(key, {"kind": kind, "summary": summary, "where": frame, "count": 0,
                                               "first_execution": self.executions, "reproducer": ""})
        found["count"] += 1
        if kind == "slow" and detail > found.get("worst", ""):  # keep the slowest input of the kind
            found["worst"], found["reproducer"] = detail.rjust(10), ""
        if not found["reproducer"]:
            path = self.crash_dir / f"{kind}-{key}.bin"
            path.write_bytes(data)
            (self.crash_dir / f"{kind}-{key}.txt").write_text(f"{summary}\n\n{detail}", encoding="utf-8")
            found["reproducer"] = str(path)

    def write_report(self) -> None:
        self.last_write = time.time()
        report = {"executions": self.executions, "by_target": self.by_target,
                  "seconds": round(time.time() - self.started), "distinct_problems": len(self.problems),
                  "slowest_input_seconds": round(self.slowest[0], 3), "slowest_target": self.slowest[1],
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "problems": list(self.problems.values())}
        self.report_path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


def seed_corpus(directory: Path) -> None:
    """Sample messages (selector 0: whole message) and their attachments and the corpus files
    (selectors for attachment and reader), written once as libFuzzer seed files."""
    import email
    import email.policy

    from corpus import build

    directory.mkdir(parents=True, exist_ok=True)
    seeds: list[bytes] = []
    for eml in sorted((ROOT / "tests" / "samples").rglob("*.eml")):
        raw = eml.read_bytes()
        seeds.append(b"\x00" + raw)
        for part in email.message_from_bytes(raw, policy=email.policy.compat32).walk():
            payload = part.get_payload(decode=True) if not part.is_multipart() else None
            if payload and part.get_filename():
                seeds += [b"\x01" + payload, b"\x02" + payload]
    for name, raw in build.messages().items():
        seeds.append(b"\x00" + raw)
    for name, content in build.table_files().items():
        seeds += [b"\x01" + content, b"\x05" + content]
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--report", type=Path, default=ROOT / "fuzz" / "out" / "report.json")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replay", type=Path, nargs="+", help="run these inputs (files or folders) once each")
    args, rest = parser.parse_known_args()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    corpus = args.report.parent / "corpus"
    if not corpus.exists():
        seed_corpus(corpus)
    logging.disable(logging.CRITICAL)  # readers log every refusal; the report is what counts

    def expire(signum, frame):
        raise Hang()

    signal.signal(signal.SIGALRM, expire)
    harness = Harness(args.report)
    if args.replay:
        paths = [p for root in args.replay for p in (sorted(root.iterdir()) if root.is_dir() else [root])]
        for path in paths:
            if path.suffix != ".txt":
                began = time.monotonic()
                harness.run(path.read_bytes())
                if time.monotonic() - began > SLOW_SECONDS / 2:
                    print(f"{time.monotonic() - began:6.2f} s  {path}")
        harness.write_report()
        print(json.dumps({k: v for k, v in json.loads(args.report.read_text()).items() if k != "problems"}))
        return
    import atexit
    atexit.register(harness.write_report)
    argv = [sys.argv[0], f"-max_total_time={int(args.minutes * 60)}", f"-seed={args.seed}", "-max_len=2000000",
            "-rss_limit_mb=4096", "-timeout=600", "-print_final_stats=1", *rest, str(corpus)]
    atheris.Setup(argv, harness.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
