"""The web console under test: a database made from the samples, accounts, the app served by
waitress on loopback, and Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import json
import shutil
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import BytecodeCache

from mailbot.config import load_config
from support import database
from support.configs import write_config
from support.installed import missing, require

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SAMPLE_NOW = datetime(2022, 10, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # the samples' month is over
PASSWORDS = {"clerk": "clerk-password-1", "viewer": "viewer-password-1"}


def ingest_samples(config, sessions, clock=lambda: SAMPLE_NOW) -> list[dict]:
    """Every single sample case through the real pipeline, as `mailbot ingest` runs them."""
    from mailbot.ingest.files import ingest_files
    results = []
    by_mailbox: dict[str, list[Path]] = {}
    for case in sorted((SAMPLES / "cases").iterdir()):
        expect = json.loads((case / "expect.json").read_text(encoding="utf-8"))
        by_mailbox.setdefault(expect["mailbox"], []).append(case / "message.eml")
    for mailbox, paths in by_mailbox.items():
        results += [r.as_json() for r in ingest_files(config, sessions, clock, mailbox, paths, [str(p) for p in paths])]
    return results


def add_users(sessions) -> None:
    from mailbot.web.users import add_user
    with sessions.begin() as session:
        add_user(session, "clerk", "clerk", PASSWORDS["clerk"], SAMPLE_NOW)
        add_user(session, "viewer", "viewer", PASSWORDS["viewer"], SAMPLE_NOW)


class _CompiledTemplates(BytecodeCache):
    """A Jinja bytecode cache kept in memory for the session: each test's app would otherwise parse
    and compile the console's templates anew (about 60 ms per test). Jinja checks each entry
    against the template's source, so a template is never run from stale code."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


class Console:
    """A loaded config, its database, and the app (not yet served)."""

    def __init__(self, config_path: Path, clock=lambda: SAMPLE_NOW):
        from mailbot.db.engine import make_sessionmaker
        from mailbot.db.migrate import prepare_database
        from mailbot.web import create_app
        self.config = load_config(config_path)
        self.engine = prepare_database(self.config)
        self.sessions = make_sessionmaker(self.engine)
        self.clock = clock
        self.app = create_app(self.config, self.sessions, clock)
        self.app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES

    def close(self) -> None:
        self.engine.dispose()


def copy_state(template: Path, target: Path) -> Path:
    """A fresh copy of a prepared state directory, with a config pointing at it."""
    shutil.copytree(template / "state", target / "state")
    database.copy(template / "state", target / "state")
    return write_config(target, database_ready=False)  # the copied database, not an empty one


@contextmanager
def served(app):
    """The app on a free loopback port, served by waitress in a thread; yields the base URL."""
    from waitress import wasyncore
    from waitress.server import create_server
    server = create_server(app, host="127.0.0.1", port=0, threads=4, ident="mailbot-test")

    def run():
        try:
            server.run()
        except OSError:  # the listening socket closed under the loop's select(): the server stopped
            pass

    def close_everything():
        # Runs in the server's own loop (a thunk of its trigger), so no socket is closed under its
        # select(). The connections a browser keeps alive are closed too: closing only the
        # listener left the loop serving them, and the join below waited its whole 10 s.
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.trigger.pull_trigger(close_everything)
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()


@contextmanager
def chromium():
    """Debian's Chromium under Playwright; skipped (failed on CI) when either is missing."""
    sync_api = require("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        missing("chromium", "apt-get install chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def follow(page, target) -> None:
    """Click a link or a form's button and return once the page it leads to has loaded.

    Playwright's click waits at most for the next page to start arriving, not for it to be
    there: a locator's count() read right after it (count() does not wait) could see a page not
    yet parsed, which is how a busy CI machine once found no card on the quarantine page. This
    waits for the page's load event. `target` is a selector or a locator."""
    with page.expect_navigation():
        if isinstance(target, str):
            page.click(target)
        else:
            target.click()


def login(page, base: str, role: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", role)
    page.fill("input[name=password]", PASSWORDS[role])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def logged_in(app, role: str):
    """A Flask test client logged in as `role`, and the CSRF token of its pages."""
    client = app.test_client()
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf": token, "name": role, "password": PASSWORDS[role]})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    return client, csrf_of(client.get("/").text)


def csrf_of(html: str) -> str:
    import re
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
