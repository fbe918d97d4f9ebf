"""Build test messages and tables the way school mail clients do."""

from __future__ import annotations

import io
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime

import openpyxl

HEADER = ["学校名称", "开展课后服务学校数（所）", "在校学生数（人）", "参与课后服务学生数（人）", '是否落实"2+N"模式',
          "拓展服务项目名称"]
BEIMEN_ROW = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def table_xlsx(rows: list[list], title: str | None = "（2022年10月）") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["城区义务教育阶段学校课后服务开展情况汇总表"])
    if title:
        ws.append([title])
    ws.append(HEADER)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def submission(sender: str, to: str, rows: list[list] | None = None, *, subject: str = "课后服务开展情况汇总表",
               date: datetime | None = None, message_id: str | None = None, headers: dict | None = None,
               attachments: list[tuple[str, bytes, str]] | None = None, body: str = "您好，附件请查收。") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime.fromisoformat("2022-10-20T10:00:00+08:00"))
    msg["Message-ID"] = f"<{message_id or abs(hash((sender, subject, str(rows), str(date))))}@test>"
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    if rows is not None:
        msg.add_attachment(table_xlsx(rows), maintype="application", subtype="octet-stream",
                           filename="课后服务汇总表.xlsx")
    for name, data, ctype in attachments or []:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()
