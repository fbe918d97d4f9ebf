"""Decision time and worker memory over the real-world input corpus (tests/corpus), issue 10.

    .venv/bin/python bench/bench_input.py [ROUNDS]

Each corpus message goes through the real pipeline with real isolated workers (WorkerPool), into a
fresh scratch database per message; the time of `Pipeline.process` is the message's decision
time. The workers' peak RSS (VmHWM) is read from /proc before they are closed. Not part of CI.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from support.configs import write_config  # noqa: E402
from corpus.build import cases  # noqa: E402
from mailbot.config import load_config  # noqa: E402
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database  # noqa: E402
from mailbot.ingest.isolation import WorkerPool  # noqa: E402
from mailbot.ingest.pipeline import Inbound, Pipeline  # noqa: E402


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(rounds: int) -> None:
    timings: dict[str, list[float]] = {}
    outcomes: dict[str, str] = {}
    peak_worker = 0.0
    corpus = cases()
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(write_config(Path(scratch)))
        with WorkerPool(config.limits) as pool:
            for round_number in range(rounds):
                for name, (raw, _, _) in corpus.items():
                    state = Path(scratch) / f"{name}-{round_number}"
                    state.mkdir()
                    message_config = load_config(write_config(state))
                    engine = prepare_database(message_config)
                    pipeline = Pipeline(message_config, make_sessionmaker(engine), pool,
                                        lambda: datetime(2022, 10, 20, 3, 0, tzinfo=timezone.utc))
                    began = time.perf_counter()
                    result = pipeline.process(Inbound(raw=raw, mailbox="chuyoujiao", label=name))
                    timings.setdefault(name, []).append(time.perf_counter() - began)
                    outcomes[name] = result.outcome.value
                    pipeline.close()
                    engine.dispose()
                    for worker in pool._idle:
                        peak_worker = max(peak_worker, vm_hwm_mb(worker.process.pid))
    print(f"{'message':45} {'outcome':10} {'best s':>8} {'worst s':>8}")
    for name in sorted(timings, key=lambda n: -max(timings[n])):
        print(f"{name:45} {outcomes[name]:10} {min(timings[name]):8.3f} {max(timings[name]):8.3f}")
    worst = max(max(t) for t in timings.values())
    print(f"\n{len(corpus)} messages x {rounds}: worst decision {worst:.3f} s; failed: "
          f"{sum(o == 'failed' for o in outcomes.values())}; peak worker RSS {peak_worker:.1f} MiB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
