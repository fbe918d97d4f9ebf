"""Put each row under a roster school, and check the sender may report for it (SPEC 3.4)."""

from __future__ import annotations

from mailbot.rules.model import RowResult
from mailbot.rules.roster import Roster


def identify_rows(rows: list[RowResult], sender_schools: list[str], roster: Roster, table_row_count: int) -> None:
    """Set `row.school` for every row it can, adding errors and warnings in Chinese.

    `sender_schools`: the schools the sender is registered for; `table_row_count`: data rows in the
    table these rows came from (the one-row fallback needs exactly one)."""
    for row in rows:
        written = row.school_as_written
        school = roster.match(written)
        where = f"工作表“{row.sheet}”第{row.row_number}行"
        if school is not None:
            if school.name in sender_schools:
                row.school = school.name
            else:
                row.school = school.name
                row.errors.append(
                    f"{where}：学校“{school.name}”的报送邮箱中没有本发件邮箱，不能代其报送。"
                    "请由该校登记的邮箱发送，或联系教育局登记新的邮箱。")
            continue
        if len(sender_schools) == 1 and table_row_count == 1:
            row.school = sender_schools[0]
            shown = f"“{written}”" if written else "空白"
            row.warnings.append(f"{where}：学校名称为{shown}，与名册不一致，已按发件邮箱记为“{row.school}”。"
                                "如有误请回复说明。")
            continue
        row.school = None
        if written:
            row.errors.append(f"{where}：学校名称“{written}”不在城区学校名册中，请填写学校全称（如“安溪县某某小学”）。")
        else:
            row.errors.append(f"{where}：未填写学校名称。")


def drop_repeated_rows(rows: list[RowResult]) -> list[RowResult]:
    """The same row sent twice in one message (the table as .xlsx and again as .docx) is recorded
    once; a second, different row for the same school and month is refused (the first stands)."""
    kept: list[RowResult] = []
    first: dict[tuple[str, str], RowResult] = {}
    for row in rows:
        if not row.ok or row.school is None:
            kept.append(row)
            continue
        key = (row.school, row.month or "")
        if key not in first:
            first[key] = row
            kept.append(row)
            continue
        earlier = first[key]
        same = (earlier.schools_count, earlier.enrolled, earlier.participating, earlier.two_plus_n, earlier.n,
                earlier.services) == (row.schools_count, row.enrolled, row.participating, row.two_plus_n, row.n,
                                      row.services)
        if same:
            continue
        row.errors.append(
            f"工作表“{row.sheet}”第{row.row_number}行：本邮件中“{row.school}”已有一行数据"
            f"（工作表“{earlier.sheet}”第{earlier.row_number}行），两行数字不一致，已登记前一行。"
            "如需更正，请只发送一份正确的表格。")
        kept.append(row)
    return kept
