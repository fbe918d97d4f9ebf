"""The isolated workers: hostile input costs a worker, never the caller."""

import dataclasses
import io
import os
import time

import openpyxl
import pytest

import hostile_jobs
from mailbot.config import Limits
from mailbot.errors import WorkerFailure
from mailbot.ingest.isolation import WORKER_NICENESS, Extracted, WorkerPool
from mailbot.rules.model import Attachment


def xlsx_bytes() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["学校名称", "开展课后服务学校数（所）", "在校学生数（人）", "参与课后服务学生数（人）", '是否落实"2+N"模式', "拓展服务项目名称"])
    ws.append(["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_pool_reads_tables_in_order_and_reuses_workers():
    with WorkerPool(Limits(), size=2) as pool:
        atts = [Attachment(f"t{i}.xlsx", "application/octet-stream", xlsx_bytes()) for i in range(5)]
        results = pool.extract_many(atts)
        assert [r.attachment_name for r in results] == [f"t{i}.xlsx" for i in range(5)]
        assert all(isinstance(r, Extracted) and r.tables[0].rows for r in results)
        assert len(pool._idle) == 2


def test_workers_parse_at_a_lower_priority_than_the_process_that_stores():
    # The storing process is ingest's serial path: a worker given an equal share slows it down.
    with WorkerPool(Limits(), size=1) as pool:
        (niceness,) = pool.map_ordered(os.nice, [(0,)])
    assert niceness == os.nice(0) + WORKER_NICENESS


def test_workers_start_with_the_readers_imported():
    # Imported once in the forkserver, not by each worker on its first table (26 ms each).
    readers = ("mailbot.ingest.analysis", "mailbot.tables.readers", "mailbot.tables.locate", "python_calamine")
    with WorkerPool(Limits(), size=1) as pool:
        (loaded,) = pool.map_ordered(hostile_jobs.loaded, [readers])
    assert loaded == list(readers)


def test_map_ordered_keeps_order_and_takes_inputs_lazily():
    taken = []

    def inputs():
        for i in range(6):
            taken.append(i)
            yield None if i == 3 else (i,)

    with WorkerPool(Limits(), size=2) as pool:
        results = pool.map_ordered(hostile_jobs.square, inputs())
        first = next(results)
        assert first == 0 and len(taken) <= 4  # never more than 2 x `size` ahead
        assert list(results) == [1, 4, None, 16, 25]


# Only the sleeper may be stopped by the clock: the others get a timeout that cannot win on the
# busiest machine, so what stops them is what the test is about (the memory limit, the exit, the
# exception) and not a timer that fired first.
CANNOT_WIN = 600.0


@pytest.mark.parametrize("job, timeout, expected", [
    (hostile_jobs.sleep_forever, 1.0, "longer than 1 s"),
    (hostile_jobs.eat_memory, CANNOT_WIN, "memory"),
    (hostile_jobs.crash, CANNOT_WIN, "died"),
    (hostile_jobs.bug, CANNOT_WIN, "zerodivisionerror"),
])
def test_hostile_input_costs_a_worker_not_the_caller(job, timeout, expected):
    limits = Limits(worker_timeout_seconds=timeout, worker_memory_mb=400)
    with WorkerPool(limits, size=1) as pool:
        started = time.monotonic()
        (result, after) = pool.map_ordered(job, [(b"PK",), None])
        elapsed = time.monotonic() - started
        assert isinstance(result, WorkerFailure) and expected in str(result).lower()
        if timeout < CANNOT_WIN:
            assert timeout <= elapsed < 30 * timeout  # stopped at its deadline, not after its hour of sleep
        assert after is None
        assert pool._idle == []  # the bad worker was not put back
        # The same pool goes on with a fresh worker. (Its start-up counts against the job's time, so
        # the 1 s of the sleep case would be a race on a busy machine: that is not what is tested.)
        pool.limits = dataclasses.replace(limits, worker_timeout_seconds=CANNOT_WIN)
        (ok,) = pool.extract_many([Attachment("t.xlsx", "application/octet-stream", xlsx_bytes())])
        assert isinstance(ok, Extracted) and ok.tables


def test_a_worker_that_died_while_idle_is_replaced():
    with WorkerPool(Limits(), size=1) as pool:
        pool.extract_many([Attachment("a.xlsx", "application/octet-stream", xlsx_bytes())])
        (idle,) = pool._idle
        idle.process.kill()
        idle.process.join()
        (again,) = pool.extract_many([Attachment("b.xlsx", "application/octet-stream", xlsx_bytes())])
        assert isinstance(again, Extracted) and again.tables


def test_a_caller_that_stops_early_leaves_no_busy_worker():
    with WorkerPool(Limits(), size=2) as pool:
        results = pool.map_ordered(hostile_jobs.sleep_for, [(0,), (3600,), (3600,)])
        assert next(results) == 0
        busy = [p for p in pool._ctx.active_children()]
        results.close()  # e.g. an IMAP error interrupted the poll
        assert not any(p.is_alive() for p in busy if p not in [w.process for w in pool._idle])
        (ok,) = pool.extract_many([Attachment("t.xlsx", "application/octet-stream", xlsx_bytes())])
        assert isinstance(ok, Extracted) and ok.tables


def test_a_stop_abandons_the_running_jobs_at_once_and_the_pool_goes_on():
    """A slow table may keep a worker busy for `worker_timeout_seconds`; a stop must not wait for it.
    The old pool returned each job's WorkerFailure only at its deadline (here 60 s)."""
    limits = dataclasses.replace(Limits(), worker_timeout_seconds=60.0)
    with WorkerPool(limits, size=2) as pool:
        stop = False

        def inputs():
            nonlocal stop
            yield (None,)
            stop = True  # asked while the first worker is busy and the second is given its job
            yield (None,)

        results = list(pool.map_ordered(hostile_jobs.never_finishes, inputs(), should_stop=lambda: stop))
        assert results == []  # nothing made up for the abandoned jobs: the caller does them again
        assert not [p for p in pool._ctx.active_children() if p not in [w.process for w in pool._idle]]
        assert list(pool.map_ordered(hostile_jobs.square, [(3,)], should_stop=lambda: False)) == [9]
