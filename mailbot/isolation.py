"""Read table files in worker processes with a memory limit and a timeout.

A hostile attachment (a decompression bomb that slipped past the checks, a file that makes a
reader loop) can then only kill or stall a worker, never the daemon. The pool is reused across
messages; a worker that died or timed out is replaced. Two workers use both cores.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import resource
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from mailbot.config import Limits
from mailbot.errors import UnreadableFile, WorkerFailure
from mailbot.model import Attachment, RawTable

log = logging.getLogger(__name__)


@dataclass
class Extracted:
    """What one attachment gave: its tables, or why it could not be read."""

    attachment_name: str | None
    tables: list[RawTable]
    unreadable: UnreadableFile | None = None


def extract_attachment(att: Attachment, limits: Limits) -> Extracted:
    """Read one attachment and locate its tables. Runs inside a worker (or inline in tests)."""
    from mailbot.tables.locate import find_tables
    from mailbot.tables.readers import read_attachment

    try:
        files = read_attachment(att, limits)
    except UnreadableFile as exc:
        return Extracted(att.filename, [], exc)
    tables: list[RawTable] = []
    for table_file in files:
        tables.extend(find_tables(table_file))
    return Extracted(att.filename, tables)


def _worker_main(conn: Connection, memory_mb: int) -> None:
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
            result = ("error", "MemoryError: the file needs more memory than a table file can")
        except Exception:  # noqa: BLE001 - reported to the parent, which decides the outcome
            result = ("error", traceback.format_exc(limit=8))
        try:
            conn.send(result)
        except Exception:  # noqa: BLE001 - e.g. an unpicklable result
            conn.send(("error", traceback.format_exc(limit=4)))


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


class TableReaderPool:
    """Reused worker processes; `extract_many` reads several attachments in parallel."""

    def __init__(self, limits: Limits, size: int | None = None, job=extract_attachment):
        self.limits = limits
        self.job = job  # a module-level function (attachment, limits) -> Extracted
        self.size = size or min(2, os.cpu_count() or 1)
        # forkserver: workers start from a clean process, never from a fork of a threaded daemon.
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(["mailbot.tables.readers", "mailbot.tables.locate"])
        self._idle: list[_Worker] = []

    def _take(self) -> _Worker:
        return self._idle.pop() if self._idle else _Worker(self._ctx, self.limits.worker_memory_mb)

    def extract_many(self, attachments: list[Attachment]) -> list[Extracted | WorkerFailure]:
        """One result per attachment, in order. A worker that crashes, runs out of memory or
        exceeds the timeout gives a WorkerFailure for that attachment and is replaced."""
        results: list[Extracted | WorkerFailure | None] = [None] * len(attachments)
        pending = list(enumerate(attachments))
        running: dict[Connection, tuple[int, _Worker]] = {}
        deadline: dict[Connection, float] = {}
        while pending or running:
            while pending and len(running) < self.size:
                index, att = pending.pop(0)
                worker = self._take()
                try:
                    worker.conn.send((self.job, (att, self.limits)))
                except (OSError, EOFError):
                    worker.kill()
                    worker = _Worker(self._ctx, self.limits.worker_memory_mb)
                    worker.conn.send((self.job, (att, self.limits)))
                running[worker.conn] = (index, worker)
                deadline[worker.conn] = time.monotonic() + self.limits.worker_timeout_seconds
            timeout = max(0.0, min(deadline[c] for c in running) - time.monotonic())
            ready = wait(list(running), timeout=timeout)
            now = time.monotonic()
            for conn in list(running):
                index, worker = running[conn]
                if conn in ready:
                    try:
                        status, payload = conn.recv()
                    except (EOFError, OSError):
                        results[index] = WorkerFailure(
                            f"the table reader died on {attachments[index].filename!r} "
                            f"(exit code {worker.process.exitcode}; memory limit {self.limits.worker_memory_mb} MB?)")
                        worker.kill()
                    else:
                        results[index] = payload if status == "ok" else WorkerFailure(payload)
                        if status == "ok":
                            self._idle.append(worker)
                        else:  # after a MemoryError or a bug, start clean
                            worker.kill()
                elif now >= deadline[conn]:
                    results[index] = WorkerFailure(
                        f"reading {attachments[index].filename!r} took longer than "
                        f"{self.limits.worker_timeout_seconds:g} s")
                    worker.kill()
                else:
                    continue
                del running[conn]
                del deadline[conn]
        return results  # type: ignore[return-value]

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

    def __enter__(self) -> "TableReaderPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InlineReader:
    """The same interface without processes: for unit tests and for debugging one file."""

    def __init__(self, limits: Limits):
        self.limits = limits

    def extract_many(self, attachments: list[Attachment]) -> list[Extracted | WorkerFailure]:
        out: list[Extracted | WorkerFailure] = []
        for att in attachments:
            try:
                out.append(extract_attachment(att, self.limits))
            except Exception as exc:  # noqa: BLE001
                out.append(WorkerFailure(f"{type(exc).__name__}: {exc}"))
        return out

    def close(self) -> None:
        pass
