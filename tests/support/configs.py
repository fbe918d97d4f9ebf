"""Configurations for tests: the samples' roster on Maildir (write_config), the same on the test
mail servers (server_config), and a small in-memory roster for the campaign (make_config)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from mailbot.config import config_from_dict
from support import database

SAMPLES = Path(__file__).parent.parent / "samples"
ROSTER = tomllib.loads((SAMPLES / "roster.toml").read_text(encoding="utf-8"))
ACCOUNTS = {"chuyoujiao": "chuyoujiao@example.test", "zjg": "zjg@example.test"}  # the mailboxes' server users


def write_config(tmp: Path, extra: str = "", operator: str | None = "operator@example.test",
                 database_ready: bool = True, sender_auth: str | None = "evidence") -> Path:
    """A maildir/outbox config for the samples' roster, state under tmp; `extra` is appended TOML.

    database_ready: the state directory already holds a migrated database (a copy of the
    session's template); False leaves it empty, for tests of what creates the database.
    sender_auth: `[security] sender_auth`. "evidence" by default because test mail is unsigned and
    most tests are not about sender authentication (an IMAP mailbox would default to "dmarc" and
    quarantine it); None writes no [security] table, so mailbot's own defaults are in force and
    `extra` may carry a [security] table of its own."""
    lines = ["[general]", 'timezone = "Asia/Shanghai"', f'state_dir = "{tmp / "state"}"',
             *(f"{key} = {json.dumps(value)}" for key, value in database.config_keys(tmp / "state").items()), "",
             "[schedule]", "deadline_day = 24", "", "[summary]", 'recipients = ["leader@example.test"]', ""]
    if sender_auth is not None:
        lines += ["[security]", f'sender_auth = "{sender_auth}"', ""]
    if operator:
        lines += ["[operator]", f'email = "{operator}"', ""]
    for mb in ROSTER["mailbox"]:
        for sub in ("cur", "new", "tmp"):
            (tmp / "maildir" / mb["name"] / sub).mkdir(parents=True, exist_ok=True)
        lines += ["[[mailbox]]", f'name = "{mb["name"]}"', f'address = "{mb["address"]}"',
                  "levels = " + json.dumps(mb["levels"]), f'maildir = "{tmp / "maildir" / mb["name"]}"',
                  f'outbox_dir = "{tmp / "outbox" / mb["name"]}"', ""]
    for sc in ROSTER["school"]:
        lines += ["[[school]]", f"name = {json.dumps(sc['name'], ensure_ascii=False)}", f'level = "{sc["level"]}"',
                  "emails = " + json.dumps(sc["emails"], ensure_ascii=False),
                  "aliases = " + json.dumps(sc["aliases"], ensure_ascii=False), ""]
    path = tmp / "config.toml"
    path.write_text("\n".join(lines) + "\n" + without_throttle(extra), encoding="utf-8")
    database.prepare(tmp / "state", database_ready)
    return path


def without_throttle(extra: str) -> str:
    """`extra` with `[sending] throttle_seconds = 0` unless it sets a throttle itself: the real 3 s
    pause between emails is for 163.com's limits, and in tests it only waits (a test about the
    throttle sets its own)."""
    if "throttle_seconds" in extra:
        return extra
    if "[sending]" in extra:
        return extra.replace("[sending]", "[sending]\nthrottle_seconds = 0", 1)
    return extra + "\n[sending]\nthrottle_seconds = 0\n"


def server_config(tmp_path: Path, imap, smtp, extra: str = "", imap_port: int | None = None,
                  password_files: dict | None = None, sender_auth: str | None = "evidence") -> Path:
    """The samples' roster with both mailboxes on the test servers (imap: the Dovecot fixture,
    smtp: the aiosmtpd fixture or None); `extra` is appended as more TOML; sender_auth as for
    write_config (None: the IMAP default "dmarc" is in force)."""
    path = write_config(tmp_path, extra, sender_auth=sender_auth)
    text = path.read_text(encoding="utf-8")
    for name, user in ACCOUNTS.items():
        marker = f'outbox_dir = "{tmp_path / "outbox" / name}"\n'
        imap_pw = (password_files or {}).get(user, imap.password_files[user])
        block = (f'[mailbox.imap]\nhost = "127.0.0.1"\nport = {imap_port or imap.port}\nsecurity = "plain"\n'
                 f'username = "{user}"\npassword_file = "{imap_pw}"\ntimeout = 5\n')
        if smtp is not None:
            block += (f'[mailbox.smtp]\nhost = "127.0.0.1"\nport = {smtp.ssl_port}\nsecurity = "ssl"\n'
                      f'username = "{user}"\npassword_file = "{smtp.password_files[user]}"\n'
                      f'ca_file = "{smtp.ca_file}"\ntimeout = 5\n')
        text = text.replace(marker, marker + block)
    path.write_text(text, encoding="utf-8")
    return path


# A small roster for the campaign tests (reminders, the daemon), built in memory.
PRIMARY = ["安溪县北门小学", "安溪县东门小学", "安溪县玉湖小学"]
MIDDLE = ["安溪县第一中学", "安溪县蓬莱中学"]


def make_config(tmp: Path = Path("/nonexistent"), schedule: dict | None = None, staff: bool = True,
                operator: str | None = "operator@example.test"):
    data = {
        "general": {"timezone": "Asia/Shanghai", "state_dir": str(tmp / "state"),
                    **database.config_keys(tmp / "state")},
        "schedule": {"deadline_day": 24, **(schedule or {})},
        "sending": {"throttle_seconds": 0},  # as in without_throttle
        "mailbox": [
            {"name": "chuyoujiao", "address": "chuyoujiao@163.com", "levels": ["primary"],
             "maildir": str(tmp / "md1"), "outbox_dir": str(tmp / "out1"),
             "staff": ["xiao.li@example.test", "lao.wang@example.test"] if staff else []},
            {"name": "zjg", "address": "zjg23236764@163.com", "levels": ["middle"],
             "maildir": str(tmp / "md2"), "outbox_dir": str(tmp / "out2"),
             "staff": ["zhang@example.test"] if staff else []},
        ],
        "school": [{"name": n, "level": "primary", "emails": [f"p{i}@163.com"], "contact": f"王老师{i}",
                    "phone": f"0595-2300{i}"} for i, n in enumerate(PRIMARY)]
        + [{"name": n, "level": "middle", "emails": [f"m{i}@163.com"]} for i, n in enumerate(MIDDLE)],
    }
    if operator:
        data["operator"] = {"email": operator}
    database.prepare(tmp / "state", ready=False)  # PostgreSQL: its (empty) database, as SQLite's file would be made
    return config_from_dict(data, tmp)


def fast_config(tmp_path):
    """make_config with the poll every 0.3 s, for the daemon's tests."""
    config = make_config(tmp_path)
    config.schedule.poll_interval_minutes = 0.3 / 60  # every 0.3 s
    return config
