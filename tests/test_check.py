"""`mailbot check` through the CLI: logs in everywhere, says what it found, exits 0/1/2."""

from __future__ import annotations

import json

from support.cli import run_cli
from support.configs import ACCOUNTS, server_config


def test_all_servers_answer_exit_0_with_what_was_found(tmp_path, dovecot, smtp_server):
    dovecot.append(ACCOUNTS["zjg"], b"From: a@b.c\r\nSubject: x\r\n\r\nhello\r\n")
    config = server_config(tmp_path, dovecot, smtp_server)

    result = run_cli(config, "check", "--json")

    probes = json.loads(result.stdout)
    assert [(p["mailbox"], p["role"], p["ok"]) for p in probes] == [
        ("chuyoujiao", "imap", True), ("chuyoujiao", "smtp", True), ("zjg", "imap", True), ("zjg", "smtp", True)]
    zjg_imap = probes[2]["details"]
    assert zjg_imap["messages"] == 1 and zjg_imap["folder"] == "INBOX" and zjg_imap["uidvalidity"] > 0
    assert "IDLE" in zjg_imap["capabilities"] and zjg_imap["read_only"] is True
    assert "AUTH" in probes[1]["details"]["extensions"]
    assert smtp_server.received == []  # nothing is sent


def test_the_text_report_names_capabilities_a_server_lacks(tmp_path, dovecot, smtp_server):
    dovecot.reconfigure("imap_capability = IMAP4rev1 UIDPLUS")  # like 163.com: no IDLE, MOVE, CONDSTORE
    config = server_config(tmp_path, dovecot, smtp_server)

    result = run_cli(config, "check")

    assert "not offered: IDLE, MOVE, CONDSTORE" in result.stdout
    assert result.stdout.count("ok  ") == 4


def test_id_is_sent_before_the_folder_is_selected(tmp_path, dovecot, imap_proxy):
    config = server_config(tmp_path, dovecot, None, imap_port=imap_proxy.port)

    run_cli(config, "check")

    commands = imap_proxy.commands()
    assert commands.count("ID") == 2
    assert commands.index("LOGIN") < commands.index("ID") < commands.index("EXAMINE")


def test_a_refused_login_exits_1_and_names_the_account(tmp_path, dovecot, smtp_server):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it")
    config = server_config(tmp_path, dovecot, smtp_server, password_files={"zjg@example.test": wrong})

    result = run_cli(config, "check", check=False)

    assert result.exit_code == 1
    assert "FAIL zjg" in result.stdout and "zjg@example.test" in result.stdout and "授权码" in result.stdout
    assert "ok   chuyoujiao   imap" in result.stdout


def test_a_silent_server_exits_1_after_the_timeout(tmp_path, dovecot, silent_server):
    config = server_config(tmp_path, dovecot, None, imap_port=silent_server.port)
    config.write_text(config.read_text(encoding="utf-8").replace("timeout = 5", "timeout = 0.5"), encoding="utf-8")

    result = run_cli(config, "check", check=False)

    assert result.exit_code == 1
    assert result.stdout.count("no answer within the timeout") == 2


def test_a_missing_password_variable_is_a_configuration_error_exit_2(tmp_path, dovecot):
    config = server_config(tmp_path, dovecot, None)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(f'password_file = "{dovecot.password_files["zjg@example.test"]}"',
                                   'password_env = "MAILBOT_TEST_UNSET_PASSWORD"'), encoding="utf-8")

    result = run_cli(config, "check", check=False)

    assert result.exit_code == 2
    assert "MAILBOT_TEST_UNSET_PASSWORD" in result.stdout


def test_a_broken_config_file_exits_2(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[[mailbox]]\nname = 'x'\n", encoding="utf-8")

    result = run_cli(config, "check", check=False)

    assert result.exit_code == 2 and "mailbox" in result.stderr
