"""`mailbot web user ...` and the [web] section of the config."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.app.cli import cli
from mailbot.config import config_from_dict, load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import WebUser
from mailbot.errors import ConfigError


def run(config_path, *args, input=None):
    return CliRunner().invoke(cli, ["--config", str(config_path), *args], input=input, catch_exceptions=False)


def stored_user(config_path, name):
    config = load_config(config_path)
    engine = prepare_database(config)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalar(select(WebUser).where(WebUser.name == name))
    finally:
        engine.dispose()


def test_user_add_list_passwd_remove(config_path):
    result = run(config_path, "web", "user", "add", "wang", "--role", "clerk", input="long-password-1\nlong-password-1\n")
    assert result.exit_code == 0, result.output
    user = stored_user(config_path, "wang")
    assert user.role == "clerk" and user.password_hash.startswith("$argon2id$")
    assert "long-password-1" not in user.password_hash
    listed = json.loads(run(config_path, "web", "user", "list", "--json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("wang", "clerk")]
    old_hash = user.password_hash
    assert run(config_path, "web", "user", "passwd", "wang", input="other-password-2\nother-password-2\n").exit_code == 0
    assert stored_user(config_path, "wang").password_hash != old_hash
    assert run(config_path, "web", "user", "remove", "wang").exit_code == 0
    assert stored_user(config_path, "wang") is None


def test_the_password_is_asked_twice_and_must_match(config_path):
    result = run(config_path, "web", "user", "add", "li", "--role", "viewer",
                 input="long-password-1\ndifferent-pass-1\nlong-password-1\nlong-password-1\n")
    assert result.exit_code == 0 and "do not match" in result.output.lower()
    assert stored_user(config_path, "li").role == "viewer"


def test_bad_role_short_password_and_taken_name_are_refused(config_path):
    from mailbot.web.users import UserError
    assert run(config_path, "web", "user", "add", "li", "--role", "admin").exit_code == 2
    with pytest.raises(UserError, match="at least"):
        run(config_path, "web", "user", "add", "li", "--role", "viewer", input="short\nshort\n")
    run(config_path, "web", "user", "add", "li", "--role", "viewer", input="long-password-1\nlong-password-1\n")
    with pytest.raises(UserError, match="exists already"):
        run(config_path, "web", "user", "add", "li", "--role", "clerk", input="long-password-1\nlong-password-1\n")


def test_web_section_defaults_and_keys(tmp_path):
    base = {"mailbox": [{"name": "a", "address": "a@example.test", "levels": ["primary"], "maildir": "m",
                         "outbox_dir": "o"}]}
    config = config_from_dict(base, tmp_path)
    assert (config.web.listen, config.web.https, config.web.session_secret_file) == ("127.0.0.1:8080", False, "")
    config = config_from_dict({**base, "web": {"listen": "0.0.0.0:9000", "https": True}}, tmp_path)
    assert config.web.listen == "0.0.0.0:9000" and config.web.https is True
    with pytest.raises(ConfigError, match="web.port is not a known key"):
        config_from_dict({**base, "web": {"port": 1}}, tmp_path)
    with pytest.raises(ConfigError, match="web.https must be bool"):
        config_from_dict({**base, "web": {"https": "yes"}}, tmp_path)


def test_listen_address_and_session_secret(tmp_path):
    from mailbot.web.security import SECRET_NAME, session_secret
    from mailbot.web.server import parse_listen
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:8081") == ("::1", 8081)
    for bad in ("8080", "localhost:", "host:99999", ":80"):
        with pytest.raises(ConfigError, match="web.listen"):
            parse_listen(bad)
    base = {"general": {"state_dir": str(tmp_path / "state")},
            "mailbox": [{"name": "a", "address": "a@example.test", "levels": ["primary"], "maildir": "m",
                         "outbox_dir": "o"}]}
    config = config_from_dict(base, tmp_path)
    first = session_secret(config)
    assert len(first) >= 32 and session_secret(config) == first  # generated once, then kept
    assert (tmp_path / "state" / SECRET_NAME).stat().st_mode & 0o077 == 0
    (tmp_path / "given.key").write_text("x" * 40)
    config = config_from_dict({**base, "web": {"session_secret_file": str(tmp_path / "given.key")}}, tmp_path)
    assert session_secret(config) == b"x" * 40
    config = config_from_dict({**base, "web": {"session_secret_file": str(tmp_path / "missing.key")}}, tmp_path)
    with pytest.raises(ConfigError, match="web.session_secret_file"):
        session_secret(config)


def test_web_help_has_an_example():
    result = CliRunner().invoke(cli, ["web", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "user" in result.output


def test_mailbot_web_serves_the_console_until_stopped(config_path):
    import signal
    import subprocess
    import time
    import urllib.request
    from support.cli import start_process
    from support.loopback import free_port
    port = free_port()
    proc = start_process(config_path, "web", "--listen", f"127.0.0.1:{port}", stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
                    page = (response.status, response.headers["Content-Security-Policy"], response.read().decode())
            except OSError:
                time.sleep(0.2)
        assert page is not None, proc.stderr.read().decode() if proc.poll() is not None else "no answer"
        status, csp, html = page
        assert status == 200 and "default-src 'none'" in csp and "请登录" in html
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
