"""[security] and the per-mailbox sender_auth (issue 11 point 1)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mailbot.config import config_from_dict
from mailbot.errors import ConfigError

MAILDIR_BOX = {"name": "chuyoujiao", "address": "chuyoujiao@163.com", "levels": ["primary"], "maildir": "mail",
               "outbox_dir": "out"}
IMAP_BOX = {"name": "zjg", "address": "zjg@163.com", "levels": ["middle"], "outbox_dir": "out2",
            "imap": {"host": "imap.163.com", "username": "zjg@163.com", "password_env": "X"}}
BASE = {"mailbox": [MAILDIR_BOX, IMAP_BOX], "school": []}


def load(**changes):
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        data[key] = value
    return config_from_dict(data, Path("/tmp"))


def test_defaults_by_transport():
    config = load()
    maildir, imap = config.mailboxes
    assert config.security.authserv_ids == []
    assert config.security.mode_for(imap, "imap") == "dmarc"
    assert config.security.mode_for(maildir, "maildir") == "evidence"
    assert config.security.mode_for(imap, "file") == "evidence"  # `mailbot ingest FILE`
    assert config.security.mode_for(maildir, "imap") == "evidence"  # the mailbox's transport decides


def test_global_setting_and_mailbox_override():
    data = copy.deepcopy(BASE)
    data["security"] = {"sender_auth": "dmarc", "authserv_ids": ["MX.Bureau.test"]}
    data["mailbox"][1]["sender_auth"] = "off"
    config = config_from_dict(data, Path("/tmp"))
    maildir, imap = config.mailboxes
    assert config.security.authserv_ids == ["mx.bureau.test"]
    assert config.security.mode_for(maildir, "maildir") == "dmarc"
    assert config.security.mode_for(imap, "imap") == "off"


@pytest.mark.parametrize("security, key", [
    ({"sender_auth": "strict"}, "security.sender_auth"),
    ({"authserv_ids": "mx1"}, "security.authserv_ids"),
    ({"dns_timeout_seconds": 0.0}, "security.dns_timeout_seconds"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_security_values_name_the_key(security, key):
    with pytest.raises(ConfigError, match=key):
        load(security=security)


def test_bad_mailbox_mode_names_the_key():
    data = copy.deepcopy(BASE)
    data["mailbox"][0]["sender_auth"] = "spf"
    with pytest.raises(ConfigError, match=r"mailbox.*sender_auth must be one of"):
        config_from_dict(data, Path("/tmp"))
