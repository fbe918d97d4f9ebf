"""The Chinese words schools, leaders and clerks read for mailbot's codes, in one place.

Levels, the sections that collect them and a school's state in a month each have one wording;
the receipt, the reminders, the prefilled table, the summary and the 台账 all take it from here.
"""

from __future__ import annotations

LEVEL_LABELS = {"primary": "小学", "middle": "中学"}
# The education bureau's section (股) that collects each level's tables (SPEC 1).
SECTION_LABELS = {"primary": "初幼教股", "middle": "中教股"}
# A school's state in a month (SPEC 8 `status --json`), and the web console's word for a month
# the school did not have to report (not a reporting month, or before it was in the roster).
STATE_LABELS = {"on_time": "按时报送", "late": "逾期报送", "missing": "未报送", "excused": "本月免报",
                "not_required": "无需报送"}
# The summary's scopes: each level, and all schools together.
SCOPE_LABELS = {**LEVEL_LABELS, "all": "全部"}


def level_label(level: str) -> str:
    """"primary" -> "小学"; a level without a label is shown as written."""
    return LEVEL_LABELS.get(level, level)


def state_label(state: str) -> str:
    """"late" -> "逾期报送"; a state without a label is shown as written."""
    return STATE_LABELS.get(state, state)
