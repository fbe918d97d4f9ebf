"""The configuration (SPEC 8): `load_config(path)` reads and validates the TOML file into a `Config`.

schema.py holds the dataclasses and their defaults, load.py the loading and validation, reader.py
the typed access to TOML tables that names the key in every error, roster.py the roster CSV.
Import from here: `from mailbot.config import Config, load_config`.
"""

from mailbot.config.load import config_from_dict, load_config
from mailbot.config.roster import decode_roster_bytes, load_roster_csv
from mailbot.config.schema import (DEFAULT_STAGES, LEVELS, SECURITY, Config, Limits, MailboxConfig, Replies,
                                   Schedule, School, Security, Sending, ServerConfig, Stage, is_month)

__all__ = ["DEFAULT_STAGES", "LEVELS", "SECURITY", "Config", "Limits", "MailboxConfig", "Replies", "Schedule",
           "School", "Security", "Sending", "ServerConfig", "Stage", "config_from_dict", "decode_roster_bytes",
           "is_month", "load_config", "load_roster_csv"]
