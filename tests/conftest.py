"""The suite's harness: the mail-server fixtures as a plugin, one migrated database per session,
and under CI=true no test may skip.

Test modules request fixtures by name and import helpers from tests/support/ (configs, cli,
database, ...) or the builders; never from conftest.py or from another test module.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import database
from support.installed import in_ci
from support.configs import write_config

# The real Dovecot / aiosmtpd / silent-server fixtures (tests/servers.py): requested by name.
pytest_plugins = ["servers"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure, whatever raised it (an importorskip, a skip marker)."""
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI=true, where nothing may skip: {reason}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped at import (pytest.importorskip at module level)."""
    report = yield
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped under CI=true, where nothing may skip: {report.longrepr}"
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` starts two workers per core, not one: about half of the suite's time is spent
    waiting (for a server to answer, a child process to stop, a deadline to pass), and a second
    worker per core runs another test meanwhile. Measured on 2 cores: the same CPU time (about 147
    CPU-s) in 125 s instead of 158 s. PYTEST_XDIST_AUTO_NUM_WORKERS still decides when it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    return 2 * len(os.sched_getaffinity(0))


def pytest_addoption(parser):
    parser.addoption("--database", choices=("sqlite", "postgresql"), default="sqlite",
                     help="the backend of every test's database: SQLite files (default), or one private "
                          "PostgreSQL server for the session (CI runs `-m database` on both; see .ci/run)")


def pytest_configure(config):
    config.addinivalue_line("markers", "database: the test uses mailbot's database (run on both backends)")


def pytest_collection_modifyitems(config, items):
    """Mark the tests that touch the database (support.backends decides, by module); with
    --database=postgresql only those run (the others have nothing to do with the backend, and the
    SQLite-only ones would fail for a reason that is no defect)."""
    from support.backends import touches_database
    for item in items:
        if touches_database(item):
            item.add_marker(pytest.mark.database)
    if config.getoption("--database") == "postgresql":
        others = [item for item in items if item.get_closest_marker("database") is None]
        if others:
            config.hook.pytest_deselected(items=others)
            items[:] = [item for item in items if item.get_closest_marker("database") is not None]


@pytest.fixture(scope="session", autouse=True)
def database_template(request, tmp_path_factory) -> Path:
    """The directory of this session's migrated SQLite template (made on first use); with
    --database=postgresql, the session's PostgreSQL server is started and its template migrated."""
    directory = tmp_path_factory.mktemp("database-template")
    database.use_directory(directory)
    if request.config.getoption("--database") == "postgresql":
        server = request.getfixturevalue("postgres")
        database.use_postgres(server)
    return directory


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashes():
    """The accounts this process makes are hashed with argon2id at its lowest cost: the product's
    cost (argon2-cffi's defaults) is about 0.15 CPU-s per login, paid by every test that logs in,
    and no test is about that cost. The hashes are still argon2id, verified by the product's own
    code; an unknown name is still checked against the product's full-cost dummy hash, and the
    mailbot processes the tests start use the product's hasher unchanged."""
    from argon2 import PasswordHasher
    from mailbot.web import users
    product = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    users._hasher = product


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture(scope="session")
def web_template(tmp_path_factory) -> Path:
    """A state directory holding the samples ingested and the two web accounts, made once."""
    from support.web import Console, add_users, ingest_samples
    root = tmp_path_factory.mktemp("web-template")
    console = Console(write_config(root))
    ingest_samples(console.config, console.sessions)
    add_users(console.sessions)
    console.close()
    return root


@pytest.fixture
def console(web_template, tmp_path):
    """The web console over a fresh copy of the sample database."""
    from support.web import Console, copy_state
    c = Console(copy_state(web_template, tmp_path))
    yield c
    c.close()


@pytest.fixture(scope="session")
def zygote():
    """A process that has imported mailbot and forks a child per start (support/zygote.py): for the
    tests that start and kill `mailbot` many times."""
    from support.zygote import Zygote
    started = Zygote()
    yield started
    started.close()


@pytest.fixture(scope="session")
def chromium_browser():
    """Debian's Chromium under Playwright, started once per worker: a launch costs about a
    CPU-second, and the browser modules each started their own."""
    from support.web import chromium
    with chromium() as started:
        yield started


@pytest.fixture
def browser(chromium_browser):
    """The session's Chromium for one test: each page it opens is a context of its own (cookies are
    not shared), and every context is closed after the test, so no test sees another's pages."""
    yield chromium_browser
    for context in chromium_browser.contexts:
        context.close()
