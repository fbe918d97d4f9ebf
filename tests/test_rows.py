"""interpret_row: figures, 2+N and N, and every problem of a row named where it is."""

from __future__ import annotations

import pytest

from mailbot.rules.model import CellError, RawRow
from mailbot.rules.rows import interpret_row

COLUMNS = {"school": "B", "schools_count": "C", "enrolled": "D", "participating": "E", "two_plus_n": "F",
           "services": "G"}


def single(**cells) -> RawRow:
    values = {"school": " 安溪县北门小学 ", "schools_count": 1.0, "enrolled": 1878.0, "participating": 1797.0,
              "two_plus_n": "是", "services": "科普、文艺、劳动"}
    values.update(cells)
    values = {k: v for k, v in values.items() if v != "<absent>"}
    return RawRow(sheet="Sheet1", row_number=5, cells=values, columns={k: COLUMNS[k] for k in values})


def modes(mode, services=None, **marks) -> RawRow:
    mode_cells = {"2+1": None, "2+2": None, "2+3": None, "2+N": None}
    mode_cells.update({k.replace("_", "+").replace("plus", ""): v for k, v in marks.items()})
    if mode is not None:
        mode_cells[mode] = "√"
    cells = {"school": "安溪县凤华小学", "schools_count": 1, "enrolled": 1695, "participating": 1438,
             "services": services}
    columns = {"school": "B", "schools_count": "C", "enrolled": "D", "participating": "E", "services": "J",
               "2+1": "F", "2+2": "G", "2+3": "H", "2+N": "I"}
    return RawRow(sheet="汇总表", row_number=4, cells=cells, columns=columns, mode=mode, mode_cells=mode_cells)


def test_valid_single_row():
    result = interpret_row(single(), "single")
    assert result.ok and result.warnings == []
    assert (result.sheet, result.row_number, result.school_as_written) == ("Sheet1", 5, "安溪县北门小学")
    assert (result.schools_count, result.enrolled, result.participating) == (1, 1878, 1797)
    assert result.two_plus_n is True and result.n == 3 and result.services == ["科普", "文艺", "劳动"]
    assert result.school is None and result.month is None  # left for the caller


def test_counts_written_as_text_are_accepted():
    result = interpret_row(single(enrolled="1,113", participating="960人", schools_count="1所"), "single")
    assert result.ok and (result.enrolled, result.participating, result.schools_count) == (1113, 960, 1)


def test_unparseable_count_names_sheet_row_column_and_value():
    result = interpret_row(single(enrolled="约1200"), "single")
    assert not result.ok and result.enrolled is None
    assert result.errors == ["工作表“Sheet1”第5行 D列（在校学生数）：“约1200”不是整数，请填写准确人数。"]


def test_participating_above_enrolled_is_an_error():
    result = interpret_row(single(enrolled=1417, participating=1554), "single")
    assert result.errors == ["工作表“Sheet1”第5行：参与课后服务学生数（1554）大于在校学生数（1417），请核对。"]


def test_participating_equal_to_enrolled_is_fine():
    assert interpret_row(single(enrolled=100, participating=100), "single").ok


def test_zero_enrolled_is_an_error():
    result = interpret_row(single(enrolled=0, participating=0), "single")
    assert len(result.errors) == 1 and "在校学生数必须大于0" in result.errors[0]


def test_every_problem_of_the_row_is_collected():
    result = interpret_row(single(schools_count="两所", enrolled=None, participating=CellError("#REF!")), "single")
    assert len(result.errors) == 3
    assert "C列（开展课后服务学校数）：“两所”不是整数，请填写准确学校数" in result.errors[0]
    assert "D列（在校学生数）：未填写在校学生数" in result.errors[1]
    assert "E列（参与课后服务学生数）：公式错误 #REF!" in result.errors[2]


def test_blank_schools_count_is_one_with_a_warning():
    result = interpret_row(single(schools_count=None), "single")
    assert result.ok and result.schools_count == 1
    assert result.warnings == ["工作表“Sheet1”第5行 C列（开展课后服务学校数）：未填写开展课后服务学校数，已按1所记录。"]


def test_missing_schools_count_column_is_one_with_a_warning():
    result = interpret_row(single(schools_count="<absent>"), "single")
    assert result.ok and result.schools_count == 1 and len(result.warnings) == 1


@pytest.mark.parametrize("key", ["enrolled", "participating"])
def test_blank_or_missing_student_counts_are_errors(key):
    assert not interpret_row(single(**{key: "  "}), "single").ok
    assert not interpret_row(single(**{key: "<absent>"}), "single").ok


def test_basic_services_listed_do_not_count():
    result = interpret_row(single(services="作业辅导、体育活动、阅读、社团、劳动"), "single")
    assert result.n == 3 and result.services == ["阅读", "社团", "劳动"]


def test_services_written_after_yes_in_the_same_cell():
    result = interpret_row(single(two_plus_n="是（科普、美术、阅读）", services="<absent>"), "single")
    assert result.two_plus_n is True and result.n == 3 and result.services == ["科普", "美术", "阅读"]
    assert result.warnings == []


