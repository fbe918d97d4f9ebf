"""Overall deadlines for server operations (issue 11 point 4).

A socket timeout bounds one read; a peer that sends one byte just before each timeout keeps a
client waiting for ever. A `Deadline` bounds a whole operation (connect with its greeting, login,
one command, one send): when the time is up a timer thread shuts the connection's socket down,
which wakes the blocked read at once, and the operation raises `DeadlineExceeded`. The connection
is then dead; the caller drops it.

An operation also never runs past the overall end of what it belongs to (a whole poll), so a poll
returns by its deadline however many commands it has left.

    deadline = Deadline(per_operation=60, overall_end=time.monotonic() + 600)
    with deadline.limit("LOGIN on imap.163.com"):
        client.login(...)

A stop (SIGTERM to the daemon) abandons at once what can be done again without loss: a Deadline made
with `abandon_on_stop=True` is cut by `abandon_for_stop()`. That is an IMAP session (reading is done
again at the next poll), so a poll stuck on a trickling server does not hold the stop for the rest of
its poll deadline, and an SMTP connection until it is made (greeting, EHLO, STARTTLS, LOGIN: nothing
sent yet). A send is never cut that way: cut after the server took the message, it would be sent
again (mailbot.outbound.sending). So the SMTP sender calls `keep_on_stop()` once connected, which a
stop arriving at the same moment cannot overtake: one of the two wins, under the Deadline's lock.

The socket to cut comes from `attach` (called by the socket factories below as soon as the TCP
connection exists, before TLS and the greeting) or from a getter (after STARTTLS wraps it anew).

The timers are one thread for the whole process (`_Watchdog`), not a thread per operation: an
empty poll runs a dozen operations, and starting a thread for each was a sizeable part of its CPU.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
import weakref
from typing import Callable, Iterator

from mailbot.errors import DeadlineExceeded

__all__ = ["Deadline", "DeadlineExceeded", "abandon_for_stop", "connect_tcp"]

_abandonable: "weakref.WeakSet[Deadline]" = weakref.WeakSet()  # live Deadlines a stop may cut
_abandonable_lock = threading.Lock()


def abandon_for_stop() -> int:
    """Cut every live Deadline made with `abandon_on_stop` (the daemon is stopping); their
    operations raise DeadlineExceeded at once. Returns how many were cut."""
    with _abandonable_lock:
        live = list(_abandonable)
    for deadline in live:
        deadline.abandon()
    return len(live)


class _Watchdog:
    """Calls each registered callback at its time (time.monotonic), from one daemon thread that
    sleeps until the soonest. Cancelling only marks an entry; it is dropped when its time comes.
    After a fork the child starts its own thread when it first needs one."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[list] = []  # [when, seq, callback, active]
        self._seq = itertools.count()
        self._wake_at = float("inf")
        self._pid: int | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> list:
        entry = [when, next(self._seq), callback, True]
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: the thread is not here
                self._heap, self._wake_at, self._pid = [], float("inf"), os.getpid()
                threading.Thread(target=self._run, name="mailbot-deadlines", daemon=True).start()
            heapq.heappush(self._heap, entry)
            if when < self._wake_at:
                self._cond.notify()
        return entry

    @staticmethod
    def cancel(entry: list) -> None:
        entry[3] = False
        entry[2] = None  # the Deadline is not kept alive (nor in the abandonable set) until its time

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and not self._heap[0][3]:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if not self._heap or self._heap[0][0] > now:
                    self._wake_at = self._heap[0][0] if self._heap else float("inf")
                    self._cond.wait(None if not self._heap else self._wake_at - now)
                    continue
                entry = heapq.heappop(self._heap)
            callback = entry[2]  # read before the flag: a cancel clears the flag first, then this
            if entry[3] and callback is not None:
                try:
                    callback()
                except Exception:  # noqa: BLE001 - one failed cut must not stop every other deadline
                    logging.getLogger(__name__).exception("cutting a connection at its deadline failed")


_WATCHDOG = _Watchdog()


