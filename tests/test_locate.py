"""find_tables: the header found by its words, both layouts, where data rows start and end."""

from __future__ import annotations

import email
import json
from pathlib import Path

import pytest

from mailbot.rules.model import CellError, Sheet, TableFile
from mailbot.rules.rows import interpret_row
from mailbot.tables.locate import column_letter, find_tables, header_text, mode_label

SAMPLES = Path(__file__).parent / "samples"

TITLE = ["城区义务教育阶段学校课后服务开展情况汇总表", None, None, None, None, None, None]
MONTH = ["（2022年10月）", None, None, None, None, None, None]
HEADER = ["序号", "城区学校名称", "城区开展课后服务学校数（所）", "城区学校在校学生数（人）",
          "城区参与课后服务学生数（人）", "是否开展“2+N”模式课后服务", "开展“N”项“拓展服务”，具体服务项目名称"]
NOTE = ["说明：1.“2+N”中的“2”指作业辅导、体育活动", None, None, None, None, None, None]


def table_file(*sheets: Sheet) -> TableFile:
    return TableFile(filename="汇总表.xlsx", format="xlsx", sheets=list(sheets))


def only_table(rows, merged=None, name="Sheet1"):
    tables = find_tables(table_file(Sheet(name, rows, merged or [])))
    assert len(tables) == 1
    return tables[0]


# --- the annex's single-row header ---------------------------------------------------------

def test_single_header_with_title_rows_gives_columns_rows_and_title():
    data = [1.0, "安溪县北门小学", 1.0, 1878.0, 1797.0, "是", "科普、文艺、劳动"]
    table = only_table([TITLE, MONTH, ["填报单位：安溪县北门小学（盖章）  填报时间：2022年10月21日"], HEADER, data, NOTE])
    assert table.layout == "single"
    assert table.header_row == 4
    assert table.file == "汇总表.xlsx" and table.sheet == "Sheet1"
    assert "（2022年10月）" in table.title_text and "填报单位" in table.title_text
    assert table.title_text.endswith("Sheet1")
    [row] = table.rows
    assert row.row_number == 5
    assert row.cells == {"school": "安溪县北门小学", "schools_count": 1.0, "enrolled": 1878.0,
                         "participating": 1797.0, "two_plus_n": "是", "services": "科普、文艺、劳动"}
    assert row.columns == {"school": "B", "schools_count": "C", "enrolled": "D", "participating": "E",
                           "two_plus_n": "F", "services": "G"}
    assert row.mode is None and row.mode_cells == {}


def test_header_found_by_words_when_columns_are_moved_and_renamed():
    header = ["在校学生数", "单位名称", "参加课后服务人数", "学校数", "“2+N” 模式", "项目名称"]
    table = only_table([header, [900, "某某小学", 800, 1, "否", ""]])
    row = table.rows[0]
    assert row.columns == {"enrolled": "A", "school": "B", "participating": "C", "schools_count": "D",
                           "two_plus_n": "E", "services": "F"}
    assert row.cells["enrolled"] == 900 and row.cells["school"] == "某某小学"


def test_header_cells_with_line_breaks_spaces_and_full_width_text_are_matched():
    header = ["序 号", "学 校\n名 称", "开展课后服务\n学校数", "在校\n学生数", "参与课后服务\r\n学生数", "是否开展“２＋Ｎ”\n模式"]
    table = only_table([header, [1, "甲小学", 1, 10, 5, "是"]])
    assert set(table.rows[0].cells) == {"school", "schools_count", "enrolled", "participating", "two_plus_n"}


def test_schools_count_column_is_never_taken_for_the_school_column():
    table = only_table([["学校数", "学校", "在校生", "参与学生数"], [1, "甲小学", 10, 5]])
    assert table.rows[0].columns["school"] == "B"
    assert table.rows[0].columns["schools_count"] == "A"


def test_sheet_without_school_enrolled_and_participating_gives_no_table():
    rows = [["填表说明"], ["1.本表由城区各义务教育阶段学校填报"], ["学校名称", "备注"], ["甲小学", "无"]]
    assert find_tables(table_file(Sheet("填表说明", rows))) == []


def test_table_on_second_sheet_after_instructions_sheet():
    instructions = Sheet("填表说明", [["填表说明"], ["“在校学生数”“参与课后服务学生数”请填写阿拉伯数字"]])
    data = Sheet("汇总表", [TITLE, HEADER, [1, "甲小学", 1, 885, 744, "是", "科普"]])
    tables = find_tables(table_file(instructions, data))
    assert [t.sheet for t in tables] == ["汇总表"]
    assert tables[0].rows[0].sheet == "汇总表"


def test_blank_template_gives_table_without_rows():
    table = only_table([TITLE, HEADER, [1, None, None, None, None, None, None],
                        [2, None, None, None, None, None, None]])
    assert table.rows == []


