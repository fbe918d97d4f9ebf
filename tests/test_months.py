from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, strategies as st

from mailbot.rules.month import Month, find_month_phrase, is_reporting_month, month_label, month_of


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


# -- the Month value -------------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("text", ["2022-10", "1999-01", "2100-12"])
def test_a_month_reads_back_as_it_was_written(text):
    assert str(Month.parse(text)) == text


@pytest.mark.parametrize("text", ["2022-1", "2022-13", "2022-00", "22-10", "2022/10", "2022-10-01", "", "２０２２-10"])
def test_only_yyyy_mm_is_a_month(text):
    with pytest.raises(ValueError):
        Month.parse(text)
    assert Month.parse_or_none(text) is None
    assert Month.parse_or_none(None) is None


def test_month_label_deadline_and_lateness():
    october = Month.parse("2022-10")
    assert october.label == "2022年10月" and Month(2023, 1).label == "2023年1月"
    assert month_label("2022-03") == "2022年3月"
    assert october.deadline(24, SHANGHAI) == datetime(2022, 10, 24, 23, 59, 59, tzinfo=SHANGHAI)
    assert not october.is_late(datetime(2022, 10, 24, 23, 59, 59, 500_000, tzinfo=SHANGHAI), 24, SHANGHAI)
    assert october.is_late(datetime(2022, 10, 25, tzinfo=SHANGHAI), 24, SHANGHAI)


def test_neighbouring_months_and_days():
    assert Month(2022, 12).next() == Month(2023, 1) and Month(2023, 1).previous() == Month(2022, 12)
    assert Month(2022, 10).next() == Month(2022, 11) and Month(2022, 10).previous() == Month(2022, 9)
    assert Month(2024, 2).days == 29 and Month(2023, 2).days == 28
    assert Month(2022, 4).day(31) == date(2022, 4, 30) and Month(2022, 4).day(5) == date(2022, 4, 5)
    assert Month(2022, 9) < Month(2022, 10) < Month(2023, 1)


def test_the_month_of_a_moment_is_taken_in_the_bureaus_time_zone():
    new_year_in_shanghai = datetime(2022, 12, 31, 16, 30, tzinfo=timezone.utc)
    assert Month.of(new_year_in_shanghai, SHANGHAI) == Month(2023, 1)
    assert Month.of(new_year_in_shanghai) == Month(2022, 12)
    assert Month.of(date(2022, 10, 5)) == Month(2022, 10)


def test_reporting_months():
    assert Month(2022, 10).is_reporting([3, 4, 5, 6, 7, 8, 9, 10])
    assert not Month(2022, 12).is_reporting([3, 4, 5, 6, 7, 8, 9, 10])
    assert is_reporting_month("2022-12", range(1, 13))


def test_an_impossible_month_cannot_be_made():
    with pytest.raises(ValueError):
        Month(2022, 13)


@given(st.integers(min_value=1900, max_value=2200), st.integers(min_value=1, max_value=12))
def test_next_and_previous_undo_each_other(year, number):
    month = Month(year, number)
    assert month.next().previous() == month and Month.parse(str(month)) == month
