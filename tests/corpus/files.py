"""Table files in the shapes other projects' test suites hold, built in memory.

Each function returns the bytes of one file. The shapes are the ones that broke mailbot (issue 10):
what LibreOffice, WPS and old Excel write, and damage seen in the wild.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl

from corpus.cfb import compound_file, cycle_mini_chain

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
HEADER = ["学校名称", "开展课后服务学校数（所）", "在校学生数（人）", "参与课后服务学生数（人）", "是否落实“2+N”模式",
          "拓展服务项目名称"]
ROW = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]
TITLE = ["城区义务教育阶段学校课后服务开展情况汇总表"]
MONTH = ["（2022年10月）"]


def xlsx(rows: list[list] | None = None, *, sheets: dict[str, list[list]] | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, sheet_rows in (sheets or {"汇总表": [TITLE, MONTH, HEADER, *(rows or [ROW])]}).items():
        sheet = workbook.create_sheet(name)
        for row in sheet_rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@functools.lru_cache(maxsize=None)  # several cases carry it; building one takes seconds
def formula_heavy_xlsx(extra_rows: int = 12_000) -> bytes:
    """A valid workbook whose sheet has formulas and an error cell, so no quick scan applies: the
    table, then thousands of rows of worked figures below a blank row (a school's own sums)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "汇总表"
    for row in [TITLE, MONTH, HEADER, ROW, []]:
        sheet.append(row)
    for index in range(6, 6 + extra_rows):
        sheet.append(["计算", index, f"=B{index}*2", f"=C{index}+1", "=1/0" if index == 6 else "备注", "x" * 8])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _zip(members: dict[str, bytes], stored_first: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if stored_first:
            archive.writestr(zipfile.ZipInfo(stored_first), members[stored_first], zipfile.ZIP_STORED)
        for name, content in members.items():
            if name != stored_first:
                archive.writestr(name, content)
    return out.getvalue()


_ODS_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" office:version="1.3"')


def _ods_cell(value) -> str:
    if value is None:
        return "<table:table-cell/>"
    if isinstance(value, (int, float)):
        return (f'<table:table-cell office:value-type="float" office:value="{value}" calcext:value-type="float">'
                f"<text:p>{value}</text:p></table:table-cell>")
    return (f'<table:table-cell office:value-type="string" calcext:value-type="string"><text:p>{escape(str(value))}'
            "</text:p></table:table-cell>")


def libreoffice_ods(sheets: dict[str, list[list]] | None = None, *, basic_macros: bool = False,
                    entity: bool = False) -> bytes:
    """An .ods as LibreOffice Calc saves it: every sheet padded to 1,048,576 rows and 16,384 columns
    with repeated empty rows and cells; optionally with a Basic macro library (whose parts carry a
    DOCTYPE and no entity; `entity` adds one, as a hostile file would)."""
    sheets = sheets or {"说明": [["填表说明：请在第二个工作表填写本校数据"]], "汇总表": [TITLE, MONTH, HEADER, ROW]}
    tables = []
    for name, rows in sheets.items():
        body = "".join(f'<table:table-row table:style-name="ro1">{"".join(map(_ods_cell, row))}'
                       f'<table:table-cell table:number-columns-repeated="{16384 - len(row)}"/></table:table-row>'
                       for row in rows)
        padding = (f'<table:table-row table:style-name="ro1" table:number-rows-repeated="{1048576 - len(rows)}">'
                   '<table:table-cell table:number-columns-repeated="16384"/></table:table-row>')
        tables.append(f'<table:table table:name="{escape(name)}"><table:table-column table:number-columns-repeated='
                      f'"16384"/>{body}{padding}</table:table>')
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NS}><office:body>'
               f'<office:spreadsheet>{"".join(tables)}</office:spreadsheet></office:body></office:document-content>')
    members = {"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": content.encode(),
               "META-INF/manifest.xml": b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
               b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>'}
    if basic_macros:
        members["Basic/Standard/Module1.xml"] = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD '
            b'OfficeDocument 1.0//EN" "module.dtd"' + (b' [<!ENTITY x "y">]' if entity else b"") + b'>\n<script:module xmlns:script="http://openoffice.org/2000/script" '
            b'script:name="Module1" script:language="StarBasic">Sub Main\nEnd Sub</script:module>')
    return _zip(members, stored_first="mimetype")


def sample_biff_stream() -> bytes:
    """The BIFF8 Workbook stream of sample 003's .xls (the records, without the container's padding)."""
    import email
    import email.policy

    import olefile

    message = email.message_from_bytes(next(SAMPLES.glob("cases/003-*/message.eml")).read_bytes(),
                                       policy=email.policy.default)
    data = next(part.get_payload(decode=True) for part in message.walk() if (part.get_filename() or "").endswith(".xls"))
    stream = olefile.OleFileIO(data).openstream("Workbook").read()
    position = end = 0
    while position + 4 <= len(stream):
        record, length = struct.unpack_from("<HH", stream, position)
        position += 4 + length
        if record == 0x000A:
            end = position
    return stream[:end]


def small_xls() -> bytes:
    """A valid .xls whose Workbook stream sits in the mini stream, as Excel stores small files."""
    return compound_file({"Workbook": sample_biff_stream()})


def cyclic_xls() -> bytes:
    """The same .xls with a mini-sector chain that loops (olefile reads it; xlrd's reader never ends)."""
    return cycle_mini_chain(small_xls())


def biff2_xls() -> bytes:
    """An Excel 2.1 worksheet: a bare BIFF2 stream (BOF, one LABEL, EOF), no OLE container."""
    def record(kind: int, body: bytes) -> bytes:
        return struct.pack("<HH", kind, len(body)) + body
    label = struct.pack("<HHBBBB", 0, 0, 0, 0, 0, 4) + b"Name"
    return record(0x0009, struct.pack("<HH", 2, 0x10)) + record(0x0004, label) + record(0x000A, b"")


def xlsb() -> bytes:
    """An Excel binary workbook: its parts are BIFF12 records, not XML."""
    return _zip({"[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                 b'package/2006/content-types"/>', "xl/workbook.bin": b"\x83\x01\x00", "xl/worksheets/sheet1.bin": b"\x00"})


def odt() -> bytes:
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NS}><office:body><office:text>'
               "<text:p>课后服务开展情况</text:p></office:text></office:body></office:document-content>")
    return _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": content.encode()},
                stored_first="mimetype")


def fods() -> bytes:
    rows = "".join(f"<table:table-row>{''.join(map(_ods_cell, row))}</table:table-row>" for row in [HEADER, ROW])
    return (f'<?xml version="1.0" encoding="UTF-8"?><office:document {_ODS_NS} office:mimetype='
            '"application/vnd.oasis.opendocument.spreadsheet"><office:body><office:spreadsheet>'
            f'<table:table table:name="汇总表">{rows}</table:table></office:spreadsheet></office:body>'
            "</office:document>").encode()


def html_as_xls() -> bytes:
    """What web systems export as "xls": an HTML table."""
    cells = "".join(f"<td>{escape(str(value))}</td>" for value in ROW)
    return f"<html><head><meta charset='utf-8'></head><body><table><tr>{cells}</tr></table></body></html>".encode()


def zip_of(members: dict[str, bytes]) -> bytes:
    return _zip(members)


def photo() -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4
