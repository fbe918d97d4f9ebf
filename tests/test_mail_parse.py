"""parse_message on the sample mail and on the odd shapes real and hostile senders produce."""

import base64
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.mail.parse import MAX_PARTS, parse_message

SAMPLES = Path(__file__).parent / "samples"


def sample(case: str) -> bytes:
    return (SAMPLES / "cases" / case / "message.eml").read_bytes()


def message(headers: str, body: str = "hello\n", content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        "From: Teacher <Teacher@School.CN>\nTo: chuyoujiao@163.com\nSubject: test\n"
        "Date: Fri, 21 Oct 2022 10:15:32 +0800\nMessage-ID: <m1@school.cn>\n"
        f"MIME-Version: 1.0\nContent-Type: {content_type}\n{headers}"
    )
    return (head.rstrip("\n") + "\n\n" + body).encode("utf-8")


def mixed(*parts: str, outer_headers: str = "") -> bytes:
    body = "".join(f"--B\n{part.strip()}\n" for part in parts) + "--B--\n"
    return message(outer_headers, body, 'multipart/mixed; boundary="B"')


# --- the samples ---------------------------------------------------------------------------


def test_163_webmail_gbk_names_and_headers():
    parsed = parse_message(sample("001-163-webmail-xlsx"))
    assert parsed.from_addr == "beimenxx@163.com"
    assert parsed.from_name == "北门小学教务处"
    assert parsed.to_addrs == ["chuyoujiao@163.com"]
    assert parsed.subject == "北门小学10月份课后服务开展情况汇总表"
    assert parsed.message_id == "272f7dc8.e4bd.183f852fda0.Coremail.beimenxx@163.com"
    assert parsed.date.isoformat() == "2022-10-21T10:15:32+08:00"
    assert parsed.received_date.isoformat() == "2022-10-21T10:15:35+08:00"
    assert "附件是我校10月份课后服务开展情况汇总表" in parsed.text_body
    [attachment] = parsed.attachments
    assert attachment.filename == "安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx"
    assert attachment.data.startswith(b"PK\x03\x04")
    assert (attachment.disposition, attachment.origin) == ("attachment", "part")


@pytest.mark.parametrize(
    "case, filename",
    [
        ("002-qq-octet-stream-modes", "凤华小学10月课后服务汇总表.xlsx"),
        ("003-foxmail-xls-month-in-subject", "培文中学课后服务报表.xls"),
        ("005-iphone-rfc2231-continuations", "安溪县玉湖小学课后服务开展情况汇总表（已填）.xlsx"),
        ("006-thunderbird-raw-utf8-docx", "玉湖中学10月份课后服务开展情况汇总表.docx"),
        ("013-zip-cp936-december-in-january", "溪东中学课后服务汇总表.zip"),
        ("017-csv-gbk", "北山中学10月份课后服务开展情况.csv"),
    ],
)
def test_sample_attachment_names(case, filename):
    assert [a.filename for a in parse_message(sample(case)).attachments] == [filename]


def test_outlook_inline_signature_image_is_an_inline_attachment():
    parsed = parse_message(sample("004-outlook-rfc2231-two-row-header"))
    assert [(a.filename, a.content_type, a.disposition) for a in parsed.attachments] == [
        ("image001.png", "image/png", "inline"),
        ("城南中学10月份课后服务开展情况汇总表.xlsx",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "attachment"),
    ]  # fmt: skip
    assert parsed.attachments[0].data.startswith(b"\x89PNG")


def test_forwarded_message_yields_its_table_not_its_headers():
    parsed = parse_message(sample("007-163-forward-as-attachment"))
    assert parsed.from_addr == "cnsx_jwc@126.com"
    assert parsed.subject == "Fw:城南实验小学10月课后服务汇总表"
    [table] = parsed.attachments
    assert (table.filename, table.origin) == ("城南实验小学10月课后服务汇总表.xlsx", "rfc822")
    assert table.data.startswith(b"PK")


