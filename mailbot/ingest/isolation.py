"""Run the parsing of untrusted mail in worker processes with a memory limit and a timeout.

A hostile message or attachment (a decompression bomb that slipped past the checks, a file that
makes a reader loop) can then only kill or stall a worker, never the daemon. The pool is reused
across messages; a worker that died, failed or timed out is replaced. `map_ordered` keeps the
workers busy while the caller stores the previous results: one worker per core (two at most) and
one more, so that a worker is still parsing while another waits for the caller to take its result.
The workers run at a lower priority (WORKER_NICENESS): the caller, which archives, decides and
commits each message in order, is the serial path, and a worker must not take its core from it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.forkserver
import os
import resource
import time
import traceback
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator

from mailbot.config import Limits
from mailbot.errors import UnreadableFile, WorkerFailure
from mailbot.rules.model import Attachment, RawTable

log = logging.getLogger(__name__)

# Measured on 2 cores over 1,000 messages (bench/README.md, "Ingest", third round): 2 workers
# 249 messages/s; 2 niced 252/s; 3 workers 255/s; 3 niced 282/s.
WORKER_NICENESS = 5
# How often a caller that can be stopped looks at its stop while the workers parse: a slow table
# may take `worker_timeout_seconds` (30 s), and a stop must not wait for it.
STOP_CHECK_SECONDS = 0.2


@dataclass
class Extracted:
    """What one attachment gave: its tables, or why it could not be read."""

    attachment_name: str | None
    tables: list[RawTable]
    unreadable: UnreadableFile | None = None


def extract_attachment(att: Attachment, limits: Limits, budget_seconds: float | None = None,
                       sniffed: str | None = None) -> Extracted:
    """Read one attachment and locate its tables. Runs inside a worker (or inline in tests).
    Past `budget_seconds` the file is refused as too slow to read, so the other attachments of
    the message are still read and the message is decided. `sniffed`: its format, if known."""
    from mailbot.tables.guards import OverTime, refusal, time_budget
    from mailbot.tables.locate import find_tables
    from mailbot.tables.readers import read_attachment

    try:
        with time_budget(budget_seconds):
            tables: list[RawTable] = []
            for table_file in read_attachment(att, limits, sniffed):
                tables.extend(find_tables(table_file))
    except UnreadableFile as exc:
        return Extracted(att.filename, [], exc)
    except OverTime as exc:
        log.warning("attachment %r: %s", att.filename, exc)
        return Extracted(att.filename, [], refusal("too_slow", att.filename, str(exc)))
    return Extracted(att.filename, tables)


def _worker_main(conn: Connection, memory_mb: int) -> None:
    os.nice(WORKER_NICENESS)
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        function, args = job
        try:
            result = ("ok", function(*args))
        except MemoryError:
            result = ("error", "MemoryError: the input needs more memory than a table file can")
        except Exception:  # noqa: BLE001 - reported to the parent, which decides the outcome
            result = ("error", traceback.format_exc(limit=8))
        try:
            conn.send(result)
        except Exception:  # noqa: BLE001 - e.g. an unpicklable result
            conn.send(("error", traceback.format_exc(limit=4)))


WORKER_MODULES = ["mailbot.ingest.analysis", "mailbot.tables.readers", "mailbot.tables.locate"]


def worker_context():
    """The forkserver context the workers start from: a clean process, never a fork of a threaded
    daemon. What they run is imported there once, not by each worker on its first job (the readers
    are imported lazily by extract_attachment, so the daemon itself never loads them). The server
    starts with the first worker, or before it with `start_forkserver`."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_MODULES)
    return ctx


def start_forkserver() -> None:
    """Start the workers' server now; it returns at once and the server imports its modules while
    the caller goes on (`ingest`, which has work for it, calls this before it imports the pipeline:
    the two start-ups overlap on two cores, about 0.1 s of a run's wall time)."""
    worker_context()
    multiprocessing.forkserver.ensure_running()


class _Worker:
    def __init__(self, ctx, memory_mb: int):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, memory_mb), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.join(5)
        finally:
            self.conn.close()


@dataclass
class _Job:
    index: int
    label: str
    worker: _Worker
    deadline: float


