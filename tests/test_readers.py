import io
import zipfile

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures_tables import (SAMPLES, biff_record, build_zip, edit_part, make_xlsx, rename_ole_stream,
                             sample_attachments, sample_xls, shrink_declared_size, sub, zip_parts,
                             zip_with_cp936_names)
from mailbot.config import Limits
from mailbot.errors import UnreadableFile
from mailbot.rules.model import Attachment, CellError
from mailbot.tables import guards
from mailbot.tables.readers import read_attachment
from mailbot.tables.xls import scan_biff

LIMITS = Limits()
HEADER = ["序号", "城区学校名称", "在校学生数（人）", "参与课后服务学生数（人）", "是否开展“2+N”模式"]


def read(data: bytes, name: str = "汇总表.xlsx", limits: Limits = LIMITS):
    return read_attachment(Attachment(name, "application/octet-stream", data), limits)


def refused(data: bytes, name: str = "汇总表.xlsx", limits: Limits = LIMITS) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as caught:
        read(data, name, limits)
    return caught.value


def all_cells(tables):
    return [cell for table in tables for sheet in table.sheets for row in sheet.rows for cell in row]


# --- every sample's table comes out as a grid -------------------------------------------------

# (message, format, file name, a header word, school, enrolled, participating)
SAMPLE_TABLES = [
    ("cases/001-*/message.eml", "xlsx", "安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx", "城区学校名称", "安溪县北门小学", 1878, 1797),
    ("cases/002-*/message.eml", "xlsx", "凤华小学10月课后服务汇总表.xlsx", "2+4及以上", "安溪县凤华小学", 1695, 1438),
    ("cases/003-*/message.eml", "xls", "培文中学课后服务报表.xls", "城区学校名称", "安溪县培文中学", "1,113", "960人"),
    ("cases/004-*/message.eml", "xlsx", "城南中学10月份课后服务开展情况汇总表.xlsx", "单位名称", "安溪县城南中学", 2159, 1918),
    ("cases/005-*/message.eml", "xlsx", "安溪县玉湖小学课后服务开展情况汇总表（已填）.xlsx", "城区学校名称", "安溪县玉湖小学", 885, 744),
    ("cases/006-*/message.eml", "docx", "玉湖中学10月份课后服务开展情况汇总表.docx", "2+2", "安溪县玉湖中学", "1133", "997"),
    ("cases/007-*/message.eml", "xlsx", "城南实验小学10月课后服务汇总表.xlsx", "城区学校名称", "安溪县城南实验小学", 2308, 2228),
    ("cases/011-*/message.eml", "xlsx", "培英小学10月份课后服务汇总表.xlsx", "城区学校名称", "安溪县培英小学", 1417, 1554),
    ("cases/012-*/message.eml", "xlsx", "东门小学教育集团10月份课后服务汇总表.xlsx", "城区学校名称", "安溪县东门小学", 1850, 1750),
    ("cases/013-*/message.eml", "xlsx", "溪东中学12月份课后服务汇总表.xlsx", "城区学校名称", "安溪县溪东中学", 1439, 1350),
    ("cases/017-*/message.eml", "csv", "北山中学10月份课后服务开展情况.csv", "城区学校名称", "安溪县北山中学", "1,638", "1,471"),
    ("sequences/001-*/01.eml", "xlsx", "鹤前中学10月份课后服务开展情况汇总表.xlsx", "城区学校名称", "安溪县鹤前中学", 1947, 1910),
    ("sequences/001-*/02.eml", "xlsx", "鹤前中学10月份课后服务开展情况汇总表.xlsx", "城区学校名称", "安溪县鹤前中学", 1947, 1887),
    ("sequences/002-*/01.eml", "xlsx", "第六实验小学10月份课后服务汇总表.xlsx", "城区学校名称", "安溪县第六实验小学", 2823, 2738),
    ("sequences/002-*/02.eml", "xlsx", "育才中学初中部10月份课后服务汇总表.xlsx", "2+3", "安溪县育才中学（初中部）", 2339, 1976),
]


