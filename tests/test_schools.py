import pytest

from mailbot.config import School
from mailbot.rules.identify import drop_repeated_rows, identify_rows
from mailbot.rules.model import RowResult
from mailbot.rules.roster import Roster, normalise_name

ROSTER = Roster([
    School("安溪县东门小学", "primary", ["dm@163.com"]),
    School("安溪县东门小学城西分校", "primary", ["dm@163.com"], aliases=["东门小学城西校区"]),
    School("安溪县育才中学（初中部）", "middle", ["yc@163.com"], aliases=["育才中学初中部"]),
])


@pytest.mark.parametrize("written, expected", [
    ("安溪县东门小学", "安溪县东门小学"),
    (" 东门小学 ", "安溪县东门小学"),
    ("福建省泉州市安溪县东门小学（盖章）", "安溪县东门小学"),
    ("东 门 小 学", "安溪县东门小学"),
    ("东门小学城西校区", "安溪县东门小学城西分校"),
    ("安溪县育才中学(初中部)", "安溪县育才中学（初中部）"),
    ("育才中学【初中部】", "安溪县育才中学（初中部）"),
    ("ＡＢ东门小学", None),
    ("东门小", None),  # never fuzzy
    ("", None),
])
def test_exact_match_after_normalising(written, expected):
    school = ROSTER.match(written)
    assert (school.name if school else None) == expected


def test_normalise_is_idempotent():
    for name in ["福建省安溪县东门小学（盖章）", "育才中学 (初中部)"]:
        assert normalise_name(normalise_name(name)) == normalise_name(name)


def row(name, n=1):
    return RowResult(sheet="Sheet1", row_number=4 + n, school_as_written=name, schools_count=1, enrolled=100,
                     participating=90, two_plus_n=True, n=3, month="2022-10")


def test_sender_must_be_registered_for_the_school():
    rows = [row("东门小学"), row("育才中学初中部", 2)]
    identify_rows(rows, ["安溪县东门小学", "安溪县东门小学城西分校"], ROSTER, 2)
    assert rows[0].school == "安溪县东门小学" and rows[0].ok
    assert not rows[1].ok and "报送邮箱" in rows[1].errors[0]


def test_one_row_from_a_one_school_sender_is_that_school_with_a_warning():
    rows = [row("育才初中")]
    identify_rows(rows, ["安溪县育才中学（初中部）"], ROSTER, 1)
    assert rows[0].school == "安溪县育才中学（初中部）" and rows[0].ok and rows[0].warnings


def test_unknown_name_from_group_address_is_an_error():
    rows = [row("城西小学")]
    identify_rows(rows, ["安溪县东门小学", "安溪县东门小学城西分校"], ROSTER, 1)
    assert rows[0].school is None and not rows[0].ok


def test_same_row_twice_is_recorded_once_and_a_conflicting_one_refused():
    a, b, c = row("安溪县东门小学"), row("安溪县东门小学", 2), row("安溪县东门小学", 3)
    for r in (a, b, c):
        r.school = "安溪县东门小学"
    c.enrolled = 200
    kept = drop_repeated_rows([a, b, c])
    assert kept == [a, c] and a.ok and not c.ok
