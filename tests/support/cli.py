"""The one place that knows how tests run the `mailbot` command.

`run_cli(config, *args)` runs the console script's own `main()` in this process, with stdout,
stderr, the environment and logging captured and put back afterwards: the same exit-status mapping
as the installed command, without a Python start-up (SQLAlchemy, Alembic) per call.
`run_process(config, *args)` runs the installed console script as a real process, for the tests
that are about the process itself: signals, kill -9, nothing but JSON on the real stdout, the
machine's time zone; `start_process(config, *args)` starts it and leaves it running (the daemon, a
poll to be killed). No test starts `mailbot` any other way (test_harness checks it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, Iterator

from click.testing import CliRunner


@dataclass(frozen=True)
class Result:
    """What a run of the command left: its exit status and everything it wrote."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict]:
        """stdout as JSON Lines (`ingest --json`, `poll --json`); fails on anything that is not JSON."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def json(self):
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (f"mailbot {' '.join(self.argv)} exited {self.exit_code}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}")


@cache
def _console_main() -> Callable[[], None]:
    """The function the installed `mailbot` script calls (pyproject [project.scripts])."""
    (script,) = entry_points(group="console_scripts", name="mailbot")
    return script.load()


def console_script() -> list[str]:
    """The installed `mailbot` script beside this interpreter (the venv's bin/)."""
    path = Path(sys.executable).parent / "mailbot"
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is missing: install the package first (pip install -e '.[test]')")
    return [str(path)]


def _argv(config: Path | None, args: tuple) -> tuple[str, ...]:
    return tuple((["--config", str(config)] if config is not None else []) + [str(a) for a in args])


def run_cli(config: Path | None, *args, check: bool = True, env: dict[str, str | None] | None = None) -> Result:
    """`mailbot [--config CONFIG] ARGS...` in this process. check=True: a non-zero exit fails the test.

    $MAILBOT_CONFIG is unset unless `env` sets it, so the developer's own never leaks in."""
    argv = _argv(config, args)
    runner = CliRunner()
    saved_argv = sys.argv
    with _logging_put_back(), _umask_put_back(), runner.isolation(env={"MAILBOT_CONFIG": None, **(env or {})}) as (out, err, _):
        sys.argv = ["mailbot", *argv]
        exit_code = 0
        try:
            _console_main()()
        except SystemExit as exc:
            exit_code = _exit_status(exc.code)
        finally:
            sys.argv = saved_argv
            sys.stdout.flush()
            sys.stderr.flush()
        result = Result(argv, exit_code, out.getvalue().decode("utf-8"),
                        err.getvalue().decode("utf-8", errors="replace"))
    if check and result.exit_code != 0:
        raise AssertionError(str(result))
    return result


def run_process(config: Path | None, *args, check: bool = True, timeout: float = 300,
                env: dict[str, str] | None = None) -> Result:
    """The installed console script as its own process (see the module docstring for when)."""
    argv = _argv(config, args)
    proc = subprocess.run(console_script() + list(argv), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUTF8": "1", **(env or {})})
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
    if check and result.exit_code != 0:
        raise AssertionError(str(result))
    return result


def start_process(config: Path | None, *args, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """The installed console script started as its own process and left running; `popen` goes to
    subprocess.Popen (stdout, stderr, text, start_new_session, ...)."""
    return subprocess.Popen(console_script() + list(_argv(config, args)),
                            env={**os.environ, "PYTHONUTF8": "1", **(env or {})}, **popen)


def ingest_json(config: Path, mailbox: str, *files: Path) -> list[dict]:
    """`ingest --mailbox MAILBOX --json FILES`: one result per file (exit 1 only says one failed)."""
    result = run_cli(config, "ingest", "--mailbox", mailbox, "--json", *files, check=False)
    assert result.exit_code in (0, 1), str(result)
    return result.json_lines()


def _exit_status(code) -> int:
    # As the interpreter does for sys.exit(code): None is 0, a message is printed and is 1.
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _umask_put_back() -> Iterator[None]:
    """mailbot's main() sets umask 077 for its process; in the test's process that would make the
    files the fixtures write later (Dovecot's passwd file) unreadable to the servers."""
    saved = os.umask(0)
    os.umask(saved)
    try:
        yield
    finally:
        os.umask(saved)


@contextlib.contextmanager
def _logging_put_back() -> Iterator[None]:
    """Let the command configure logging as it does in its own process, then undo all of it.

    The command calls logging.basicConfig(stream=sys.stderr), which does nothing while the root
    logger has handlers (pytest's own), so they are taken off for the run; what the command adds
    is removed and closed, and every logger's level is put back (the demo quiets the root logger,
    the daemon apscheduler's)."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger()] + [lg for lg in list(manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    saved = {id(lg): (lg, lg.level, list(lg.handlers), lg.disabled, lg.propagate) for lg in loggers}
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    try:
        yield
    finally:
        for logger in [logging.getLogger()] + [lg for lg in list(manager.loggerDict.values())
                                               if isinstance(lg, logging.Logger)]:
            before = saved.get(id(logger))
            kept = before[2] if before else []
            for handler in list(logger.handlers):
                if handler not in kept:
                    logger.removeHandler(handler)
                    handler.close()
            if before is None:
                logger.setLevel(logging.NOTSET)
                continue
            _, level, handlers, disabled, propagate = before
            logger.setLevel(level)
            for handler in handlers:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
            logger.disabled, logger.propagate = disabled, propagate
