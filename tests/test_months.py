from datetime import datetime

import pytest
from hypothesis import given, strategies as st

from mailbot.rules.month import find_month_phrase, month_of


@pytest.mark.parametrize("text, found", [
    ("城区义务教育阶段学校课后服务开展情况汇总表（2022年10月）", (2022, 10)),
    ("北门小学10月份课后服务开展情况汇总表", (None, 10)),
    ("十月课后服务", (None, 10)),
    ("十二月", (None, 12)),
    ("二〇二二年十月", (2022, 10)),
    ("Sheet 2022.10", (2022, 10)),
    ("2022-09汇总", (2022, 9)),
    ("填报时间：2022年10月24日", None),  # a date with a day is not a month phrase
    ("10月24日前报送", None),
    ("13月", None),
    ("汇总表", None),
])
def test_month_phrases(text, found):
    assert find_month_phrase(text) == found


def test_first_source_wins_title_then_subject_then_file_then_date():
    sent = datetime(2022, 11, 1, 9, 0)
    assert month_of(["（2022年9月）", "10月份", "11月.xlsx"], sent) == "2022-09"
    assert month_of(["", "10月份", "11月.xlsx"], sent) == "2022-10"
    assert month_of(["", "", "11月.xlsx"], sent) == "2022-11"
    assert month_of(["", "", ""], sent) == "2022-11"


def test_year_rollover_rule():
    january = datetime(2023, 1, 5)
    assert month_of(["12月份"], january) == "2022-12"
    assert month_of(["11月"], january) == "2022-11"
    assert month_of(["2月"], january) == "2023-02"
    assert month_of(["1月"], datetime(2022, 12, 28)) == "2022-01"


@given(st.integers(2000, 2099), st.integers(1, 12))
def test_any_year_month_phrase_is_found(year, month):
    assert find_month_phrase(f"汇总表（{year}年{month}月）") == (year, month)
    assert find_month_phrase(f"{year}年{month:02d}月份") == (year, month)