def test_qq_big_attachment_gives_the_link_and_no_attachment():
    parsed = parse_message(sample("008-qq-big-attachment-link"))
    assert parsed.attachments == []
    assert parsed.big_attachment_links == [
        "https://mail.qq.com/cgi-bin/ftnExs_download?k=ac31c1c9a9db45fafbae15ca889676fcd21f455574f184d6c9da8aa0a0184150"
        "&t=exs_ftn_download&code=1065ad3a"
    ]


def test_auto_reply_facts():
    parsed = parse_message(sample("010-auto-reply-with-table"))
    assert parsed.auto_submitted == "auto-replied"
    assert parsed.x_autoreply is True
    assert parsed.in_reply_to == ["reminder-2022-10-upcoming-ljzx@chuyoujiao.mailbot"]


def test_reply_threading_headers():
    parsed = parse_message(sample("015-reply-without-attachment"))
    assert parsed.references == ["reminder-2022-10-upcoming-bhzx@zjg.mailbot"]
    assert parsed.attachments == []
    assert parsed.auto_submitted is None and not parsed.x_autoreply


def test_every_sample_parses_with_a_sender_and_a_date():
    for path in sorted(SAMPLES.glob("**/*.eml")):
        parsed = parse_message(path.read_bytes())
        assert "@" in parsed.from_addr, path
        assert parsed.date is not None and parsed.date.tzinfo is not None, path
        assert not parsed.auth_failed and not parsed.mailbot_marker, path


# --- headers -------------------------------------------------------------------------------


def test_lf_only_and_crlf_give_the_same_result():
    raw = mixed(
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="a.xlsx"\n\n' + base64.b64encode(b"PK\x03\x04data").decode()
    )
    lf, crlf = parse_message(raw), parse_message(raw.replace(b"\n", b"\r\n"))
    assert lf.attachments[0].data == crlf.attachments[0].data == b"PK\x03\x04data"
    assert lf.subject == crlf.subject == "test"


def test_addresses_lower_case_and_lists():
    parsed = parse_message(
        message(
            'Reply-To: "=?utf-8?B?5pWZ5Yqh5aSE?=" <JWC@School.cn>\n'
            "In-Reply-To: <a@x>\nReferences: <r1@x>\n <r2@x> <r3@x>\nTo: b@c.cn, D@E.CN\n"
        )
    )
    assert parsed.from_addr == "teacher@school.cn" and parsed.from_name == "Teacher"
    assert parsed.reply_to == ["jwc@school.cn"]
    assert parsed.in_reply_to == ["a@x"]
    assert parsed.references == ["r1@x", "r2@x", "r3@x"]
    assert "chuyoujiao@163.com" in parsed.to_addrs and "d@e.cn" in parsed.to_addrs


def test_mailer_daemon_without_domain_is_kept():
    raw = message("").replace(b"From: Teacher <Teacher@School.CN>", b"From: MAILER-DAEMON")
    assert parse_message(raw).from_addr == "mailer-daemon"


def test_raw_gbk_subject_and_display_name():
    raw = message("").replace(b"Subject: test", "Subject: 北门小学10月汇总表".encode("gbk"))
    raw = raw.replace(b"From: Teacher", "From: 许老师".encode("gbk"))
    parsed = parse_message(raw)
    assert parsed.subject == "北门小学10月汇总表"
    assert parsed.from_name == "许老师"


def test_missing_or_broken_date_is_none_and_received_is_topmost():
    raw = message(
        "Received: from a by b; Sat, 22 Oct 2022 08:00:00 +0800\n"
        "Received: from c by d; Fri, 21 Oct 2022 08:00:00 +0800\n"
    ).replace(b"Date: Fri, 21 Oct 2022 10:15:32 +0800", b"Date: yesterday")
    parsed = parse_message(raw)
    assert parsed.date is None
    assert parsed.received_date.isoformat() == "2022-10-22T08:00:00+08:00"


