"""The corpus: one small message per class of real-world input in issue 10, each with what mailbot
must make of it. `python tests/corpus/build.py OUTDIR` writes them as .eml files plus expect.json;
tests/test_corpus.py runs them through the pipeline, and fuzz/ uses them as seeds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus import files  # noqa: E402

SENDER, MAILBOX = "beimenxx@163.com", "chuyoujiao@163.com"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


PEIWEN = "pwzx_ax@163.com"  # the school of sample 003, whose .xls the corpus rebuilds


def _message(attachments: list[tuple[str, bytes, str]] = (), *, sender: str = SENDER, headers: dict | None = None,
             key: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, MAILBOX, "北门小学10月课后服务汇总表"
    msg["Date"] = format_datetime(datetime.fromisoformat("2022-10-20T10:00:00+08:00"))
    msg["Message-ID"] = f"<corpus-{key}@school.test>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content("您好，附件是本校本月课后服务汇总表，请查收。")
    for name, data, content_type in attachments:
        main, sub = content_type.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()


def _with_encoded_header(raw: bytes, name: str, value: str) -> bytes:
    """`raw` with one more header, RFC 2047-encoded and folded as a mail client writes it. (Letting
    EmailMessage fold a 25,000-character name costs minutes: its folding is quadratic.)"""
    return f"{name}: {Header(value, 'utf-8').encode()}\n".encode("ascii") + raw


def _raw_rfc2231_name(key: str) -> bytes:
    """filename*=UTF-8''汇总表.xlsx with the UTF-8 bytes themselves, not %-escapes (clients do this)."""
    raw = _message([("PLACEHOLDER.xlsx", files.xlsx(), XLSX)], key=key)
    return raw.replace(b'filename="PLACEHOLDER.xlsx"', "filename*=UTF-8''汇总表.xlsx".encode())


def _latin1_name(key: str) -> bytes:
    """An undeclared ISO-8859-1 name (a Western client): not to be read as GBK."""
    raw = _message([("PLACEHOLDER.xlsx", files.xlsx(), XLSX)], key=key)
    return raw.replace(b'filename="PLACEHOLDER.xlsx"', 'filename="Résumé 10月.xlsx"'.replace("月", "").encode("latin-1"))


def _nested(depth: int, key: str, closed: bool = False) -> bytes:
    """The submission's parts inside `depth` levels of multipart/mixed, boundaries never closed."""
    inner = _message([("汇总表.xlsx", files.xlsx(), XLSX)], key=key)
    head, _, body = inner.partition(b"\n\n")
    content_type = next(line for line in head.split(b"\n") if line.lower().startswith(b"content-type:"))
    head = head.replace(content_type + b"\n", b"").replace(content_type, b"").rstrip(b"\n")
    levels = b"".join(b'--n%d\nContent-Type: multipart/mixed; boundary="n%d"\n\n' % (i - 1, i) for i in range(1, depth))
    closing = b"".join(b"\n--n%d--" % i for i in reversed(range(depth))) if closed else b""
    return (head + b'\nContent-Type: multipart/mixed; boundary="n0"\n\n' + levels + b"--n%d\n" % (depth - 1)
            + content_type + b"\n\n" + body + closing + b"\n")


