"""general.database_url for PostgreSQL (issue 14): psycopg 3 URLs, the password from a credential
or the environment and never inline, and a clear exit 2 when it does not resolve."""

from __future__ import annotations

import pytest
from support.cli import run_cli
from support.configs import write_config
from support.shared_db import on_sqlite

from mailbot.config import load_config
from mailbot.errors import ConfigError
from mailbot.db.migrate import HEAD


def _with_general(config_path, *lines: str):
    on_sqlite(config_path)  # whatever --database says, these lines name the database
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace("[general]\n", "[general]\n" + "".join(f"{line}\n" for line in lines), 1),
                           encoding="utf-8")
    return config_path


@pytest.mark.parametrize("url, words", [
    ("postgresql+psycopg://mailbot:secret@db.example/mailbot", ["database_password_file", "never written"]),
    ("postgresql://mailbot@db.example/mailbot", ["psycopg 3", "postgresql+psycopg://"]),
    ("mysql://mailbot@db.example/mailbot", ["sqlite:///", "postgresql+psycopg://"]),
    ("postgresql+psycopg://mailbot@db.example", ["names no database"]),
])
def test_bad_database_urls_are_refused_naming_the_key_and_the_fix(tmp_path, url, words):
    path = _with_general(write_config(tmp_path, database_ready=False), f'database_url = "{url}"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "general.database_url" in str(caught.value)
    assert all(word in str(caught.value) for word in words), str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_password_comes_from_the_environment_or_a_credential(tmp_path, postgres, monkeypatch):
    name = postgres.new_database("config_password", template="template0")
    base = write_config(tmp_path, database_ready=False).read_text(encoding="utf-8")

    def configured(*lines: str):
        path = tmp_path / "config.toml"
        path.write_text(base, encoding="utf-8")
        return _with_general(path, f'database_url = "{postgres.url(name)}"', *lines)

    unset = configured('database_password_env = "MAILBOT_TEST_DB_PASSWORD"')
    monkeypatch.delenv("MAILBOT_TEST_DB_PASSWORD", raising=False)
    result = run_cli(unset, "status", "--month", "2022-10", "--json", check=False)
    assert result.exit_code == 2 and "MAILBOT_TEST_DB_PASSWORD" in result.stderr, str(result)
    assert "general.database_password_env" in result.stderr

    monkeypatch.setenv("MAILBOT_TEST_DB_PASSWORD", postgres.password_file.read_text().strip())
    result = run_cli(unset, "status", "--month", "2022-10", "--json")
    assert result.exit_code == 0, str(result)
    assert result.json()["totals"]["required"] > 0

    # A bare file name is a systemd credential first (LoadCredential= puts it there).
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "database.pass").write_text(postgres.password_file.read_text())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    by_credential = configured('database_password_file = "database.pass"')
    assert run_cli(by_credential, "status", "--month", "2022-10", "--json").exit_code == 0

    missing = configured(f'database_password_file = "{tmp_path / "no-such-file"}"')
    result = run_cli(missing, "check", check=False)
    assert result.exit_code == 2 and "no-such-file" in result.stdout, str(result)
    assert "general.database_password_file" in result.stdout


def test_check_reaches_the_database_and_says_its_revision(tmp_path, postgres):
    name = postgres.new_database("config_check", template="template0")
    path = _with_general(write_config(tmp_path, database_ready=False), f'database_url = "{postgres.url(name)}"',
                         f'database_password_file = "{postgres.password_file}"')
    result = run_cli(path, "check")
    assert "ok   database" in result.stdout and "none yet" in result.stdout, str(result)
    run_cli(path, "db", "upgrade")
    assert f"schema revision {HEAD}" in run_cli(path, "check").stdout  # the newest migration

    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-the-password\n")
    path.write_text(path.read_text().replace(str(postgres.password_file), str(wrong)))
    result = run_cli(path, "check", check=False)
    assert result.exit_code == 1 and "FAIL database" in result.stdout, str(result)
    assert "not-the-password" not in result.stdout + result.stderr