def test_classification_facts():
    parsed = parse_message(
        message("Auto-Submitted: Auto-Generated\nPrecedence: Bulk\nList-Id: <l.x>\nX-Mailbot: reminder\n")
    )
    assert parsed.auto_submitted == "auto-generated"
    assert parsed.precedence == "bulk"
    assert parsed.list_id and parsed.mailbot_marker
    assert not parsed.x_autoreply
    assert parse_message(message("X-Auto-Response-Suppress: All\n")).x_autoreply
    assert not parse_message(message("X-Auto-Response-Suppress: OOF, AutoReply\n")).x_autoreply


@pytest.mark.parametrize(
    "results, failed",
    [
        ("mx1; spf=fail smtp.mailfrom=teacher@school.cn", True),
        ("mx1; dkim=fail (bad signature) header.d=school.cn; spf=pass smtp.mailfrom=school.cn", True),
        ("mx1; dkim=fail header.i=@mail.school.cn", True),
        ("mx1; spf=fail", True),
        ("mx1; spf=softfail smtp.mailfrom=school.cn; dkim=none", False),
        ("mx1; spf=fail smtp.mailfrom=other.org", False),
        ("mx1; spf=pass smtp.mail=teacher@school.cn;", False),
    ],
)
def test_authentication_results(results, failed):
    assert parse_message(message(f"Authentication-Results: {results}\n")).auth_failed is failed


def test_only_the_topmost_authentication_results_counts():
    raw = message(
        "Authentication-Results: mx1; spf=pass smtp.mailfrom=school.cn\n"
        "Authentication-Results: forged; spf=fail smtp.mailfrom=school.cn\n"
    )
    assert not parse_message(raw).auth_failed


# --- structure -----------------------------------------------------------------------------


def test_bodies_decoded_with_gb18030_fallback_and_html_kept_apart():
    raw = mixed(
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 8bit\n\nBODY",
        'Content-Type: text/html; charset="gb2312"\n\n<p>hi</p>',
    )
    parsed = parse_message(raw.replace(b"BODY", "正文".encode("gbk")))
    assert parsed.text_body.strip() == "正文"
    assert parsed.html_body.strip() == "<p>hi</p>"
    assert parsed.attachments == []


def test_named_text_part_and_csv_are_attachments():
    parsed = parse_message(
        mixed(
            "Content-Type: text/plain\n\nbody",
            'Content-Type: text/plain; name="note.txt"\n\nnote',
            "Content-Type: text/csv\n\na,b",
        )
    )
    assert parsed.text_body.strip() == "body"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("note.txt", "text/plain"),
        (None, "text/csv"),
    ]


def test_eml_sent_as_octet_stream_is_opened():
    inner = mixed(
        "Content-Type: application/vnd.ms-excel\nContent-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="inner.xls"\n\n' + base64.b64encode(b"\xd0\xcf\x11\xe0").decode()
    ).replace(b"Subject: test", b"Subject: inner")
    parsed = parse_message(
        mixed(
            "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
            'Content-Disposition: attachment; filename="fwd.EML"\n\n' + base64.b64encode(inner).decode()
        )
    )
    assert parsed.subject == "test"
    assert [(a.filename, a.origin, a.data) for a in parsed.attachments] == [
        ("inner.xls", "rfc822", b"\xd0\xcf\x11\xe0")
    ]


def test_uuencoded_attachment():
    import binascii

    line = binascii.b2a_uu(b"PK\x03\x04 table").decode()
    parsed = parse_message(
        mixed(
            "Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\n"
            f'Content-Disposition: attachment; filename="t.xlsx"\n\nbegin 644 t.xlsx\n{line}`\nend\n'
        )
    )
    assert parsed.attachments[0].data == b"PK\x03\x04 table"


def test_multipart_report_is_flagged():
    raw = message(
        "", '--B\nContent-Type: text/plain\n\nbounced\n--B\nContent-Type: message/delivery-status\n\n'
        "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; a@b\nAction: failed\n--B--\n",
        'multipart/report; report-type=delivery-status; boundary="B"',
    )  # fmt: skip
    assert parse_message(raw).is_report


def tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def winmail(title: bytes, payload: bytes) -> bytes:
    return (
        struct.pack("<IH", 0x223E9F78, 0)
        + tnef_object(1, 0x9006, 0x0009, struct.pack("<I", 0x10000))  # TNEF version
        + tnef_object(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 8)  # new attachment
        + tnef_object(2, 0x8010, 0x0001, title + b"\x00")
        + tnef_object(2, 0x800F, 0x0006, payload)
    )


def test_winmail_dat_is_unwrapped():
    blob = winmail("汇总表.xlsx".encode("gbk"), b"PK\x03\x04" + b"x" * 40)
    parsed = parse_message(
        mixed(
            "Content-Type: application/ms-tnef; name=winmail.dat\nContent-Transfer-Encoding: base64\n\n"
            + base64.b64encode(blob).decode()
        )
    )
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.origin) == ("汇总表.xlsx", "tnef")
    assert attachment.data == b"PK\x03\x04" + b"x" * 40


def test_broken_winmail_dat_is_kept_as_is():
    blob = struct.pack("<IH", 0x223E9F78, 0) + tnef_object(1, 0x9003, 0x0006, struct.pack("<I", 0xFFFFFFFF))
    parsed = parse_message(
        mixed(
            'Content-Type: application/octet-stream; name="winmail.dat"\nContent-Transfer-Encoding: base64\n\n'
            + base64.b64encode(blob).decode()
        )
    )
    assert [(a.filename, a.origin, a.data) for a in parsed.attachments] == [("winmail.dat", "part", blob)]


def test_163_big_attachment_link():
    url = "https://mail.163.com/large-attachment-download/index.html?p=X&file=Y"
    html = f'<div>从网易163邮箱发来的超大附件</div><a href="{url.replace("&", "&amp;")}">下载</a>'
    parsed = parse_message(message("", html, "text/html; charset=utf-8"))
    assert parsed.big_attachment_links == [url]
    quoted = parse_message(message("", "从QQ邮箱发来的超大附件 (链接已过期)", "text/plain; charset=utf-8"))
    assert quoted.big_attachment_links == ["超大附件"]
    plain = parse_message(message("", "请不要使用超大附件，直接添加附件。", "text/plain; charset=utf-8"))
    assert plain.big_attachment_links == []


def test_deep_nesting_and_many_parts_are_capped():
    deep = "Content-Type: application/octet-stream\n\nx"
    for level in range(50):
        deep = f'Content-Type: multipart/mixed; boundary="b{level}"\n\n--b{level}\n{deep}\n--b{level}--'
    assert parse_message(mixed(deep)).attachments == []  # nothing below the cap, and no crash
    many = mixed(*[f'Content-Type: image/png; name="{i}.png"\n\nx' for i in range(MAX_PARTS + 50)])
    assert 0 < len(parse_message(many).attachments) <= MAX_PARTS


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_garbage_never_raises(raw):
    parsed = parse_message(raw)
    assert isinstance(parsed.subject, str) and isinstance(parsed.attachments, list)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"Content-Type: multipart/mixed; boundary=B\n", b"--B\n", b"--B--\n", b"\n", b"=?gbk?B?xx?=",
             b"Content-Disposition: attachment; filename*0*=utf-8''%E5; filename*1*=%AE\n",
             b"Content-Transfer-Encoding: base64\n", b"Content-Type: message/rfc822\n", b"\xff\xfe",
             b"Date: Mon, 99 Foo 99999 99:99:99 +9999\n", b"From: <<@>>,\n", b"Subject: =?x?Q?=ZZ?=\n",
             b"Authentication-Results: ; spf=fail=;\n", b"Content-Type: application/ms-tnef\n"]
        ),
        max_size=40,
    )
)  # fmt: skip
def test_hostile_mime_shapes_never_raise(pieces):
    parse_message(b"".join(pieces))


# --- real-world input that used to cost the whole message (issue 10) ---------------------------


def test_raw_utf8_rfc2231_name_keeps_the_message_and_the_name():
    part = ("Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename*=UTF-8''汇总表.xlsx\n\nUEsDBA==")
    parsed = parse_message(mixed(part))
    assert parsed.from_addr == "teacher@school.cn"
    assert [a.filename for a in parsed.attachments] == ["汇总表.xlsx"]


