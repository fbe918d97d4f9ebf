"""The pure rules behind the first-contact baseline and the reply age limit (mailbot.ingest.baseline),
and the display-width padding the CLI tables use (mailbot.app.display)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mailbot.app.display import display_width, pad, table
from mailbot.ingest.baseline import Seen, parse_since, split_first_contact, start_of_date, withheld_because_old

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
TZ = ZoneInfo("Asia/Shanghai")


def test_without_since_everything_already_there_is_the_baseline():
    seen = [Seen("1", NOW - timedelta(days=900)), Seen("2", NOW), Seen("3", None)]
    split = split_first_contact(seen, None)
    assert [s.uid for s in split.baseline] == ["1", "2", "3"] and split.process == []


def test_with_since_the_recent_part_is_imported_and_an_unknown_arrival_stays_baseline():
    since = start_of_date(date(2026, 11, 1), TZ)
    seen = [Seen("1", since - timedelta(seconds=1)), Seen("2", since), Seen("3", None)]
    split = split_first_contact(seen, since)
    assert [s.uid for s in split.baseline] == ["1", "3"] and [s.uid for s in split.process] == ["2"]
    assert since.utcoffset() == timedelta(hours=8)


def test_the_age_limit_withholds_only_what_waited_longer_than_the_limit():
    assert withheld_because_old(NOW - timedelta(days=14), NOW, 14) is None
    assert "15 days" in withheld_because_old(NOW - timedelta(days=15), NOW, 14)
    assert withheld_because_old(None, NOW, 14) is None  # ingest FILE: exempt
    assert withheld_because_old(NOW + timedelta(days=1), NOW, 14) is None  # a clock ahead of ours
    assert withheld_because_old(NOW - timedelta(days=99), NOW, 0) is None  # 0 turns the limit off


def test_since_is_a_date():
    assert parse_since("2022-09-01") == date(2022, 9, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_since("last year")


def test_display_width_counts_chinese_as_two_cells():
    assert display_width("安溪县北门小学") == 14 and display_width("late") == 4
    assert display_width(pad("北门", 8)) == 8 and pad("7", 3, ">") == "  7"
    lines = table([["on_time", "安溪县北门小学", "1500"], ["late", "安溪县城南实验小学", "20"]], "<<>")
    assert display_width(lines[0]) == display_width(lines[1])  # the right-aligned column ends together
    assert display_width(lines[0][:lines[0].index("安")]) == display_width(lines[1][:lines[1].index("安")])
    assert lines[0].endswith("1500") and lines[1].endswith("  20")
