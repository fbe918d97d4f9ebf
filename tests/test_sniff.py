import zipfile

import pytest

from fixtures_tables import build_zip, make_xlsx, rename_ole_stream, sample_xls
from mailbot.tables.sniff import sniff_format


@pytest.mark.parametrize("data, kind", [
    (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 40, "rar"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40, "7z"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image"),
    (b"GIF89a\x01\x00\x01\x00", "image"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image"),
    (b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00\x00\x00" + b"\x00" * 20, "image"),
    (b"{\\rtf1\\ansi\\ansicpg936 ", "rtf"),
    (b"", "empty"),
    (b"\x00\x01\x02\x03\x04binary\xff\xfe", "unknown"),
    (b"PK\x03\x04\x14\x00truncated", "corrupt"),
])
def test_magic_bytes_decide_the_kind(data, kind):
    assert sniff_format(data, "汇总表.xlsx") == kind


def test_xlsx_is_found_by_content_whatever_the_name():
    data = make_xlsx([["学校名称", "在校学生数"]])
    assert sniff_format(data, "汇总表.pdf") == "xlsx"
    assert sniff_format(data, None) == "xlsx"


def test_macro_workbook_is_xlsm():
    parts = {"xl/workbook.xml": b"<workbook/>", "xl/vbaProject.bin": b"\x00" * 10}
    assert sniff_format(build_zip(parts), "a.xlsm") == "xlsm"
    assert sniff_format(make_xlsx([["x"]]), "a.xlsm") == "xlsm"


def test_docx_ods_and_plain_zip():
    assert sniff_format(build_zip({"word/document.xml": b"<w:document/>"}), "x") == "docx"
    ods = build_zip({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet",
                     "content.xml": b"<office:document-content/>"}, compression=zipfile.ZIP_STORED)
    assert sniff_format(ods, "x.ods") == "ods"
    odt = build_zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"},
                    compression=zipfile.ZIP_STORED)
    assert sniff_format(odt, "x.odt") == "odf_text"
    assert sniff_format(build_zip({"a/汇总表.xlsx": b"..."}), "x.zip") == "zip"


def test_ole_files_by_their_streams():
    xls = sample_xls()
    assert sniff_format(xls, "a.xls") == "xls"
    assert sniff_format(xls, "a.et") == "et"
    doc = rename_ole_stream(xls, "Workbook", "WordDocument")
    assert sniff_format(doc, "报表.doc") == "doc"
    assert sniff_format(doc, "报表.wps") == "wps"
    assert sniff_format(rename_ole_stream(xls, "Workbook", "EncryptedPackage"), "a.xlsx") == "encrypted"
    assert sniff_format(xls[:600], "a.xls") == "corrupt"


@pytest.mark.parametrize("text, encoding", [
    ("序号,学校名称,在校学生数\r\n1,安溪县北山中学,\"1,638\"\r\n", "gbk"),
    ("序号\t学校名称\t在校学生数\n1\t北山中学\t1638\n", "utf-8"),
    ("\ufeff序号;学校名称;在校学生数\n1;北山中学;1638\n", "utf-8"),
])
def test_csv_text_in_gbk_or_utf8(text, encoding):
    assert sniff_format(text.encode(encoding), "a.csv") == "csv"


def test_text_without_columns_is_not_csv():
    assert sniff_format("您好，附件是我校的汇总表。\n谢谢！".encode("gbk"), "a.txt") == "unknown"


def test_csv_starting_with_bm_is_not_a_bitmap():
    assert sniff_format(b"BM,school,enrolled\n1,a,2\n", "a.csv") == "csv"