class Deadline:
    def __init__(self, per_operation: float, overall_end: float | None = None,
                 clock: Callable[[], float] = time.monotonic, abandon_on_stop: bool = False):
        self.per_operation = per_operation
        self.overall_end = overall_end  # in `clock` time; None: no overall limit
        self.clock = clock
        self._socket: socket.socket | None = None
        self._socket_getter: Callable[[], socket.socket | None] | None = None
        self._lock = threading.Lock()
        self.expired = False  # once set, the connection has been cut
        self.abandoned = False  # cut because mailbot is stopping, not because time ran out
        self._kept = False  # `keep_on_stop` was called: a stop no longer cuts it
        if abandon_on_stop:
            with _abandonable_lock:
                _abandonable.add(self)

    def abandon(self) -> None:
        """Cut the connection now (mailbot is stopping); what runs, and what comes, raises. Nothing
        happens once `keep_on_stop` was called."""
        with self._lock:
            if self._kept:
                return
            self.abandoned = True
        self._expire(force=True)

    def keep_on_stop(self) -> bool:
        """From now on a stop does not cut this connection (it is sending). False if a stop has
        already cut it: the caller must not use it."""
        with self._lock:
            if self.abandoned:
                return False
            self._kept = True
        with _abandonable_lock:
            _abandonable.discard(self)
        return True

    # -- what to cut ------------------------------------------------------------------------------
    def attach(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socket = sock
            cut_now = self.expired
        if cut_now:
            _cut(sock)
        return sock

    def follow(self, getter: Callable[[], socket.socket | None]) -> None:
        """Cut whatever socket `getter` returns at expiry (a library that replaces its socket)."""
        self._socket_getter = getter

    def remaining(self, seconds: float | None = None) -> float:
        """Seconds the next operation may take: its own limit (default `per_operation`), cut to
        what is left of the overall end."""
        seconds = self.per_operation if seconds is None else seconds
        if self.overall_end is not None:
            seconds = min(seconds, self.overall_end - self.clock())
        return seconds

    # -- one operation ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def limit(self, what: str, seconds: float | None = None, finished_counts: bool = False) -> Iterator[None]:
        """Run the block as one operation; `seconds` for one that may legitimately take longer
        than `per_operation` (an IDLE wait). `finished_counts`: a block that returned stands even
        if the timer cut the connection just after (a send whose 250 is in); check `expired`."""
        seconds = self.remaining(seconds)
        if self.expired or seconds <= 0:
            self._expire(force=True)
            raise DeadlineExceeded(f"{what}: abandoned, mailbot is stopping" if self.abandoned
                                   else f"{what}: the overall deadline has passed")
        state = {"done": False}
        timer = _WATCHDOG.call_at(time.monotonic() + seconds, lambda: self._expire_unless(state))
        try:
            yield
        except BaseException as exc:
            with self._lock:
                state["done"] = True
            _WATCHDOG.cancel(timer)
            if self.abandoned:
                raise DeadlineExceeded(f"{what}: abandoned, mailbot is stopping; connection dropped") from exc
            if self.expired:
                raise DeadlineExceeded(
                    f"{what}: not finished within its deadline of {seconds:g} s; connection dropped") from exc
            raise
        with self._lock:
            state["done"] = True
        _WATCHDOG.cancel(timer)
        if self.abandoned:
            raise DeadlineExceeded(f"{what}: abandoned, mailbot is stopping; connection dropped")
        if self.expired and not finished_counts:  # the timer won just as the answer came: the socket is cut
            raise DeadlineExceeded(
                f"{what}: finished just as its deadline of {seconds:g} s passed; connection dropped")

    def _expire_unless(self, state: dict) -> None:
        with self._lock:
            if state["done"]:
                return
            self.expired = True
        self._cut_current()

    def _expire(self, force: bool) -> None:
        with self._lock:
            self.expired = self.expired or force
        self._cut_current()

    def _cut_current(self) -> None:
        sock = None
        if self._socket_getter is not None:
            try:
                sock = self._socket_getter()
            except Exception:  # noqa: BLE001 - the library's state is unknown; fall back below
                sock = None
        for candidate in (sock, self._socket):
            if candidate is not None:
                _cut(candidate)


def _cut(sock: socket.socket) -> None:
    """Shut the connection down under a reader blocked in another thread. The plain socket method
    is used even on a TLS socket: it acts on the descriptor and leaves the TLS state to the reader."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected


def connect_tcp(host: str, port: int, timeout: float | None, deadline: Deadline | None,
                source_address=None) -> socket.socket:
    """socket.create_connection, bounded by the deadline as well, and attached to it at once."""
    if deadline is not None:
        budget = deadline.remaining()
        if budget <= 0:
            raise DeadlineExceeded(f"connect to {host}:{port}: the overall deadline has passed")
        timeout = budget if timeout is None else min(timeout, budget)
    sock = socket.create_connection((host, port), timeout, source_address)
    if deadline is not None:
        deadline.attach(sock)
    return sock