def test_yes_without_services_is_n_zero_with_a_warning():
    result = interpret_row(single(services=None), "single")
    assert result.ok and result.two_plus_n is True and result.n == 0
    assert len(result.warnings) == 1 and "N按0记录" in result.warnings[0] and "第5行 G列" in result.warnings[0]


def test_no_keeps_the_number_of_listed_services():
    result = interpret_row(single(two_plus_n="否", services=None), "single")
    assert result.two_plus_n is False and result.n == 0 and result.warnings == []
    result = interpret_row(single(two_plus_n="否", services="阅读"), "single")
    assert result.two_plus_n is False and result.n == 1 and "请核对" in result.warnings[0]


def test_unrecognised_yes_no_is_no_with_a_warning_naming_the_cell():
    result = interpret_row(single(two_plus_n="开展中"), "single")
    assert result.ok and result.two_plus_n is False
    assert result.warnings[0].startswith("工作表“Sheet1”第5行 F列（是否开展“2+N”模式）：“开展中”")


def test_number_in_services_column_is_not_a_service():
    result = interpret_row(single(services=3), "single")
    assert result.n == 0 and any("具体的拓展服务项目名称" in w for w in result.warnings)


def test_school_as_written_shows_numbers_as_excel_does():
    assert interpret_row(single(school=123.0), "single").school_as_written == "123"
    assert interpret_row(single(school=None), "single").school_as_written == ""


@pytest.mark.parametrize("mode,n", [("2+1", 1), ("2+2", 2), ("2+3", 3), ("2+N", 4)])
def test_mode_gives_n_when_no_services_are_listed(mode, n):
    result = interpret_row(modes(mode), "modes")
    assert result.ok and result.two_plus_n is True and result.n == n and result.warnings == []


def test_mode_with_matching_services():
    result = interpret_row(modes("2+3", "1.书法\n2.合唱\n3.美术"), "modes")
    assert result.n == 3 and result.services == ["书法", "合唱", "美术"] and result.warnings == []


def test_mode_with_a_different_number_of_services_records_the_listed_count_and_warns():
    result = interpret_row(modes("2+3", "书法、合唱"), "modes")
    assert result.ok and result.n == 2
    assert result.warnings == ["工作表“汇总表”第4行 J列（拓展服务项目名称）：在“2+3”下打了“√”，但列出的拓展服务有2项"
                               "（书法、合唱），已按2项记录，请核对。"]


def test_four_or_more_mode_takes_any_count_from_four():
    result = interpret_row(modes("2+N", "书法、合唱、美术、劳动、阅读"), "modes")
    assert result.n == 5 and result.warnings == []


def test_no_mode_marked_is_not_two_plus_n():
    result = interpret_row(modes(None), "modes")
    assert result.ok and result.two_plus_n is False and result.n == 0 and result.warnings == []


def test_no_mode_marked_but_services_listed_warns():
    result = interpret_row(modes(None, "书法"), "modes")
    assert result.two_plus_n is False and result.n == 1 and "没有在任何" in result.warnings[0]


def test_several_modes_marked_warns():
    row = modes("2+3", None, **{"2_1": "√"})
    result = interpret_row(row, "modes")
    assert result.n == 3 and len(result.warnings) == 1 and "2+1、2+3" in result.warnings[0]


def test_unrecognised_text_under_a_mode_warns_with_its_column():
    result = interpret_row(modes("2+2", None, **{"2_3": "部分"}), "modes")
    assert result.n == 2 and result.warnings[0].startswith("工作表“汇总表”第4行 H列")


def test_mode_label_as_written_by_another_caller_is_understood():
    row = modes(None)
    row.mode, row.mode_cells["2+N"] = "2+4及以上", "√"
    result = interpret_row(row, "modes")
    assert result.two_plus_n is True and result.n == 4


from datetime import datetime  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_any_cell = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=15),
                      st.datetimes(min_value=datetime(1900, 1, 1)), st.builds(CellError, st.text(max_size=6)))


@given(cells=st.dictionaries(st.sampled_from(list(COLUMNS)), _any_cell),
       mode=st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["2+1", "2+N"])),
       mode_cells=st.dictionaries(st.sampled_from(["2+1", "2+2", "2+3", "2+N"]), _any_cell),
       layout=st.sampled_from(["single", "modes"]))
def test_any_row_gives_a_result_whose_figures_are_sane(cells, mode, mode_cells, layout):
    raw = RawRow(sheet="S", row_number=2, cells=cells, columns={k: COLUMNS[k] for k in cells}, mode=mode,
                 mode_cells=mode_cells)
    result = interpret_row(raw, layout)
    assert all(isinstance(m, str) and m.endswith("。") for m in result.errors + result.warnings)
    if result.ok:
        assert result.enrolled > 0 and 0 <= result.participating <= result.enrolled
        assert result.schools_count >= 0 and result.n is not None and result.n >= 0
