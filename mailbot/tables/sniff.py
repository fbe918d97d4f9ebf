"""What an attachment is, by its content (SPEC 3.1). The file name is only a hint, used where the
content cannot tell (.et is BIFF8 like .xls; .wps is an OLE file like .doc)."""

from __future__ import annotations

import io
import zipfile

import olefile

from mailbot.tables.csvfile import looks_like_csv
from mailbot.tables.guards import ZIP_ERRORS

# Formats the readers turn into tables; every other answer is a kind of UnreadableFile.
READABLE = frozenset({"xlsx", "xlsm", "ods", "docx", "zip", "xls", "et", "csv"})

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"

_SIMPLE_MAGIC = (
    (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"%PDF", "pdf"),
    (b"{\\rtf", "rtf"),
    (b"\xff\xd8\xff", "image"),  # JPEG
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"II*\x00", "image"),  # TIFF, as scanners write
    (b"MM\x00*", "image"),
)


def extension(filename: str | None) -> str:
    if not filename or "." not in filename:
        return ""
    return filename.rsplit(".", 1)[1].strip().lower()


def sniff_format(data: bytes, filename: str | None = None) -> str:
    """The format of `data`: a READABLE format, or the kind of file we cannot read ("doc", "wps",
    "encrypted", "rar", "7z", "pdf", "image", "rtf", "xlsb", "odf_text", "fods", "biff_old",
    "xml_spreadsheet", "html", "office_other", "empty", "corrupt", "unknown")."""
    if not data.strip(b"\x00 \t\r\n"):
        return "empty"
    if data.startswith(ZIP_MAGIC):
        return sniff_zip(data, filename)
    if data.startswith(OLE_MAGIC):
        return sniff_ole(data, filename)
    for magic, kind in _SIMPLE_MAGIC:
        if data.startswith(magic):
            return kind
    if _is_iso_image(data):
        return "image"
    if data.startswith(b"PK"):
        return "corrupt"  # a zip whose first header is damaged
    if len(data) >= 4 and data[:2] in _OLD_BIFF_BOF and 4 <= data[2] <= 20 and data[3] == 0:
        return "biff_old"  # Excel 2.x-4.x saved a bare BIFF stream, without the OLE container
    markup = sniff_markup(data)
    if markup:
        return markup
    if looks_like_csv(data):
        return "csv"
    return "unknown"


# BOF records of BIFF2, BIFF3 and BIFF4 worksheets (BIFF5 and later live inside an OLE file).
_OLD_BIFF_BOF = (b"\x09\x00", b"\x09\x02", b"\x09\x04")


def sniff_markup(data: bytes) -> str | None:
    """XML and HTML saved under a table's name: flat OpenDocument (.fods/.fodt), Excel 2003 XML,
    a web page; "unknown" for other XML; None when the bytes are not markup (CSV is text too)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head.startswith(b"<"):
        return None
    if b"office:document" in head:
        return "fods" if b"spreadsheet" in head else "odf_text"
    if b"urn:schemas-microsoft-com:office:spreadsheet" in head or b'progid="excel.sheet"' in head:
        return "xml_spreadsheet"
    if b"<html" in head or b"<!doctype html" in head or head.startswith((b"<table", b"<meta")):
        return "html"  # (an Excel table part, <?xml ...?><table xmlns=...>, is XML, not a web page)
    return "unknown"


def _is_iso_image(data: bytes) -> bool:
    """HEIC/HEIF/AVIF (iPhone photos), WebP and BMP, whose magic is short or not at the start."""
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00" and len(data) >= 26:
        return True  # "BM" alone could begin a CSV line; the reserved zero bytes make it a bitmap
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1",
                                                b"msf1", b"avif"):
        return True
    return data.startswith(b"RIFF") and data[8:12] == b"WEBP"


def sniff_zip(data: bytes, filename: str | None) -> str:
    """Which zip-based format: only the central directory is read, nothing is inflated, except
    the tiny stored `mimetype` member of OpenDocument files."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = set(zf.namelist())
    except ZIP_ERRORS:
        return "corrupt"
    if "xl/workbook.xml" in names:
        if "xl/vbaProject.bin" in names or extension(filename) in ("xlsm", "xltm"):
            return "xlsm"
        return "xlsx"
    if "word/document.xml" in names:
        return "docx"
    if "mimetype" in names and "content.xml" in names:
        info = zf.getinfo("mimetype")
        if info.file_size <= 200 and info.compress_type == zipfile.ZIP_STORED:
            try:
                if zf.read(info).strip() == ODS_MIMETYPE:
                    return "ods"
            except ZIP_ERRORS:
                return "corrupt"
        return "odf_text"  # an OpenDocument text or presentation, not a spreadsheet
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "[Content_Types].xml" in names:
        return "office_other"  # pptx and other Office files that hold no readable table
    return "zip"


def sniff_ole(data: bytes, filename: str | None) -> str:
    """Which OLE2 (compound file) format, from the names of its top-level streams."""
    try:
        ole = olefile.OleFileIO(data)
        try:
            streams = {entry[0].lower() for entry in ole.listdir(streams=True, storages=True) if entry}
        finally:
            ole.close()
    except Exception:  # olefile raises many types (OSError, IndexError, struct.error) on bad input
        return "corrupt"
    if streams & {"encryptedpackage", "encryptioninfo"}:
        return "encrypted"  # a password-protected xlsx/docx wrapped in OLE
    if streams & {"workbook", "book"}:
        return "et" if extension(filename) == "et" else "xls"
    if "worddocument" in streams:
        return "wps" if extension(filename) == "wps" else "doc"
    return "unknown"
