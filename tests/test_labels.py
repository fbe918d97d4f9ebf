from mailbot.config import LEVELS
from mailbot.rules.labels import LEVEL_LABELS, SCOPE_LABELS, SECTION_LABELS, STATE_LABELS, level_label, state_label


def test_every_level_has_a_label_and_a_section():
    assert set(LEVEL_LABELS) == set(SECTION_LABELS) == set(LEVELS)
    assert SCOPE_LABELS == {"primary": "小学", "middle": "中学", "all": "全部"}


def test_labels_of_codes_and_of_unknown_codes():
    assert level_label("primary") == "小学" and level_label("middle") == "中学"
    assert level_label("kindergarten") == "kindergarten"  # shown as written rather than hidden
    states = ("on_time", "late", "missing", "excused", "not_required")
    assert [state_label(s) for s in states] == list(STATE_LABELS.values())
    assert state_label("odd") == "odd"
