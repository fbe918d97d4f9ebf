"""`run` refuses to start broken, and the configuration errors that slipped through (issue 9,
list items 4 and 9): every one exits 2 with a message naming the key and the fix, before any
server is tried, and `run` says it before READY."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest
from support.cli import Result, run_cli, run_process
from support.configs import server_config, write_config
from support.notify import NotifyListener


ROOT = Path(__file__).resolve().parent.parent




def replace(config: Path, old: str, new: str, count: int = -1) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new, count), encoding="utf-8")


def start_run(config: Path, tmp_path: Path, env: dict | None = None) -> tuple[Result, float, list]:
    """`mailbot run` as systemd starts it (its own process, $NOTIFY_SOCKET): its result, how long it
    took, and what it told systemd."""
    listener = NotifyListener(tmp_path / "notify.sock")
    started = time.monotonic()
    # The timeout is the guard against a run that waits instead of exiting: generous, since a
    # busy machine can take seconds just to start Python.
    proc = run_process(config, "run", check=False, timeout=60, env={"NOTIFY_SOCKET": listener.path, **(env or {})})
    took = time.monotonic() - started
    messages = listener.drain()
    listener.sock.close()
    return proc, took, messages


def test_run_with_a_missing_secret_exits_2_naming_the_key_and_never_reports_ready(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    replace(config, f'password_file = "{dovecot.password_files["zjg@example.test"]}"',
            'password_env = "MAILBOT_TEST_UNSET_PASSWORD"')

    proc, took, notified = start_run(config, tmp_path)

    print(f"mailbot run with a missing secret exited {proc.exit_code} after {took:.2f} s")
    assert proc.exit_code == 2, proc.stderr
    assert "MAILBOT_TEST_UNSET_PASSWORD" in proc.stderr and "zjg" in proc.stderr
    assert "READY=1" not in notified  # it stopped at the check, before starting any job


def test_run_with_a_missing_ca_file_exits_2_naming_the_key(tmp_path, dovecot, smtp_server):
    config = server_config(tmp_path, dovecot, smtp_server)
    replace(config, f'ca_file = "{smtp_server.ca_file}"', f'ca_file = "{tmp_path / "no-such-ca.pem"}"', 1)

    proc, _took, notified = start_run(config, tmp_path)

    assert proc.exit_code == 2, proc.stderr
    assert "ca_file" in proc.stderr and "no-such-ca.pem" in proc.stderr and "Traceback" not in proc.stderr
    assert "READY=1" not in notified


def test_a_missing_ca_file_is_a_configuration_error_in_check(tmp_path, dovecot, smtp_server):
    config = server_config(tmp_path, dovecot, smtp_server)
    replace(config, f'ca_file = "{smtp_server.ca_file}"', f'ca_file = "{tmp_path / "no-such-ca.pem"}"', 1)

    proc = run_cli(config, "check", check=False)

    assert proc.exit_code == 2
    assert "ca_file" in proc.stdout + proc.stderr and "FileNotFoundError" not in proc.stdout + proc.stderr


def test_no_password_at_all_exits_2_naming_the_key(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    replace(config, f'password_file = "{dovecot.password_files["zjg@example.test"]}"\n', "")

    proc = run_cli(config, "check", check=False)

    out = proc.stdout + proc.stderr
    assert proc.exit_code == 2, out
    assert "password_env" in out and "password_file" in out and "zjg" in out
    assert "login refused" not in out.lower()


@pytest.mark.parametrize("missing", ["operator", "summary", "schools"])
def test_check_refuses_a_config_where_alarms_summaries_or_schools_go_nowhere(tmp_path, missing):
    config = write_config(tmp_path, operator=None if missing == "operator" else "operator@example.test")
    text = config.read_text(encoding="utf-8")
    if missing == "summary":
        text = text.replace('recipients = ["leader@example.test"]', "recipients = []")
    if missing == "schools":
        text = text[:text.index("[[school]]")]
    config.write_text(text, encoding="utf-8")

    proc = run_cli(config, "check", check=False)

    out = proc.stdout + proc.stderr
    assert proc.exit_code == 2, out
    expected = {"operator": "operator.email", "summary": "summary.recipients", "schools": "[[school]]"}[missing]
    assert expected in out


def test_errors_name_a_mailbox_by_its_name(tmp_path):
    config = write_config(tmp_path)
    replace(config, 'name = "zjg"\n', 'name = "zjg"\nlevels_typo = 1\n')

    proc = run_cli(config, "check", check=False)

    assert proc.exit_code == 2
    assert 'mailbox "zjg"' in proc.stderr and "mailbox[1]" not in proc.stderr


def test_starttls_on_the_implicit_tls_port_is_refused_with_a_hint_at_once(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    replace(config, f"port = {dovecot.port}\nsecurity = \"plain\"", 'port = 993\nsecurity = "starttls"', 1)

    started = time.monotonic()
    proc = run_cli(config, "check", check=False)

    assert proc.exit_code == 2, proc.stdout + proc.stderr
    assert 'security = "ssl"' in proc.stdout + proc.stderr and "993" in proc.stdout + proc.stderr
    assert time.monotonic() - started < 30


def test_a_refused_login_names_the_user_and_the_server_apart(tmp_path, dovecot):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it")
    config = server_config(tmp_path, dovecot, None, password_files={"zjg@example.test": wrong})

    proc = run_cli(config, "check", check=False)

    assert proc.exit_code == 1
    assert "zjg@example.test@127.0.0.1" not in proc.stdout
    assert "zjg@example.test" in proc.stdout and f"127.0.0.1:{dovecot.port}" in proc.stdout


def test_the_example_config_and_the_unit_agree_on_how_passwords_arrive():
    example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    unit = (ROOT / "deploy" / "mailbot.service").read_text(encoding="utf-8")
    credentials = {line.split("=", 1)[1].strip() for line in unit.splitlines()
                   if line.startswith(("LoadCredential=", "LoadCredentialEncrypted="))}
    for mailbox in example["mailbox"]:
        for role in ("imap", "smtp"):
            server = mailbox[role]
            assert "password_env" not in server, f"{mailbox['name']}.{role} uses password_env; the unit gives files"
            assert server["password_file"] in credentials, (server, credentials)