def test_every_sheet_with_a_header_gives_a_table():
    first = Sheet("10月", [HEADER, [1, "甲小学", 1, 10, 5, "是", "科普"]])
    second = Sheet("11月", [HEADER, [1, "甲小学", 1, 12, 6, "是", "科普"]])
    tables = find_tables(table_file(first, second))
    assert [(t.sheet, t.title_text) for t in tables] == [("10月", "10月"), ("11月", "11月")]


# --- where the data ends -----------------------------------------------------------------------

@pytest.mark.parametrize("word", ["合计", "总计", "小计", "说明：见下", "备注", "填表人：王老师", "审核人：李", "注：请于24日前报送",
                                  "合 计"])
def test_data_rows_end_at_a_summary_or_note_row(word):
    rows = [HEADER, [1, "甲小学", 1, 10, 5, "是", "科普"], [word, None, 1, 10, 5], [2, "乙小学", 1, 10, 5, "是", ""]]
    assert [r.cells["school"] for r in only_table(rows).rows] == ["甲小学"]


def test_summary_word_in_the_school_column_ends_the_table_too():
    rows = [HEADER, [1, "甲小学", 1, 10, 5, "是", "科普"], [None, "合计", 1, 10, 5]]
    assert len(only_table(rows).rows) == 1


def test_data_rows_end_at_a_blank_row_or_a_row_with_only_its_number():
    rows = [HEADER, [1, "甲小学", 1, 10, 5, "是", "科普"], [2, "乙小学", 1, 20, 6, "否", None],
            [3, None, None, "", None, None, "  "], [4, "丙小学", 1, 10, 5, "是", "科普"]]
    assert [r.row_number for r in only_table(rows).rows] == [2, 3]
    rows[3] = [None] * 7
    assert [r.row_number for r in only_table(rows).rows] == [2, 3]


def test_row_with_bad_values_is_still_a_data_row():
    rows = [HEADER, [2, None, None, "约1200", "约1100", "是", ""]]
    [row] = only_table(rows).rows
    assert row.cells["enrolled"] == "约1200"


def test_formula_error_cell_counts_as_content():
    rows = [HEADER, [1, "甲小学", 1, CellError("#REF!"), 5, "是", ""]]
    [row] = only_table(rows).rows
    assert row.cells["enrolled"] == CellError("#REF!")


def test_units_row_and_column_numbers_under_the_header_are_skipped():
    units = [None, None, "（所）", "（人）", "（人）", None, None]
    numbers = [1, 2, 3, 4, 5, 6, 7]
    table = only_table([HEADER, units, numbers, [1, "甲小学", 1, 10, 5, "是", "科普"]])
    assert [r.row_number for r in table.rows] == [4]


def test_ragged_short_rows_and_hostile_cells_do_not_crash():
    rows = [HEADER, [1, "甲小学"], [], [True, 3.5, CellError("nocache")]]
    table = only_table(rows)
    assert table.rows[0].cells["enrolled"] is None


def test_second_table_further_down_the_same_sheet():
    rows = [MONTH, HEADER, [1, "甲小学", 1, 10, 5, "是", "科普"], [None] * 7,
            ["（2022年11月）"], HEADER, [1, "甲小学", 1, 11, 6, "是", "科普"]]
    tables = find_tables(table_file(Sheet("Sheet1", rows)))
    assert [t.header_row for t in tables] == [2, 6]
    assert "11月" in tables[1].title_text and "10月" not in tables[1].title_text
    assert tables[1].rows[0].cells["enrolled"] == 11


# --- two-row headers ---------------------------------------------------------------------------

def _two_row_header_rows(blank_upper: bool):
    upper = ["序号", "单位名称", "城区开展课后服务学校数（所）", "学生数（人）", None if blank_upper else "学生数（人）",
             "“2+N”课后服务模式", None if blank_upper else "“2+N”课后服务模式"]
    lower = [None, None, None, "在校学生数", "参与课后服务学生数", "是否开展", "开展“N”项“拓展服务”具体项目名称"]
    data = [1, "安溪县城南中学", 1, 2159, 1918, "是", "作业辅导、体育活动、阅读、社团、劳动"]
    return [TITLE, MONTH, upper, lower, data, NOTE]


@pytest.mark.parametrize("with_merges", [True, False])
def test_two_row_header_with_parents_over_sub_columns(with_merges):
    merged = [(2, 3, 2, 4), (2, 5, 2, 6), (2, 0, 3, 0), (2, 1, 3, 1), (2, 2, 3, 2)] if with_merges else []
    table = only_table(_two_row_header_rows(blank_upper=True), merged)
    assert table.layout == "single" and table.header_row == 3
    [row] = table.rows
    assert row.row_number == 5
    assert row.columns == {"school": "B", "schools_count": "C", "enrolled": "D", "participating": "E",
                           "two_plus_n": "F", "services": "G"}
    assert "（2022年10月）" in table.title_text


