"""The value parsers: counts, yes/no, service lists."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.rules.model import CellError
from mailbot.rules.values import (
    cell_text,
    extension_services,
    is_basic_service,
    is_mark,
    parse_count,
    parse_yes_no,
    service_key,
    split_services,
)

# --- parse_count -------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,value", [
    (1234, 1234), (1234.0, 1234), ("1234", 1234), ("1,234", 1234), ("1，234", 1234), ("１２３４", 1234),
    ("  1234 ", 1234), ("1234人", 1234), ("1所", 1), ("1 个", 1), ("1,234人", 1234), ("0", 0), ("1234.0", 1234),
    ("2,345,678", 2345678),
    ("\u30001878\u3000", 1878), ("1878\n", 1878), ("３个校区", 3),
])
def test_parse_count_accepts_what_schools_write(cell, value):
    assert parse_count(cell) == value


@pytest.mark.parametrize("cell,reason", [
    ("约1200", "“约1200”不是整数"), (1234.5, "不是整数"), ("1234.5", "不是整数"), (-3, "负数"), ("-3", "负数"),
    (-3.0, "负数"), (CellError("#REF!"), "公式错误 #REF!"), (CellError("#DIV/0!"), "公式错误 #DIV/0!"),
    (CellError("nocache"), "公式没有保存计算结果"), (True, "不是人数"), (datetime(2022, 10, 1), "日期"),
    (None, "未填写"), ("", "未填写"), ("   ", "未填写"), ("1,2345", "不是整数"), ("12,34", "不是整数"),
    ("一千二百", "不是整数"), ("1200-1300", "不是整数"), ("1200人次多", "不是整数"), ("人", "不是整数"),
    (float("nan"), "不是有效数字"), (float("inf"), "不是有效数字"), (1e300, "数值过大"), ("99999999999", "数值过大"),
    ("1²", "不是整数"),
])
def test_parse_count_rejects_with_a_chinese_reason(cell, reason):
    with pytest.raises(ValueError) as excinfo:
        parse_count(cell)
    assert reason in str(excinfo.value)


def test_parse_count_reason_quotes_only_the_start_of_a_huge_cell():
    with pytest.raises(ValueError) as excinfo:
        parse_count("垃圾" * 10_000)
    assert len(str(excinfo.value)) < 80


def _full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "0" <= ch <= "9" else ch for ch in text)


@given(value=st.integers(min_value=0, max_value=9_999_999),
       separator=st.sampled_from(["", ",", "，"]), full_width=st.booleans(),
       unit=st.sampled_from(["", "人", "所", "个", " 人", "名"]),
       padding=st.sampled_from(["", " ", "\u3000", "\t"]))
def test_parse_count_round_trips_any_written_form(value, separator, full_width, unit, padding):
    text = f"{value:,}".replace(",", separator) if separator else str(value)
    if full_width:
        text = _full_width(text)
    assert parse_count(f"{padding}{text}{unit}{padding}") == value


@given(st.text(max_size=12))
@settings(max_examples=400)
def test_parse_count_never_returns_a_number_that_is_not_written(text):
    try:
        value = parse_count(text)
    except ValueError as exc:
        assert str(exc)  # every refusal says why
        return
    digits = re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", text).split(".")[0])
    assert digits.lstrip("0") == str(value).lstrip("0")


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_count_of_any_float_is_exact_or_refused(number):
    try:
        value = parse_count(number)
    except ValueError:
        return
    assert value == number and value >= 0


# --- parse_yes_no ------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["是", "√", "✓", "✔", "Y", "y", "yes", "YES", "Ｙｅｓ", " 是 ", "是（科普、美术）", "是的", True])
def test_yes(cell):
    assert parse_yes_no(cell) == (True, None)


@pytest.mark.parametrize("cell", ["否", "无", "×", "✗", "N", "no", "No", None, "", "  ", "否（暂未开展）", False])
def test_no_without_warning(cell):
    assert parse_yes_no(cell) == (False, None)


@pytest.mark.parametrize("cell", ["开展中", "是否", "是/否", 1, 3.0, CellError("#N/A"), "2+3", datetime(2022, 1, 1)])
def test_anything_else_is_no_with_a_warning_naming_the_text(cell):
    answer, warning = parse_yes_no(cell)
    assert answer is False
    assert cell_text(cell) in warning and "请填写“是”或“否”" in warning


@pytest.mark.parametrize("cell,marked", [("√", True), ("是", True), ("V", True), ("●", True), (1, True),
                                         ("", False), (None, False), ("×", False), ("否", False), ("是否", False)])
def test_mode_marks(cell, marked):
    assert is_mark(cell) is marked


# --- split_services ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,names", [
    ("科普、文艺、劳动", ["科普", "文艺", "劳动"]),
    ("阅读，劳动", ["阅读", "劳动"]),
    ("阅读,劳动;书法；合唱/美术／舞蹈", ["阅读", "劳动", "书法", "合唱", "美术", "舞蹈"]),
    ("1.书法\n2.合唱\n3.美术", ["书法", "合唱", "美术"]),
    ("1.科普 2.美术", ["科普", "美术"]),
    ("1、科普2、美术", ["科普", "美术"]),
    ("（1）科普（2）美术", ["科普", "美术"]),
    ("(1)科普 (2)美术", ["科普", "美术"]),
    ("1)科普 2)美术", ["科普", "美术"]),
    ("①科普②美术③劳动", ["科普", "美术", "劳动"]),
    ("⑳科普", ["科普"]),
    ("一、科普 二、美术", ["科普", "美术"]),
    ("科普。", ["科普"]),
    ("科普、科普、 科普 ", ["科普"]),
    ("科普、、\n\n美术、", ["科普", "美术"]),
    ("3D打印、5G科普", ["3D打印", "5G科普"]),
    ("（科普、美术）", ["科普", "美术"]),
    ("", []), (None, []), ("、，", []),
])
def test_split_services(text, names):
    assert split_services(text) == names


SEPARATORS = ["、", "，", ",", "；", ";", "/", "／", "\n", "\r\n", " 、 "]
name_strategy = st.text(alphabet="科普文艺劳动阅读兴趣小组社团书法合唱美术茶艺舞蹈足球编程ABCxyz", min_size=1, max_size=6)


@given(names=st.lists(name_strategy, min_size=1, max_size=8), separators=st.lists(st.sampled_from(SEPARATORS), min_size=1),
       numbered=st.booleans())
def test_joined_names_split_back(names, separators, numbered):
    parts = [f"{i + 1}.{name}" if numbered else name for i, name in enumerate(names)]
    text = parts[0]
    for i, part in enumerate(parts[1:]):
        text += separators[i % len(separators)] + part
    assert split_services(text) == list(dict.fromkeys(names))


@given(st.text(max_size=40))
def test_split_result_has_no_separators_no_blanks_no_duplicates(text):
    names = split_services(text)
    assert len({service_key(n) for n in names}) == len(names)
    for name in names:
        assert name.strip() == name and name
        assert not re.search(r"[、，,；;/／\r\n]", name)


# --- extension_services ------------------------------------------------------------------------

def test_basic_services_do_not_count_toward_n():
    listed = ["作业辅导", "体育活动", "阅读", "社团", "劳动"]
    assert extension_services(listed) == ["阅读", "社团", "劳动"]


@pytest.mark.parametrize("name", ["作业辅导", "作业辅导（基础）", "课后作业辅导", "作业指导", "作业答疑", "体育活动",
                                  "体育锻炼", "体育运动", "体育活动（基础服务）", "课后体育活动", "基础服务"])
def test_basic_service_variants(name):
    assert extension_services([name]) == []


@pytest.mark.parametrize("name", ["篮球社团", "足球", "科普", "体育舞蹈", "阅读"])
def test_clubs_and_other_activities_are_extension_services(name):
    assert not is_basic_service(name)
    assert extension_services([name]) == [name]


def test_placeholders_and_bare_numbers_are_not_services():
    assert extension_services(["无", "暂无", "/", "-", "2", "3", "科普"]) == ["科普"]
