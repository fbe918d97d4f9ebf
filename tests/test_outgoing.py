"""The bytes mailbot sends: headers, structure, and what a mail client reads back."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.outbound.compose import Composed
from mailbot.outbound.message import build_email, make_message_id, safe_filename

CST = timezone(timedelta(hours=8))
SENT_AT = datetime(2022, 10, 21, 9, 30, tzinfo=CST)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_NAME = "安溪县北门小学2022年10月课后服务开展情况汇总表.xlsx"
COMPOSED = Composed(
    subject="回执：安溪县北门小学2022年10月课后服务情况已收到",
    text="安溪县北门小学：\n\n您好！在校学生数：1878人\n",
    html="<p>安溪县北门小学：</p><p>在校学生数：<b>1878</b>人</p>",
)


def build(**overrides) -> bytes:
    arguments = dict(
        from_addr="chuyoujiao@163.com",
        from_name="安溪县教育局初幼教股",
        to=["beimenxx@163.com"],
        composed=COMPOSED,
        attachments=[(TEMPLATE_NAME, b"PK\x03\x04 fake xlsx \x00\xff", XLSX)],
        in_reply_to="<272f7dc8.e4bd.183f852fda0.Coremail.beimenxx@163.com>",
        references=["<older@163.com>"],
        message_id=make_message_id("163.com", "receipt:42"),
        date=SENT_AT,
    )
    arguments.update(overrides)
    return build_email(**arguments)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_a_mail_client_reads_back_subject_sender_bodies_and_attachment():
    message = parse(build())

    assert message["Subject"] == "回执：安溪县北门小学2022年10月课后服务情况已收到"
    assert message["From"].addresses[0].display_name == "安溪县教育局初幼教股"
    assert message["From"].addresses[0].addr_spec == "chuyoujiao@163.com"
    assert [a.addr_spec for a in message["To"].addresses] == ["beimenxx@163.com"]
    assert message["Date"].datetime == SENT_AT
    assert message.get_content_type() == "multipart/mixed"
    assert "在校学生数：1878人" in message.get_body(("plain",)).get_content()
    assert "<b>1878</b>" in message.get_body(("html",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == TEMPLATE_NAME
    assert attachment.get_content_type() == XLSX
    assert attachment.get_content() == b"PK\x03\x04 fake xlsx \x00\xff"


def test_attachment_names_use_rfc2047_words_not_rfc2231():
    raw = build()

    assert b'filename="=?utf-8?b?' in raw
    assert b'name="=?utf-8?b?' in raw
    assert b"filename*" not in raw and b"name*" not in raw  # QQ Mail shows those as tcmime.*.bin


def test_plain_ascii_attachment_names_stay_readable():
    raw = build(attachments=[("summary-2022-10.xlsx", b"x", XLSX)])

    assert b'filename="summary-2022-10.xlsx"' in raw


def test_threading_and_robot_headers_follow_rfc3834():
    message = parse(build())

    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Mailbot"] == "1"
    assert message["In-Reply-To"] == "<272f7dc8.e4bd.183f852fda0.Coremail.beimenxx@163.com>"
    assert message["References"].split() == [
        "<older@163.com>", "<272f7dc8.e4bd.183f852fda0.Coremail.beimenxx@163.com>"]
    assert re.fullmatch(r"<mailbot\.[0-9a-f]{32}@163\.com>", message["Message-ID"])


def test_reminders_are_auto_generated_with_reply_to_and_no_thread():
    message = parse(build(auto_submitted="auto-generated", in_reply_to=None, references=[],
                          reply_to="chuyoujiao@163.com"))

    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Reply-To"] == "chuyoujiao@163.com"
    assert message["In-Reply-To"] is None and message["References"] is None


def test_without_attachments_the_message_is_just_text_and_html():
    message = parse(build(attachments=[]))

    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_raw_message_is_ascii_with_crlf_lines_of_legal_length():
    raw = build()

    raw.decode("ascii")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_the_same_input_gives_the_same_bytes():
    assert build() == build()


def test_a_subject_with_line_breaks_cannot_add_headers():
    hostile = Composed(subject="回执\r\nBcc: everyone@example.com", text="x", html="x")

    message = parse(build(composed=hostile))

    assert message["Bcc"] is None
    assert message["Subject"] == "回执 Bcc: everyone@example.com"


def test_malformed_thread_ids_from_a_school_are_dropped():
    message = parse(build(in_reply_to="<a b>\r\nX-Evil: 1", references=["", "<ok@x>", "<ok@x>", "<<>>"]))

    assert message["X-Evil"] is None
    assert message["In-Reply-To"] is None
    assert message["References"] == "<ok@x>"


def test_long_reference_chains_are_trimmed_keeping_the_first_and_latest():
    refs = [f"<m{i}@x>" for i in range(50)]

    ids = parse(build(references=refs, in_reply_to="<parent@x>"))["References"].split()

    assert len(ids) == 20 and ids[0] == "<m0@x>" and ids[-1] == "<parent@x>"


@pytest.mark.parametrize("overrides", [
    {"to": []},
    {"to": ["not an address"]},
    {"to": ["a@b.c\r\nBcc: x@y.z"]},
    {"from_addr": ""},
    {"message_id": "<>"},
    {"date": datetime(2022, 10, 21, 9, 30)},
    {"auto_submitted": "yes"},
])
def test_unusable_arguments_raise_value_error(overrides):
    with pytest.raises(ValueError):
        build(**overrides)


def test_message_id_depends_only_on_the_key():
    first = make_message_id("163.com", "reminder:2022-10:due:安溪县北门小学")

    assert first == make_message_id("163.com", "reminder:2022-10:due:安溪县北门小学")
    assert first != make_message_id("163.com", "reminder:2022-10:overdue:安溪县北门小学")
    assert first.endswith("@163.com") and "<" not in first
    with pytest.raises(ValueError):
        make_message_id("bad domain", "k")


def test_unsafe_file_names_lose_paths_and_stay_bounded():
    assert safe_filename("..\\..\\etc/passwd") == "....etcpasswd"
    long_name = safe_filename("汇" * 400 + ".xlsx")
    assert long_name.endswith(".xlsx") and len(long_name) == 150


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=60, deadline=None)
@given(subject=printable, name=printable, filename=printable, text=printable)
def test_any_text_survives_the_round_trip(subject, name, filename, text):
    raw = build(composed=Composed(subject=subject, text=text, html=text), from_name=name,
                attachments=[(filename, b"data", XLSX)])
    message = parse(raw)

    expected_subject = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", subject).split())
    assert str(message["Subject"]) == expected_subject
    # CPython's address parser puts a space between adjacent encoded words of a long display name
    # (RFC 2047 says to drop it), so long names are compared without white space.
    expected_name = "".join(re.sub(r"[\x00-\x1f\x7f]", " ", name).split())
    assert "".join(message["From"].addresses[0].display_name.split()) == expected_name
    assert message["From"].addresses[0].addr_spec == "chuyoujiao@163.com"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == re.sub(r"\r\n|\r", "\n", text)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == safe_filename(filename)
    assert attachment.get_content() == b"data"


def test_a_rejection_with_its_template_arrives_intact():
    import io

    import openpyxl

    from mailbot.outbound.compose import compose
    from mailbot.outbound.prefilled import build_template, template_filename

    composed = compose("rejection", dict(
        school_names=["安溪县北门小学"], problems=["邮件中没有附件。"], month_label="2022年10月",
        mailbox_label="初幼教股", deadline_label="2022年10月24日"))
    template = build_template("安溪县北门小学", "primary", "2022-10")

    message = parse(build(composed=composed, attachments=[(template_filename("安溪县北门小学", "2022-10"), template, XLSX)]))

    assert message["Subject"] == "退回：2022年10月课后服务汇总表未能登记，请修改后重新发送"
    assert "邮件中没有附件。" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == TEMPLATE_NAME
    workbook = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    assert workbook.active["B5"].value == "安溪县北门小学"