def test_a_part_that_breaks_the_walk_costs_that_part_only(monkeypatch):
    from mailbot.mail import mime
    real = mime.decode_filename_params

    def fragile(disposition, type_params):
        if "bad.xlsx" in str(type_params):
            raise RuntimeError("a decoder bug")
        return real(disposition, type_params)

    monkeypatch.setattr(mime, "decode_filename_params", fragile)
    parsed = parse_message(mixed('Content-Type: application/octet-stream; name="bad.xlsx"\n\nx',
                                 'Content-Type: application/octet-stream; name="good.xlsx"\n\ny'))
    assert parsed.from_addr == "teacher@school.cn"
    assert [a.filename for a in parsed.attachments] == ["good.xlsx"]


@pytest.mark.parametrize("reply_to, expected", [
    ("a@x.com b@x.com", ["a@x.com", "b@x.com"]),  # no comma: both still readable
    (".", []), ("😀", []), ("Name <>", []), ("x" * 50000, []), ("\"a b\" <a b@x.com>", []),
    ("ok@school.cn", ["ok@school.cn"]), ("坏地址@学校.cn, ok@school.cn", ["ok@school.cn"]),
])
def test_only_usable_reply_to_addresses_are_kept(reply_to, expected):
    parsed = parse_message(message(f"Reply-To: {reply_to}\n"))
    assert parsed.reply_to == expected and parsed.from_addr == "teacher@school.cn"


def test_reply_to_of_8bit_garbage_is_dropped():
    raw = message("").replace(b"MIME-Version", b"Reply-To: \xff\xfe\x80@\x81\nMIME-Version")
    assert parse_message(raw).reply_to == []


def unclosed_nesting(depth: int) -> bytes:
    body = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    return message("", body + "Content-Type: text/plain\n\n" + "a line of text\n" * 2000,
                   'multipart/mixed; boundary="top"').replace(b"\n\nContent-Type: multipart/mixed; boundary=\"b0\"",
                                                              b"\n\n--top\nContent-Type: multipart/mixed; boundary=\"b0\"")


def test_deep_unclosed_multipart_is_measured_not_parsed(monkeypatch):
    from mailbot.mail import mime, parse

    def never(raw):
        raise AssertionError("the stdlib parser must not see this message")

    monkeypatch.setattr(parse, "parse_structure", never)
    parsed, problem = parse.parse_message_shaped(unclosed_nesting(600))
    assert problem == "too_deep" and parsed.attachments == [] and parsed.from_addr == "teacher@school.cn"
    monkeypatch.setattr(parse, "parse_structure", mime.parse_structure)
    assert parse.parse_message_shaped(unclosed_nesting(8))[1] is None


def test_closed_boundaries_do_not_count_as_depth():
    siblings = mixed(*[f'Content-Type: multipart/alternative; boundary="a{i}"\n\n--a{i}\n'
                       f'Content-Type: text/plain\n\nx\n--a{i}--' for i in range(100)])
    from mailbot.mail.structure import measure
    shape = measure(siblings)
    assert shape.problem is None and shape.open_multiparts == 2


def test_the_lines_measured_are_delimiters_boundary_parameters_and_content_types():
    from mailbot.mail.structure import _interesting_lines
    raw = (b"Content-Type: multipart/mixed;\r\n BOUNDARY=\"Top\"\r\n\r\n--Top\r\n"
           b"x-note: see boundary=\"inner\" here\r\n\r\nQkFTRTY0--boundary\r\n"
           b"body\r--Top-- after a bare CR\r\nmore\rboundary=hidden\n--Top--")
    assert list(_interesting_lines(raw)) == [
        b"Content-Type: multipart/mixed;", b' BOUNDARY="Top"', b"--Top",
        b'x-note: see boundary="inner" here', b"QkFTRTY0--boundary", b"--Top--"]