class WorkerPool:
    """Reused worker processes running module-level functions on untrusted input."""

    def __init__(self, limits: Limits, size: int | None = None):
        self.limits = limits
        self.size = size or min(2, os.cpu_count() or 1) + 1
        self._ctx = worker_context()
        self._idle: list[_Worker] = []

    def _start(self, function: Callable, args: tuple) -> _Worker:
        worker = self._idle.pop() if self._idle else _Worker(self._ctx, self.limits.worker_memory_mb)
        try:
            worker.conn.send((function, args))
        except (OSError, EOFError):  # it died while idle
            worker.kill()
            worker = _Worker(self._ctx, self.limits.worker_memory_mb)
            worker.conn.send((function, args))
        return worker

    def _finish(self, job: _Job, ready: bool) -> object:
        """The job's result, or a WorkerFailure; the worker goes back to the pool only if healthy."""
        worker = job.worker
        if not ready:
            worker.kill()
            return WorkerFailure(f"{job.label} took longer than {self.limits.worker_timeout_seconds:g} s")
        try:
            status, payload = worker.conn.recv()
        except (EOFError, OSError):
            worker.kill()
            return WorkerFailure(f"the worker died on {job.label} (exit code {worker.process.exitcode}; "
                                 f"memory limit {self.limits.worker_memory_mb} MB?)")
        if status == "ok":
            self._idle.append(worker)
            return payload
        worker.kill()  # after a MemoryError or a bug, start clean
        return WorkerFailure(f"{job.label}: {payload}")

    def map_ordered(self, function: Callable, args_iter: Iterable[tuple], labels: Iterable[str] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> Iterator[object]:
        """function(*args) for each args, results (or WorkerFailure) in input order; None args
        give None. Up to `size` jobs run at once, and the next inputs are taken from `args_iter`
        only as workers free up and results are consumed. Once `should_stop()` says so, the
        results stop at once: the jobs still running are abandoned (their workers killed), so the
        caller must be able to do them again later (the pipeline's are archived and unsettled)."""
        args_iter = iter(args_iter)
        labels = iter(labels) if labels is not None else None
        running: deque[_Job] = deque()
        done: dict[int, object] = {}
        try:
            yield from self._ordered(function, args_iter, labels, running, done, should_stop)
        finally:
            # The caller stopped early (an error, a shutdown): jobs still running would leave
            # their workers busy forever, so they are killed and replaced when next needed.
            for job in running:
                job.worker.kill()
            running.clear()

    def _ordered(self, function, args_iter, labels, running, done, should_stop) -> Iterator[object]:
        next_index = next_yield = 0
        exhausted = False
        while True:
            # At most `size` jobs running and 2 x `size` results held: memory stays bounded even
            # when one slow message holds up the order.
            while not exhausted and len(running) < self.size and len(running) + len(done) < 2 * self.size:
                try:
                    args = next(args_iter)
                except StopIteration:
                    exhausted = True
                    break
                label = next(labels) if labels is not None else f"job {next_index}"
                if args is None:  # nothing to do for this item: keep its place in the order
                    done[next_index] = None
                    next_index += 1
                    continue
                worker = self._start(function, args)
                running.append(_Job(next_index, label, worker,
                                    time.monotonic() + self.limits.worker_timeout_seconds))
                next_index += 1
            while next_yield in done:
                yield done.pop(next_yield)
                next_yield += 1
            if not running:
                if exhausted:
                    return
                continue
            timeout = max(0.0, min(job.deadline for job in running) - time.monotonic())
            if should_stop is not None:
                timeout = min(timeout, STOP_CHECK_SECONDS)
            ready = set(wait([job.worker.conn for job in running], timeout=timeout))
            if should_stop is not None and should_stop():
                log.info("stop asked: %d job(s) still running abandoned, to be done again", len(running))
                return
            now = time.monotonic()
            for job in list(running):
                if job.worker.conn in ready or now >= job.deadline:
                    running.remove(job)
                    done[job.index] = self._finish(job, job.worker.conn in ready)

    def extract_many(self, attachments: list[Attachment]) -> list[Extracted | WorkerFailure]:
        """Read several attachments in parallel: one result per attachment, in order."""
        return list(self.map_ordered(extract_attachment, ((att, self.limits) for att in attachments),
                                     (repr(att.filename) for att in attachments)))

    def close(self) -> None:
        for worker in self._idle:
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.process.join(1)
            if worker.process.is_alive():
                worker.kill()
        self._idle.clear()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InlineRunner:
    """The same interface without processes: for unit tests and for debugging one file."""

    def __init__(self, limits: Limits):
        self.limits = limits

    def map_ordered(self, function: Callable, args_iter: Iterable[tuple], labels=None,
                    should_stop: Callable[[], bool] | None = None) -> Iterator[object]:
        for args in args_iter:
            if should_stop is not None and should_stop():
                return
            if args is None:
                yield None
                continue
            try:
                yield function(*args)
            except Exception as exc:  # noqa: BLE001
                yield WorkerFailure(f"{type(exc).__name__}: {exc}")

    def extract_many(self, attachments: list[Attachment]) -> list[Extracted | WorkerFailure]:
        return list(self.map_ordered(extract_attachment, ((att, self.limits) for att in attachments)))

    def close(self) -> None:
        pass