def test_two_row_header_as_word_repeats_merged_text_in_each_cell():
    table = only_table(_two_row_header_rows(blank_upper=False))
    assert table.rows[0].columns["two_plus_n"] == "F" and table.rows[0].columns["services"] == "G"


MODE_UPPER = ["序号", "城区学校名称", "城区开展课后服务学校数（所）", "城区学校在校学生数（人）", "城区参与课后服务学生数（人）",
              "开展“2+N”课后服务模式情况（在对应模式下打“√”）", None, None, None, "开展“N”项“拓展服务”，具体服务项目名称"]
MODE_LOWER = [None, None, None, None, None, "2+1", "2+2", "2+3", "2+4及以上", None]
MODE_MERGES = [(0, 0, 1, 0), (0, 1, 1, 1), (0, 2, 1, 2), (0, 3, 1, 3), (0, 4, 1, 4), (0, 5, 0, 8), (0, 9, 1, 9)]


@pytest.mark.parametrize("merged", [MODE_MERGES, []])
def test_mode_sub_columns_give_modes_layout_and_the_marked_mode(merged):
    data = [1, "安溪县凤华小学", 1, 1695, 1438, None, None, "√", None, "1.书法\n2.合唱\n3.美术"]
    table = only_table([MODE_UPPER, MODE_LOWER, data], merged)
    assert table.layout == "modes" and table.header_row == 1
    [row] = table.rows
    assert row.row_number == 3
    assert row.mode == "2+3"
    assert row.mode_cells == {"2+1": None, "2+2": None, "2+3": "√", "2+N": None}
    assert row.columns["school"] == "B" and row.columns["services"] == "J" and row.columns["2+N"] == "I"
    assert "two_plus_n" not in row.cells


def test_mode_header_from_word_with_every_merged_cell_repeated():
    upper = [v if v is not None else MODE_UPPER[5] for v in MODE_UPPER]
    lower = [u if m is None else m for u, m in zip(MODE_UPPER, MODE_LOWER)]
    lower[5:9] = MODE_LOWER[5:9]
    data = ["1", "安溪县玉湖中学", "1", "1133", "997", "", "√", "", "", ""]
    [row] = only_table([upper, lower, data]).rows
    assert row.mode == "2+2" and row.cells["enrolled"] == "1133"


@pytest.mark.parametrize("mark", ["是", "√", "✓", "✔", "Y", "yes", "☑", "●", " √ "])
def test_any_usual_mark_selects_the_mode(mark):
    data = [1, "甲小学", 1, 100, 90, None, None, None, mark, None]
    assert only_table([MODE_UPPER, MODE_LOWER, data], MODE_MERGES).rows[0].mode == "2+N"


def test_unmarked_or_crossed_modes_give_no_mode():
    data = [1, "甲小学", 1, 100, 90, "×", None, "否", None, None]
    assert only_table([MODE_UPPER, MODE_LOWER, data], MODE_MERGES).rows[0].mode is None


@pytest.mark.parametrize("text,label", [("2+1", "2+1"), ("2＋3", "2+3"), ("2+4及以上", "2+N"), ("2+4以上", "2+N"),
                                        ("2+N", "2+N"), ("“2+n”模式", "2+N"), ("2+5", "2+N"), ("2+3模式", "2+3"),
                                        ("2+0", None), ("2+N模式开展情况", None), ("12+1", None)])
def test_mode_labels_are_normalised(text, label):
    assert mode_label(header_text(text)) == label


def test_column_letters_follow_excel():
    assert [column_letter(i) for i in (0, 2, 25, 26, 27, 701, 702)] == ["A", "C", "Z", "AA", "AB", "ZZ", "AAA"]


# --- the samples -------------------------------------------------------------------------------

def sample_rows(eml: Path):
    """The real parser and readers, then find_tables and interpret_row."""
    from mailbot.config import Limits
    from mailbot.errors import UnreadableFile
    from mailbot.mail.parse import parse_message
    from mailbot.tables.readers import read_attachment

    results = []
    for att in parse_message(eml.read_bytes()).attachments:
        try:
            files = read_attachment(att, Limits())
        except UnreadableFile:
            continue
        for tf in files:
            for table in find_tables(tf):
                results += [interpret_row(raw, table.layout) for raw in table.rows]
    return results


