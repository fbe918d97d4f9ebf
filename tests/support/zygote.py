"""Processes forked from one that has already imported mailbot (a "zygote"), for the tests that
start `mailbot` again and again only to kill it: each start then costs a fork, not a Python
start-up with SQLAlchemy and Alembic (0.5-2 s). The child is a real process of its own (its own
session and process group, its own database connections and worker processes), so SIGKILL and
SIGTERM reach it exactly as they reach the installed script; `mailbot.app.cli.main` runs in it as
the console script runs it.

`Zygote()` starts the zygote; `.start(config, *args, env=...)` and `.run_code(code, *args)` return
a `Forked` with the subset of subprocess.Popen the tests use: pid, poll(), wait(timeout),
send_signal(), returncode. The zygote itself never runs mailbot code: it imports, forks and reaps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

# Runs in the zygote: import what every command imports, then serve requests on stdin (one JSON
# object a line) and report each child's pid and, when it ends, its exit status on stdout.
_ZYGOTE = r"""
import json, os, select, signal, sys
import mailbot.app.cli, mailbot.db.migrate, mailbot.ingest.pipeline, mailbot.outbound.sending, alembic.command
from mailbot.app.cli import main

requests, reports = sys.stdin.buffer, sys.stdout
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
reports.write(json.dumps({"ready": os.getpid()}) + "\n"); reports.flush()

def child(request, in_session):
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.close(wake_r); os.close(wake_w)
    os.setsid()
    os.close(in_session)  # the zygote reports the pid only now: its process group exists to be signalled
    for fd, name in ((0, os.devnull), (1, request["stdout"]), (2, request["stderr"])):
        target = os.open(name, os.O_RDWR if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(target, fd); os.close(target)
    os.environ.clear(); os.environ.update(request["env"])
    code = 0
    try:
        if "code" in request:
            sys.argv = ["-c", *request["args"]]
            exec(compile(request["code"], "<zygote>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = ["mailbot", *request["args"]]
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback; traceback.print_exc(); code = 1
    finally:
        sys.stdout.flush(); sys.stderr.flush()
    os._exit(code)

def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reports.write(json.dumps({"pid": pid, "status": os.waitstatus_to_exitcode(status)}) + "\n")
        reports.flush()

buffered = b""
while True:
    try:
        readable, _, _ = select.select([requests, wake_r], [], [])
    except InterruptedError:
        continue
    if wake_r in readable:
        os.read(wake_r, 4096)
        reap()
    if requests in readable:
        chunk = os.read(requests.fileno(), 65536)
        if not chunk:
            break
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            request = json.loads(line)
            session_r, session_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(session_r)
                child(request, session_w)
            os.close(session_w)
            os.read(session_r, 1)  # end of file once the child is in its own session (or has died)
            os.close(session_r)
            reports.write(json.dumps({"started": request["id"], "pid": pid}) + "\n"); reports.flush()
    reap()
"""


class Forked:
    """One child of the zygote, used like a subprocess.Popen."""

    def __init__(self, zygote: "Zygote", pid: int, argv: list[str]):
        self._zygote, self.pid, self.args = zygote, pid, argv
        self.returncode: int | None = None

    def poll(self) -> int | None:
        with self._zygote._changed:
            self.returncode = self._zygote._status.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        with self._zygote._changed:
            if not self._zygote._changed.wait_for(lambda: self.pid in self._zygote._status, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = self._zygote._status[self.pid]
        return self.returncode

    def send_signal(self, signum: int) -> bool:
        """True when the signal was sent; False when the child had ended (its exit may not have been
        reported yet: the zygote reaps it first)."""
        try:
            if self.poll() is None:
                os.kill(self.pid, signum)
                return True
        except ProcessLookupError:
            pass
        return False

    def kill_group(self, signum: int) -> bool:
        """The signal to the child's whole process group (it and its worker processes); True when
        it was sent, False when the group had already ended."""
        try:
            if self.poll() is None:
                os.killpg(self.pid, signum)
                return True
        except ProcessLookupError:
            pass
        return False


class Zygote:
    def __init__(self):
        self._proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      env={**os.environ, "PYTHONUTF8": "1"})
        self._changed = threading.Condition()
        self._status: dict[int, int] = {}
        self._started: dict[int, int] = {}
        self._next = 0
        ready = json.loads(self._proc.stdout.readline() or "{}")
        if "ready" not in ready:
            raise RuntimeError(f"the zygote did not start (exit {self._proc.wait()})")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            report = json.loads(line)
            with self._changed:
                if "started" in report:
                    self._started[report["started"]] = report["pid"]
                else:
                    self._status[report["pid"]] = report["status"]
                self._changed.notify_all()

    def _fork(self, request: dict, env: dict[str, str] | None, stdout: Path | str, stderr: Path | str) -> int:
        with self._changed:
            self._next += 1
            number = self._next
        request = {**request, "id": number, "env": {**os.environ, "PYTHONUTF8": "1", **(env or {})},
                   "stdout": str(stdout), "stderr": str(stderr)}
        self._proc.stdin.write((json.dumps(request) + "\n").encode())
        self._proc.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: number in self._started, 60):
                raise RuntimeError("the zygote did not fork")
            return self._started.pop(number)

    def start(self, config: Path | None, *args, env: dict[str, str] | None = None, stdout: Path | str = os.devnull,
              stderr: Path | str = os.devnull) -> Forked:
        """`mailbot [--config CONFIG] ARGS...` in a forked child; its output to the files named."""
        argv = (["--config", str(config)] if config is not None else []) + [str(a) for a in args]
        return Forked(self, self._fork({"args": argv}, env, stdout, stderr), argv)

    def run_code(self, code: str, *args, env: dict[str, str] | None = None, stdout: Path | str = os.devnull,
                 stderr: Path | str = os.devnull) -> Forked:
        """Python code (as with `python -c CODE ARGS...`) in a forked child."""
        argv = [str(a) for a in args]
        return Forked(self, self._fork({"code": code, "args": argv}, env, stdout, stderr), argv)

    def close(self) -> None:
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