@pytest.mark.parametrize("pattern, fmt, filename, header_word, school, enrolled, participating", SAMPLE_TABLES)
def test_sample_table_reads_as_grid(pattern, fmt, filename, header_word, school, enrolled, participating):
    attachments = sample_attachments(next(SAMPLES.glob(pattern)))
    tables = [table for att in attachments for table in read_attachment(att, LIMITS)]
    assert [(t.format, t.filename) for t in tables] == [(fmt, filename)]
    rows = [row for sheet in tables[0].sheets for row in sheet.rows]
    assert any(header_word in row for row in rows)
    data_row = next(row for row in rows if school in row)
    position = data_row.index(school)
    assert data_row[position + 2:position + 4] == [enrolled, participating]


def test_sample_titles_and_second_sheet_are_kept():
    case_005 = sample_attachments(next(SAMPLES.glob("cases/005-*/message.eml")))[0]
    (table,) = read_attachment(case_005, LIMITS)
    assert [sheet.name for sheet in table.sheets] == ["填表说明", "汇总表"]
    docx_case = sample_attachments(next(SAMPLES.glob("cases/006-*/message.eml")))[0]
    (sheet,) = read_attachment(docx_case, LIMITS)[0].sheets
    assert [row[0] for row in sheet.rows[:4]] == ["附件2", "城区义务教育阶段学校课后服务开展情况汇总表", "（2022年10月）",
                                                   "填报单位：安溪县玉湖中学（盖章）　　　　　　　　填报时间：2022年10月18日"]


def test_sample_merged_two_row_header_is_reported():
    case_004 = sample_attachments(next(SAMPLES.glob("cases/004-*/message.eml")))
    sheet = read_attachment(case_004[-1], LIMITS)[0].sheets[0]
    assert (3, 3, 3, 4) in sheet.merged  # 学生数（人） over D4:E4
    assert (3, 1, 4, 1) in sheet.merged  # 单位名称 over B4:B5
    assert sheet.rows[3][3] == "学生数（人）" and sheet.rows[4][3] == "在校学生数"


def test_zip_bomb_sample_is_refused_from_its_directory_before_anything_is_inflated(monkeypatch):
    # What makes the refusal take milliseconds is that no member is inflated: the central
    # directory's declared sizes decide (a wall-clock bound would flake on a busy machine).
    (attachment,) = sample_attachments(next(SAMPLES.glob("cases/014-*/message.eml")))
    inflated = []
    monkeypatch.setattr(guards, "inflate_member", lambda *args: inflated.append(args) or pytest.fail("inflated"))
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kw: pytest.fail("a member was opened"))
    problem = refused(attachment.data, attachment.filename)
    assert inflated == [] and "declares" in problem.detail
    assert problem.kind == "zip_bomb"
    assert "凤华中学10月课后服务汇总表.xlsx" in problem.message


# --- spreadsheet details ---------------------------------------------------------------------

