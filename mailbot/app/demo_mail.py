"""What the demo's schools send: the pre-filled template filled in, mailed the way 163/QQ webmail
and Foxmail do (GBK names, RFC 2047), plus the usual mistakes."""

from __future__ import annotations

import io
import random
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailbot.outbound.prefilled import (COUNT_COLUMNS, DATA_ROW, SERVICES_COLUMN, TWO_PLUS_N_COLUMN, build_template,
                               template_filename)

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
SERVICES = ["科普", "美术", "书法", "阅读", "劳动实践", "合唱", "舞蹈", "篮球", "足球", "编程", "茶艺", "围棋"]


def filled_table(school: str, level: str, month: str, enrolled: int, participating: int,
                 services: list[str]) -> bytes:
    """The template a reminder carries, filled in as a school would."""
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(build_template(school, level, month)))
    ws = wb.active
    schools_count, enrolled_col, participating_col = COUNT_COLUMNS
    ws[f"{schools_count}{DATA_ROW}"] = 1
    ws[f"{enrolled_col}{DATA_ROW}"] = enrolled
    ws[f"{participating_col}{DATA_ROW}"] = participating
    ws[f"{TWO_PLUS_N_COLUMN}{DATA_ROW}"] = "是"
    ws[f"{SERVICES_COLUMN}{DATA_ROW}"] = "、".join(services)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def school_mail(*, sender: str, sender_name: str, to: str, subject: str, sent: datetime, body: str,
                attachment: tuple[str, bytes] | None = None, in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{Header(sender_name, 'gbk').encode(maxlinelen=0)} <{sender}>"
    msg["To"] = to
    msg["Subject"] = Header(subject, "gbk").encode(maxlinelen=0)
    msg["Date"] = format_datetime(sent)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg.set_content(body, charset="gbk")
    if attachment:
        name, data = attachment
        part_name = Header(name, "gbk").encode(maxlinelen=0)
        msg.add_attachment(data, maintype=XLSX[0], subtype=XLSX[1])
        part = msg.get_payload()[-1]
        del part["Content-Disposition"]
        part["Content-Disposition"] = f'attachment; filename="{part_name}"'
        part.set_param("name", part_name)
    return msg.as_bytes()


def submission_mail(rng: random.Random, *, school: str, level: str, sender: str, to: str, month: str,
                    sent: datetime, enrolled: int | None = None, participating: int | None = None,
                    in_reply_to: str | None = None) -> bytes:
    enrolled = enrolled or rng.randint(800, 2800)
    participating = participating if participating is not None else rng.randint(int(enrolled * 0.8), enrolled)
    services = rng.sample(SERVICES, rng.randint(2, 5))
    table = filled_table(school, level, month, enrolled, participating, services)
    year, mon = month.split("-")
    return school_mail(sender=sender, sender_name=school.removeprefix("安溪县") + "教务处", to=to,
                       subject=f"{school.removeprefix('安溪县')}{int(mon)}月份课后服务开展情况汇总表", sent=sent,
                       body="您好！附件是我校本月课后服务开展情况汇总表，请查收。", in_reply_to=in_reply_to,
                       attachment=(template_filename(school, month), table))