def _many_parts(count: int, key: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, MAILBOX, "课后服务汇总表"
    msg["Date"] = format_datetime(datetime.fromisoformat("2022-10-20T10:00:00+08:00"))
    msg["Message-ID"] = f"<corpus-{key}@school.test>"
    msg.set_content("见附件")
    msg.add_attachment(files.xlsx(), maintype="application", subtype="octet-stream", filename="汇总表.xlsx")
    raw = msg.as_bytes()
    boundary = raw.split(b'boundary="', 1)[1].split(b'"', 1)[0]
    filler = b"".join(b"--%s\nContent-Type: text/plain\n\n.\n" % boundary for _ in range(count))
    return raw.replace(b"--%s--" % boundary, filler + b"--%s--" % boundary)


def table_files() -> dict[str, bytes]:
    """Every corpus table file by a name that says what it is."""
    return {
        "valid.xlsx": files.xlsx(), "formula-heavy.xlsx": files.formula_heavy_xlsx(),
        "libreoffice-two-sheets.ods": files.libreoffice_ods(), "basic-macros.ods": files.libreoffice_ods(basic_macros=True),
        "mini-stream.xls": files.small_xls(), "cyclic-chain.xls": files.cyclic_xls(), "biff2.xls": files.biff2_xls(),
        "binary.xlsb": files.xlsb(), "document.odt": files.odt(), "flat.fods": files.fods(), "web-page.xls": files.html_as_xls(),
        "zip-of-photos.zip": files.zip_of({"1.jpg": files.photo(), "2.jpg": files.photo()}),
        "zip-in-zip-in-zip.zip": files.zip_of({"b.zip": files.zip_of({"c.zip": files.zip_of({"汇总表.xlsx": files.xlsx()})})}),
    }


# name -> (what makes the message, outcome, a word the errors must contain or None): each message is
# made only when asked for, so collecting the cases costs nothing (making them all took about 1.5
# CPU-s, paid at import by every test worker).
def lazy_cases() -> dict[str, tuple[Callable[[], bytes], str, str | None]]:
    def table():
        return [("汇总表.xlsx", files.xlsx(), XLSX)]

    def four_big():
        return [(f"表{i}.xlsx", files.formula_heavy_xlsx(), XLSX) for i in range(4)]

    found: dict[str, tuple[Callable[[], bytes], str, str | None]] = {
        "reply-to-two-addresses-no-comma": (lambda: _message(table(), headers={"Reply-To": "a@x.com b@x.com c"}, key="r1"),
                                            "accepted", None),
        "reply-to-dot": (lambda: _message(table(), headers={"Reply-To": "."}, key="r2"), "accepted", None),
        "reply-to-emoji": (lambda: _message(table(), headers={"Reply-To": "😀"}, key="r3"), "accepted", None),
        "reply-to-50k-name": (lambda: _with_encoded_header(_message(table(), key="r4"), "Reply-To", "名" * 25_000),
                              "accepted", None),
        "rfc2231-raw-utf8-name": (lambda: _raw_rfc2231_name("n1"), "accepted", None),
        "latin1-name": (lambda: _latin1_name("n2"), "accepted", None),
        "table-as-image-jpeg": (lambda: _message([("汇总表.xlsx", files.xlsx(), "image/jpeg")], key="i1"), "accepted", None),
        "table-as-octet-stream-no-extension": (lambda: _message([("汇总表", files.xlsx(), "application/octet-stream")], key="i2"),
                                               "accepted", None),
        "libreoffice-two-sheets.ods": (lambda: _message([("汇总表.ods", files.libreoffice_ods(), "application/vnd.oasis."
                                                 "opendocument.spreadsheet")], key="o1"), "accepted", None),
        "ods-basic-macros": (lambda: _message([("汇总表.ods", files.libreoffice_ods(basic_macros=True), "application/octet-stream")],
                                      key="o2"), "accepted", None),
        "mini-stream.xls": (lambda: _message([("汇总表.xls", files.small_xls(), "application/vnd.ms-excel")], sender=PEIWEN,
                                     key="x1"),
                            "accepted", None),
        "cyclic-chain.xls": (lambda: _message([("汇总表.xls", files.cyclic_xls(), "application/vnd.ms-excel")], sender=PEIWEN,
                                      key="x2"),
                             "accepted", None),  # olefile reads the stream within its size
        "four-formula-heavy-files": (lambda: _message(four_big(), key="b1"), "accepted", None),
        "header-cell-names-2n-and-services": (lambda: _message([("汇总表.xlsx", files.xlsx([
            ["学校名称", "在校学生数", "参与课后服务学生数", "是否开展“2+N”模式（是的请填写拓展服务项目）"],
            ["安溪县北门小学", 1878, 1797, "是，科普、美术、阅读"]]), XLSX)], key="h1"), "accepted", None),
        "xlsb": (lambda: _message([("汇总表.xlsb", files.xlsb(), "application/octet-stream")], key="w1"), "rejected", ".xlsb"),
        "odt": (lambda: _message([("汇总表.odt", files.odt(), "application/octet-stream")], key="w2"), "rejected", "OpenDocument"),
        "fods": (lambda: _message([("汇总表.fods", files.fods(), "application/octet-stream")], key="w3"), "rejected", ".fods"),
        "biff2.xls": (lambda: _message([("汇总表.xls", files.biff2_xls(), "application/vnd.ms-excel")], key="w4"),
                      "rejected", "Excel 4.0"),
        "zip-of-photos": (lambda: _message([("材料.zip", table_files()["zip-of-photos.zip"], "application/zip")], key="w5"),
                          "rejected", "没有找到表格文件"),
        "zip-in-zip-in-zip": (lambda: _message([("材料.zip", table_files()["zip-in-zip-in-zip.zip"], "application/zip")],
                                       key="w6"), "rejected", "一层"),
        "deep-600-multipart": (lambda: _nested(600, "d1"), "rejected", "嵌套"),
        "deep-600-multipart-stranger": (lambda: _nested(600, "d2").replace(SENDER.encode(), b"stranger@example.org"),
                                        "ignored", None),
        "closed-nesting-8": (lambda: _nested(8, "d3", closed=True), "accepted", None),
        "ten-thousand-parts": (lambda: _many_parts(10_000, "p1"), "rejected", "过多"),
    }
    return found


def cases() -> dict[str, tuple[bytes, str, str | None]]:
    """name -> (message, outcome, a word the errors must contain or None), every message made."""
    return {name: (make(), outcome, word) for name, (make, outcome, word) in lazy_cases().items()}


def messages() -> dict[str, bytes]:
    return {name: raw for name, (raw, _, _) in cases().items()}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    expect = {}
    for name, (raw, outcome, word) in cases().items():
        (out / f"{name}.eml").write_bytes(raw)
        expect[name] = {"outcome": outcome, "errors_mention": word}
    for name, content in table_files().items():
        (out / "files").mkdir(exist_ok=True)
        (out / "files" / name).write_bytes(content)
    (out / "expect.json").write_text(json.dumps(expect, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{len(expect)} messages and {len(table_files())} files in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out"))