def test_wrong_dimension_from_wps_still_gives_every_cell():
    data = make_xlsx([HEADER, [1, "安溪县北门小学", 1878, 1797, "是"]])
    data = edit_part(data, "xl/worksheets/sheet1.xml", sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1"/>'))
    assert b'<dimension ref="A1"/>' in zip_parts(data)["xl/worksheets/sheet1.xml"]
    rows = read(data)[0].sheets[0].rows
    assert rows == [HEADER, [1, "安溪县北门小学", 1878, 1797, "是"]]


def test_error_values_and_uncached_formulas_are_cell_errors():
    data = make_xlsx([["学校", "在校学生数", "参与"], ["北门小学", 10, 5]])
    error_cells = (b'<c r="B2" t="e"><f>A9/0</f><v>#DIV/0!</v></c><c r="C2"><f>SUM(X1:X3)</f></c>'
                   b'<c r="D2" t="e"><v>#REF!</v></c>')
    data = edit_part(data, "xl/worksheets/sheet1.xml", sub(rb'<c r="B2"[^>]*>.*?</c><c r="C2"[^>]*>.*?</c>', error_cells))
    rows = read(data)[0].sheets[0].rows
    assert rows[1] == ["北门小学", CellError("#DIV/0!"), CellError("nocache"), CellError("#REF!")]


def test_values_blanks_and_trailing_blank_area():
    from datetime import datetime
    data = make_xlsx([["a", None, 1.5, True, datetime(2022, 10, 21)], [None] * 5, ["  spaced  "]], merged=("A1:B1",))
    sheet = read(data)[0].sheets[0]
    assert sheet.rows == [["a", None, 1.5, True, datetime(2022, 10, 21)], [None] * 5, ["  spaced  ", None, None, None, None]]
    assert sheet.merged == [(0, 0, 0, 1)]


def test_cell_far_away_does_not_allocate_a_huge_grid():
    data = make_xlsx([HEADER, [1, "安溪县北门小学", 1878, 1797, "是"]])
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    data = edit_part(data, "xl/worksheets/sheet1.xml", sub(rb"</sheetData>", far))
    rows = read(data, limits=Limits(max_rows=50))[0].sheets[0].rows
    assert rows == [HEADER, [1, "安溪县北门小学", 1878, 1797, "是"]]


def test_rows_and_columns_are_capped():
    data = make_xlsx([[f"r{r}c{c}" for c in range(150)] for r in range(30)])
    rows = read(data, limits=Limits(max_rows=20))[0].sheets[0].rows
    assert len(rows) == 20 and len(rows[0]) == 100


def test_hidden_sheets_are_left_out():
    workbook_data = make_xlsx([HEADER], extra_sheets={"旧表": [HEADER]})
    data = edit_part(workbook_data, "xl/workbook.xml", sub('(name="旧表"[^>]*?)state="visible"'.encode(), rb'\1state="hidden"'))
    assert [sheet.name for sheet in read(data)[0].sheets] == ["Sheet1"]


def test_xls_sample_reads_the_same_as_calamine_would():
    from mailbot.tables.xlsx import read_with_calamine
    xls = sample_xls()
    assert read(xls, "a.xls")[0].sheets == list(read_with_calamine(xls, LIMITS, "a.xls").values())


def test_biff_scan_finds_errors_passwords_and_extent():
    bof = biff_record(0x0809, b"\x00\x06\x10\x00" + b"\x00" * 12)
    boolerr_error = biff_record(0x0205, bytes([3, 0, 2, 0, 15, 0, 0x17, 1]))  # C4 = #REF!
    far_number = biff_record(0x0203, b"\xff\xff\xff\x00" + b"\x00" * 10)
    facts = scan_biff(bof + boolerr_error + bof + far_number)
    assert facts.has_errors and facts.dense_cells == 65536 * 256 and not facts.encrypted
    assert scan_biff(bof + biff_record(0x002F, b"\x01\x00")).encrypted


# --- other formats ---------------------------------------------------------------------------

def make_docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("城区义务教育阶段学校课后服务开展情况汇总表（2022年10月）")
    table = document.add_table(rows=3, cols=4)
    table.cell(0, 0).merge(table.cell(1, 0)).text = "学校名称"
    table.cell(0, 1).merge(table.cell(0, 2)).text = "学生数"
    table.cell(1, 1).text, table.cell(1, 2).text = "在校学生数", "参与学生数"
    table.cell(0, 3).text = "拓展服务"
    table.cell(2, 0).text, table.cell(2, 1).text, table.cell(2, 2).text = "安溪县北门小学", "1878", "1797"
    table.cell(2, 3).text = "科普"
    table.cell(2, 3).add_paragraph("文艺")
    document.add_paragraph("说明")
    document.add_table(rows=1, cols=2).cell(0, 0).text = "第二张表"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_tables_with_merged_cells_and_title():
    (table,) = read(make_docx(), "汇总表.docx")
    first, second = table.sheets
    assert first.name == "表格1" and second.name == "表格2"
    assert first.rows == [
        ["城区义务教育阶段学校课后服务开展情况汇总表（2022年10月）", None, None, None],
        ["学校名称", "学生数", None, "拓展服务"],
        [None, "在校学生数", "参与学生数", None],
        ["安溪县北门小学", "1878", "1797", "科普\n文艺"],
    ]
    assert (1, 0, 2, 0) in first.merged and (1, 1, 1, 2) in first.merged
    assert second.rows == [["说明"], ["第二张表"]]  # the blank second column is trimmed


def test_docx_without_tables_has_no_sheets():
    document = docx.Document()
    document.add_paragraph("您好，汇总表见正文。")
    out = io.BytesIO()
    document.save(out)
    assert read(out.getvalue(), "a.docx")[0].sheets == []


def test_csv_gbk_with_excel_quoting_and_semicolons():
    text = "序号,学校名称,在校学生数\r\n1,安溪县北山中学,\"1,638\"\r\n"
    (table,) = read(text.encode("gbk"), "北山中学.csv")
    assert table.format == "csv" and table.sheets[0].name == "北山中学"
    assert table.sheets[0].rows[1] == ["1", "安溪县北山中学", "1,638"]
    (table,) = read("\ufeffa;b\n1;2\n".encode("utf-8"), "x.csv")
    assert table.sheets[0].rows == [["a", "b"], ["1", "2"]]


# --- archives --------------------------------------------------------------------------------

def test_zip_with_cp936_names_gives_the_real_file_names():
    xlsx = make_xlsx([HEADER])
    data = zip_with_cp936_names({"溪东中学12月份汇总表.xlsx": xlsx, "__MACOSX/._溪东中学.xlsx": b"junk",
                                 ".DS_Store": b"junk", "说明.txt": "请查收".encode("gbk")})
    tables = read(data, "溪东中学.zip")
    assert [t.filename for t in tables] == ["溪东中学12月份汇总表.xlsx"]
    assert tables[0].sheets[0].rows == [HEADER]


def test_zip_of_unreadable_files_names_the_member():
    doc = rename_ole_stream(sample_xls(), "Workbook", "WordDocument")
    problem = refused(build_zip({"报表.doc": doc}), "材料.zip")
    assert problem.kind == "doc"
    assert "《材料.zip》" in problem.message and "《报表.doc》" in problem.message and ".docx" in problem.message
    assert refused(build_zip({}), "空.zip").kind == "no_table"
    nested = refused(build_zip({"inner.zip": build_zip({"a.xlsx": make_xlsx([HEADER])})}), "a.zip")
    assert nested.kind == "nested_archive" and "《inner.zip》" in nested.message and "一层" in nested.message


# --- hostile and unreadable files ------------------------------------------------------------

def with_doctype(xml: bytes) -> bytes:
    return BILLION_LAUGHS + (xml.split(b"?>", 1)[1] if xml.startswith(b"<?xml") else xml)


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>')


def test_entity_declarations_are_refused_not_expanded():
    data = make_xlsx([HEADER])
    bomb = edit_part(data, "xl/workbook.xml", with_doctype)
    problem = refused(bomb)
    assert problem.kind == "xml_entities" and "XML" in problem.message
    utf16 = edit_part(data, "[Content_Types].xml", lambda xml: (BILLION_LAUGHS.decode() + "<Types/>").encode("utf-16"))
    assert refused(utf16).kind == "xml_entities"
    docx_bomb = edit_part(make_docx(), "word/document.xml", with_doctype)
    assert refused(docx_bomb, "a.docx").kind == "xml_entities"


def test_directory_that_understates_a_member_is_refused():
    data = make_xlsx([HEADER])
    # A member that inflates a little past its entry is damaged (a bad CRC, a cut directory): it is
    # called corrupt, not a zip bomb (issue 10); one that keeps inflating is a bomb.
    assert refused(shrink_declared_size(data, "xl/worksheets/sheet1.xml", 100)).kind == "corrupt"
    padded = edit_part(data, "xl/worksheets/sheet1.xml", lambda xml: xml + b" " * 3_000_000)
    assert refused(shrink_declared_size(padded, "xl/worksheets/sheet1.xml", 2000)).kind == "zip_bomb"


def test_member_with_a_bad_crc_is_corrupt_not_a_bomb():
    data = bytearray(make_xlsx([HEADER]))
    position = data.find(b"PK\x01\x02")
    while position != -1:  # every central directory entry's CRC, as a damaged copy has it
        data[position + 16] ^= 0xFF
        position = data.find(b"PK\x01\x02", position + 4)
    problem = refused(bytes(data))
    assert problem.kind == "corrupt" and "庞大" not in problem.message and "损坏" in problem.message


def test_shared_string_count_no_file_could_hold_is_refused():
    sample = sample_attachments(next(SAMPLES.glob("cases/001-*/message.eml")))[0].data
    data = edit_part(sample, "xl/sharedStrings.xml", sub(rb'uniqueCount="\d+"', b'uniqueCount="4000000000"'))
    assert refused(data).kind == "corrupt"


@pytest.mark.parametrize("data, name, kind, says", [
    (b"Rar!\x1a\x07\x00" + b"\x00" * 30, "汇总表.rar", "rar", ".zip"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, "汇总表.7z", "7z", ".xlsx"),
    (b"%PDF-1.4\n", "盖章版.pdf", "pdf", "扫描件"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "IMG_0001.jpg", "image", "照片"),
    (b"", "汇总表.xlsx", "empty", "空文件"),
])
def test_unreadable_kinds_say_what_to_send(data, name, kind, says):
    problem = refused(data, name)
    assert problem.kind == kind and f"《{name}》" in problem.message and says in problem.message


def test_encrypted_doc_and_wps_ole_files():
    xls = sample_xls()
    assert refused(rename_ole_stream(xls, "Workbook", "EncryptedPackage"), "汇总表.xlsx").kind == "encrypted"
    doc = rename_ole_stream(xls, "Workbook", "WordDocument")
    problem = refused(doc, "汇总表.doc")
    assert problem.kind == "doc" and "旧版 Word（.doc）" in problem.message
    assert refused(doc, "汇总表.wps").kind == "wps"


def test_truncated_and_damaged_files_are_corrupt():
    data = make_xlsx([HEADER])
    assert refused(data[: len(data) // 2]).kind == "corrupt"
    assert refused(sample_xls()[:3000], "a.xls").kind == "corrupt"
    broken = edit_part(data, "xl/worksheets/sheet1.xml", lambda xml: xml[:200])
    assert refused(broken).kind == "corrupt"


def test_too_large_attachment_is_refused_before_reading():
    problem = refused(make_xlsx([HEADER]), limits=Limits(max_attachment_bytes=1000))
    assert problem.kind == "too_large"


def test_uncompressed_cap_applies_to_small_files_too():
    data = make_xlsx([["x" * 5000] for _ in range(50)])
    assert refused(data, limits=Limits(max_uncompressed_bytes=20_000)).kind == "zip_bomb"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_xlsx_never_raises_anything_else(data):
    original = _VALID_XLSX
    position = data.draw(st.integers(0, len(original) - 1))
    choice = data.draw(st.sampled_from(["flip", "truncate", "garbage"]))
    if choice == "flip":
        damaged = original[:position] + bytes([original[position] ^ data.draw(st.integers(1, 255))]) + original[position + 1:]
    elif choice == "truncate":
        damaged = original[:position]
    else:
        damaged = original[:position] + data.draw(st.binary(max_size=64)) + original[position:]
    try:
        tables = read(damaged)
    except UnreadableFile as problem:
        assert problem.message
    else:
        assert all(table.format == "xlsx" for table in tables)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512), st.sampled_from(["a.xlsx", "a.xls", "a.csv", "a.doc", None]))
def test_arbitrary_bytes_never_raise_anything_else(data, name):
    try:
        read(data, name)
    except UnreadableFile as problem:
        assert problem.kind and problem.message


_VALID_XLSX = make_xlsx([HEADER, [1, "安溪县北门小学", 1878, 1797, "是"]])


# --- real-world files (issue 10); built by tests/corpus/files.py --------------------------------

from corpus import files as corpus_files  # noqa: E402


def grid_values(tables):
    return [row for table in tables for sheet in table.sheets for row in sheet.rows]


def test_small_xls_in_the_mini_stream_reads():
    (table,) = read(corpus_files.small_xls(), "培文中学.xls")
    assert table.format == "xls" and any("安溪县培文中学" in row for row in grid_values([table]))


def test_cyclic_sector_chain_is_refused_as_corrupt_without_xlrd_looping(monkeypatch):
    # xlrd's own compound-document reader loops forever on this file; xlrd only ever sees the
    # Workbook stream olefile took out, so it can no longer reach that loop at all.
    import xlrd.compdoc

    class ReachedCompDoc(BaseException):  # no reader's `except Exception` may hide it
        pass

    def never(*args, **kwargs):
        raise ReachedCompDoc("xlrd must not read the compound file itself")

    monkeypatch.setattr(xlrd.compdoc, "CompDoc", never)
    try:
        tables = read(corpus_files.cyclic_xls(), "坏表.xls")
    except UnreadableFile as problem:
        assert problem.kind == "corrupt"
    else:  # olefile read the stream within its size: the table is all there
        assert any("安溪县培文中学" in row for row in grid_values(tables))
    assert read(corpus_files.small_xls(), "好表.xls")


def test_libreoffice_ods_with_two_sheets_is_read_not_called_a_bomb():
    (table,) = read(corpus_files.libreoffice_ods(), "汇总表.ods")
    assert any("安溪县北门小学" in row for row in grid_values([table]))


def test_ods_counts_repeated_rows_only_up_to_the_content():
    from mailbot.tables.xlsx import ods_dense_cells
    content = zip_parts(corpus_files.libreoffice_ods())["content.xml"]
    assert ods_dense_cells(content) == 4 * 6  # the widest sheet's real cells, not 2 x 1,048,576 rows
    many = {"a": [["x"]], "b": [["y"] * 3 for _ in range(5)]}
    assert ods_dense_cells(zip_parts(corpus_files.libreoffice_ods(many))["content.xml"]) == 15
    repeated = content.replace(b'<table:table-row table:style-name="ro1"><table:table-cell office:value-type="string"',
                               b'<table:table-row table:number-rows-repeated="900000"><table:table-cell '
                               b'office:value-type="string"', 1)
    assert ods_dense_cells(repeated) >= 900_000  # repeated rows that have content are cells


def test_ods_with_basic_macros_is_read_a_doctype_alone_declares_nothing():
    (table,) = read(corpus_files.libreoffice_ods(basic_macros=True), "带宏.ods")
    assert any("安溪县北门小学" in row for row in grid_values([table]))
    assert refused(corpus_files.libreoffice_ods(basic_macros=True, entity=True), "x.ods").kind == "xml_entities"


@pytest.mark.parametrize("build, name, kind, words", [
    (corpus_files.xlsb, "汇总表.xlsb", "xlsb", ".xlsb"),
    (corpus_files.odt, "汇总表.odt", "odf_text", "OpenDocument"),
    (corpus_files.fods, "汇总表.fods", "fods", ".fods"),
    (corpus_files.biff2_xls, "汇总表.xls", "biff_old", "Excel 4.0"),
    (corpus_files.html_as_xls, "汇总表.xls", "html", "网页"),
])
def test_unreadable_formats_are_named_for_what_they_are(build, name, kind, words):
    problem = refused(build(), name)
    assert problem.kind == kind and words in problem.message and ".xlsx" in problem.message
    assert "照片" not in problem.message


def test_zip_of_photos_says_what_it_held():
    problem = refused(corpus_files.zip_of({"盖章表.jpg": corpus_files.photo(), "说明.jpg": corpus_files.photo()}),
                      "材料.zip")
    assert problem.kind == "image"  # not a try at sending the table: it never fails a good message
    assert "《材料.zip》" in problem.message and "《盖章表.jpg》" in problem.message and "没有找到表格文件" in problem.message


def test_streaming_scan_finds_what_the_regex_walk_found():
    from mailbot.tables.xlsx import scan_sheet_xml
    xml = (b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
           b'<row r="2"><c r="B2" t="e"><f>1/0</f><v>#DIV/0!</v></c><c t="s"><v>0</v></c>'
           b'<c r="E2"><f>A1</f></c><c r="F2" s="3"/></row><row><c><is><t>x</t></is></c></row>'
           b"</sheetData></worksheet>")
    scan = scan_sheet_xml(xml)
    assert (scan.rows, scan.cols) == (3, 5)
    assert scan.errors == {(1, 1): CellError("#DIV/0!"), (1, 4): CellError("nocache")}
    prefixed = xml.replace(b"<worksheet xmlns=", b"<x:worksheet xmlns:x=").replace(b"<row", b"<x:row") \
        .replace(b"</row", b"</x:row").replace(b"<c ", b"<x:c ").replace(b"<c>", b"<x:c>").replace(b"</c>", b"</x:c>") \
        .replace(b"<f>", b"<x:f>").replace(b"</f>", b"</x:f>").replace(b"<v>", b"<x:v>").replace(b"</v>", b"</x:v>") \
        .replace(b"<is>", b"<x:is>").replace(b"</is>", b"</x:is>").replace(b"<sheetData>", b"<x:sheetData>") \
        .replace(b"</sheetData></worksheet>", b"</x:sheetData></x:worksheet>")
    assert scan_sheet_xml(prefixed) == scan


def test_formula_heavy_workbook_keeps_its_errors():
    (table,) = read(corpus_files.formula_heavy_xlsx(200), "公式.xlsx")
    cells = all_cells([table])
    assert CellError("nocache") in cells and "安溪县北门小学" in cells  # openpyxl caches no values


def test_a_file_over_its_time_budget_costs_that_file_only(monkeypatch):
    from mailbot.ingest import isolation
    from mailbot.tables import locate

    def slow(table_file):
        if table_file.filename == "慢.xlsx":
            import time
            while True:
                time.sleep(0.01)
        return real(table_file)

    real = locate.find_tables
    monkeypatch.setattr(locate, "find_tables", slow)
    slow_one = isolation.extract_attachment(Attachment("慢.xlsx", XLSX_TYPE, corpus_files.xlsx()), LIMITS, 0.2)
    assert slow_one.unreadable.kind == "too_slow" and "《慢.xlsx》" in slow_one.unreadable.message
    good = isolation.extract_attachment(Attachment("好.xlsx", XLSX_TYPE, corpus_files.xlsx()), LIMITS, 0.2)
    assert good.unreadable is None and good.tables


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_xml_parts_of_a_damaged_workbook_are_never_read_as_csv():
    # Found by fuzzing: a flipped byte in the name xl/workbook.xml made the file a plain zip, and its
    # XML parts (commas in attributes) came out as CSV tables.
    parts = zip_parts(make_xlsx([HEADER]))
    parts["xl/workbook.xmX"] = parts.pop("xl/workbook.xml")
    parts["[Content_Types].xmX"] = parts.pop("[Content_Types].xml")
    problem = refused(build_zip(parts), "汇总表.xlsx")
    assert problem.kind in ("unknown", "corrupt") and "网页" not in problem.message