def _expected_cases():
    for expect in sorted(SAMPLES.glob("cases/*/expect.json")):
        rows = json.loads(expect.read_text(encoding="utf-8")).get("rows")
        if rows:
            yield pytest.param(expect.parent / "message.eml", rows, id=expect.parent.name)
    for expect in sorted(SAMPLES.glob("sequences/*/expect.json")):
        for i, message in enumerate(json.loads(expect.read_text(encoding="utf-8"))["messages"], start=1):
            yield pytest.param(expect.parent / f"{i:02d}.eml", message["rows"], id=f"{expect.parent.name}-{i:02d}")


@pytest.mark.parametrize("eml,expected", list(_expected_cases()))
def test_samples_give_the_expected_figures(eml, expected):
    results = sample_rows(eml)
    assert len(results) == len(expected)
    for result, want in zip(results, expected):
        if not want["ok"]:
            assert result.errors
            continue
        assert result.errors == []
        for key in ("schools_count", "enrolled", "participating", "two_plus_n", "n"):
            assert getattr(result, key) == want[key], key


# --- hostile grids -----------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_cells = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=8),
    st.sampled_from(HEADER + MODE_LOWER[5:9] + ["合计", "学校", "在校生", "参与人数", "√", "", " "]),
    st.builds(CellError, st.sampled_from(["#REF!", "nocache"])),
)
_merges = st.tuples(*[st.integers(-2, 8)] * 4)


@given(rows=st.lists(st.lists(_cells, max_size=11), max_size=9), merged=st.lists(_merges, max_size=4))
@settings(max_examples=300, deadline=None)
def test_any_grid_gives_tables_or_nothing_and_rows_interpret_without_crashing(rows, merged):
    for table in find_tables(table_file(Sheet("S", rows, merged))):
        assert table.layout in ("single", "modes")
        for raw in table.rows:
            assert set(raw.cells) <= {"school", "schools_count", "enrolled", "participating", "two_plus_n", "services"}
            assert 1 <= raw.row_number <= len(rows)
            result = interpret_row(raw, table.layout)
            assert result.ok == (not result.errors)


def test_several_marks_give_the_highest_mode():
    data = [1, "甲小学", 1, 100, 90, "√", None, "√", None, None]
    row = only_table([MODE_UPPER, MODE_LOWER, data], MODE_MERGES).rows[0]
    assert row.mode == "2+3" and row.mode_cells["2+1"] == "√"


def test_single_row_of_mode_columns_without_a_parent():
    header = ["学校名称", "在校学生数", "参与学生数", "2+1模式", "2+2模式", "2+3模式", "2+N模式", "拓展服务项目"]
    row = only_table([header, ["甲小学", 100, 90, None, "是", None, None, "书法、合唱"]]).rows[0]
    assert row.mode == "2+2" and row.columns["2+2"] == "E"


def test_header_repeated_inside_the_data_is_not_a_row():
    rows = [HEADER, [1, "甲小学", 1, 10, 5, "是", "科普"], HEADER, [2, "乙小学", 1, 10, 5, "是", "科普"]]
    assert [r.cells["school"] for r in only_table(rows).rows] == ["甲小学", "乙小学"]


def test_row_below_a_complete_header_that_only_looks_like_header_is_data():
    rows = [HEADER, [None, "拓展服务学校", None, None, None, "是", ""], [1, "甲小学", 1, 10, 5, "是", "科普"]]
    table = only_table(rows)
    assert table.header_row == 1 and [r.row_number for r in table.rows] == [2, 3]


# --- a header cell that names two columns (issue 10, SPEC 3.2) --------------------------------

BOTH = "是否开展“2+N”模式（是的请填写拓展服务项目）"


@pytest.mark.parametrize("both", [BOTH, "2+N模式及拓展服务项目名称", "是否实行2+N模式(项目名称)"])
def test_cell_naming_2n_and_services_is_the_2n_column_with_services_inline(both):
    table = only_table([["学校名称", "在校学生数", "参与课后服务学生数", both],
                        ["安溪县北门小学", 1878, 1797, "是，科普、美术、阅读"]])
    row = interpret_row(table.rows[0], table.layout)
    assert row.two_plus_n is True and row.n == 3 and row.services == ["科普", "美术", "阅读"]


def test_cell_naming_both_beside_a_services_column_is_the_2n_column():
    table = only_table([["学校名称", "在校学生数", "参与课后服务学生数", BOTH, "拓展服务项目名称"],
                        ["安溪县北门小学", 1878, 1797, "是", "科普、美术"]])
    row = interpret_row(table.rows[0], table.layout)
    assert row.two_plus_n is True and row.n == 2


def test_cell_naming_both_beside_a_2n_column_is_the_services_column():
    table = only_table([["学校名称", "在校学生数", "参与课后服务学生数", "是否开展“2+N”模式", BOTH],
                        ["安溪县北门小学", 1878, 1797, "是", "科普、美术"]])
    row = interpret_row(table.rows[0], table.layout)
    assert row.two_plus_n is True and row.n == 2
