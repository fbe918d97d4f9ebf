from pathlib import Path

import pytest

from mailbot.config import config_from_dict, decode_roster_bytes, load_config, load_roster_csv
from mailbot.errors import ConfigError
from support.cli import run_cli
from support.configs import write_config

MINIMAL = {"mailbox": [{"name": "chuyoujiao", "address": "Chuyoujiao@163.com", "levels": ["primary"],
                        "maildir": "mail", "outbox_dir": "out"}],
           "school": [{"name": "安溪县北门小学", "level": "primary", "emails": ["BeiMenXX@163.com"]}]}


def test_minimal_config_gets_defaults(tmp_path):
    config = config_from_dict(MINIMAL, tmp_path)
    assert config.timezone.key == "Asia/Shanghai"
    assert config.state_dir == tmp_path / "state"
    assert config.database_url == f"sqlite:///{tmp_path / 'state' / 'mailbot.sqlite3'}"
    assert config.mailboxes[0].maildir == tmp_path / "mail"
    assert config.mailboxes[0].address == "chuyoujiao@163.com"
    assert config.schools[0].emails == ["beimenxx@163.com"]
    assert [(s.name, s.day) for s in config.schedule.stages] == [("upcoming", 20), ("due", 24), ("overdue", 25)]
    assert config.replies.max_per_sender_per_day == 10


@pytest.mark.parametrize("change, key", [
    (lambda d: d["mailbox"][0].pop("levels"), 'mailbox "chuyoujiao".levels'),  # tables by name, not index
    (lambda d: d["mailbox"][0].update(levels=["high"]), 'mailbox "chuyoujiao".levels'),
    (lambda d: d["school"][0].update(level="大学"), 'school "安溪县北门小学".level'),
    (lambda d: d["mailbox"][0].update(name=None, levels=["high"]), "mailbox[0]"),  # no usable name: the index
    (lambda d: d.update(general={"timezone": "Mars/Base"}), "general.timezone"),
    (lambda d: d.update(schedule={"deadline_day": "24"}), "schedule.deadline_day"),
    (lambda d: d["mailbox"][0].pop("maildir"), "needs a transport"),
    (lambda d: d.update(limits={"max_rows": -1.5}), "limits.max_rows"),
    (lambda d: d.update(colour="blue"), "colour"),
])
def test_bad_values_name_the_key(tmp_path, change, key):
    import copy
    data = copy.deepcopy(MINIMAL)
    change(data)
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        config_from_dict(data, tmp_path)


def test_inline_password_is_refused(tmp_path):
    import copy
    data = copy.deepcopy(MINIMAL)
    data["mailbox"][0]["imap"] = {"host": "imap.163.com", "username": "x", "password": "secret"}
    with pytest.raises(ConfigError, match="never written in the config file"):
        config_from_dict(data, tmp_path)


def test_password_from_env_and_credentials_dir(tmp_path, monkeypatch):
    import copy
    data = copy.deepcopy(MINIMAL)
    data["mailbox"][0]["imap"] = {"host": "h", "username": "u", "password_env": "MB_PW"}
    data["mailbox"][0]["smtp"] = {"host": "h", "username": "u", "password_file": "smtp.pass"}
    config = config_from_dict(data, tmp_path)
    monkeypatch.setenv("MB_PW", "from-env")
    assert config.mailboxes[0].imap.password() == "from-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "smtp.pass").write_text("from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config.mailboxes[0].smtp.password_file = Path("smtp.pass")
    assert config.mailboxes[0].smtp.password() == "from-file"
    monkeypatch.delenv("MB_PW")
    with pytest.raises(ConfigError, match="MB_PW"):
        config.mailboxes[0].imap.password()


@pytest.mark.parametrize("encoding, bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b"")])
def test_csv_roster_as_excel_and_wps_save_it(tmp_path, encoding, bom):
    text = "name,level,emails,aliases\r\n安溪县凤华中学,middle,fhzx1962@126.com;3046182257@qq.com,凤华中学\r\n安溪县北门小学,小学,,\r\n"
    path = tmp_path / "schools.csv"
    path.write_bytes(bom + text.encode(encoding))
    schools = load_roster_csv(path)
    assert [(s.name, s.level) for s in schools] == [("安溪县凤华中学", "middle"), ("安溪县北门小学", "primary")]
    assert schools[0].emails == ["fhzx1962@126.com", "3046182257@qq.com"]
    assert schools[0].aliases == ["凤华中学"]
    assert decode_roster_bytes(bom + "名".encode(encoding)) == "名"


def test_cli_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[mailbox]]\nname = "x"\naddress = "x@163.com"\nlevels = ["primary"]\n', encoding="utf-8")
    result = run_cli(path, "status", check=False)
    assert result.exit_code == 2
    assert "needs a transport" in result.stderr
    missing = run_cli(tmp_path / "nope.toml", "status", check=False)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_example_config_loads(monkeypatch):
    config = load_config(Path(__file__).parent.parent / "config.example.toml")
    assert [mb.name for mb in config.mailboxes] == ["chuyoujiao", "zjg"]
    assert config.schedule.reporting_months == [3, 4, 5, 6, 7, 8, 9, 10]


def test_state_dir_is_created(tmp_path):
    config = write_config(tmp_path, database_ready=False)
    assert not (tmp_path / "state").exists()
    run_cli(config, "db", "upgrade")
    assert (tmp_path / "state" / "mailbot.sqlite3").exists()


def test_bare_password_file_is_a_systemd_credential_else_beside_the_config(tmp_path, monkeypatch):
    import copy
    data = copy.deepcopy(MINIMAL)
    data["mailbox"][0]["imap"] = {"host": "h", "username": "u", "password_file": "imap.pass"}
    config = config_from_dict(data, tmp_path)
    (tmp_path / "imap.pass").write_text("beside-config\n")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert config.mailboxes[0].imap.password() == "beside-config"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap.pass").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert config.mailboxes[0].imap.password() == "from-systemd"