def test_measuring_is_linear_in_hostile_lines():
    """The line scan looks back to a line's start for each "boundary" it finds: a line of
    thousands of them behind a bare CR must not make that quadratic."""
    from mailbot.mail.structure import measure
    shape = measure(b"x\r" + b"boundary" * 200_000 + b"\n--a\n")
    assert shape.parts == 0 and shape.problem is None
    assert measure(b"\n".join([b"a\rboundary"] * 100_000)).open_multiparts == 0


def test_thousand_nested_forwarded_messages_keep_the_headers():
    body = "".join(f"Content-Type: message/rfc822\n\nSubject: {i}\n" for i in range(1000)) + "\nhi\n"
    parsed, problem = __import__("mailbot.mail.parse", fromlist=["x"]).parse_message_shaped(
        message("", body, "message/rfc822"))
    assert problem == "too_many_messages" and parsed.from_addr == "teacher@school.cn"


def test_ten_thousand_parts_are_named_as_such():
    from mailbot.mail.parse import parse_message_shaped
    many = mixed(*[f'Content-Type: text/plain; name="{i}.txt"\n\nx' for i in range(10_000)])
    parsed, problem = parse_message_shaped(many)
    assert problem == "too_many_parts" and parsed.attachments == []


def header_less_parts(count: int) -> bytes:
    """A multipart of `count` parts with no header of their own (a part needs none: it is then
    text/plain), built as bytes: a million take 6 MB."""
    head = message("", "", 'multipart/mixed; boundary="B"')
    return head + b"--B\n\nx\n" * count + b"--B--\n"


@pytest.mark.parametrize("count", [2_001, 100_000])
def test_header_less_parts_are_counted_as_the_parser_would_make_them(monkeypatch, count):
    """Issue 11 defect 8: the count was of Content-Type lines, so parts without one passed and the
    stdlib parser built an object for each (a million of them by hand: see the issue's note)."""
    from mailbot.mail import mime, parse
    from mailbot.mail.structure import MAX_BODY_PARTS, measure

    def never(raw):
        raise AssertionError("the stdlib parser must not see this message")

    monkeypatch.setattr(parse, "parse_structure", never)
    shape = measure(header_less_parts(count))
    assert shape.problem == "too_many_parts" and shape.parts == MAX_BODY_PARTS + 1  # stopped at the limit
    parsed, problem = parse.parse_message_shaped(header_less_parts(count))
    assert problem == "too_many_parts" and parsed.from_addr == "teacher@school.cn" and parsed.unread_parts == 0
    monkeypatch.setattr(parse, "parse_structure", mime.parse_structure)
    assert parse.parse_message_shaped(header_less_parts(MAX_BODY_PARTS))[1] is None  # at the limit: read


# The IMAP triage reads the From from the header alone (remote_message) and the pipeline from the
# whole message (parse_message): they must find the same sender, or a school's table is ignored
# unread as "no From address" while the pipeline would have taken it.
@pytest.mark.parametrize("from_field, address", [
    ('"北门小学" <beimenxx@163.com>', "beimenxx@163.com"),
    ("北门,小学 <beimenxx@163.com>", "beimenxx@163.com"),  # a bare comma in the display name
    ("北门小学 beimenxx@163.com", "beimenxx@163.com"),  # no brackets
    ("=?GBK?B?sbHDxdChx6c=?= <BeiMenXX@163.com>", "beimenxx@163.com"),
    ("beimenxx@163.com (北门小学)", "beimenxx@163.com"),
    ("MAILER-DAEMON", "mailer-daemon"),  # no domain: kept, for the automatic-mail rule
    ("", ""),  # "no From address"
])
def test_the_triage_and_the_pipeline_read_the_same_sender(from_field, address):
    from mailbot.transports.imap_responses import remote_message
    header = f"From: {from_field}\r\nTo: chuyoujiao@163.com\r\nSubject: 汇总表\r\n\r\n".encode("utf-8")
    triaged = remote_message(7, {b"BODY[HEADER.FIELDS (FROM TO SUBJECT)]": header, b"RFC822.SIZE": 200})
    assert triaged.from_addr == address
    assert parse_message(header + b"body\r\n").from_addr == address
