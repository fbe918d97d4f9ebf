"""Generate N realistic submissions (one .eml each, a 15-30 KB .xlsx attached) and a config with a
matching roster. Used by bench_ingest.py and the IMAP benchmarks.

usage: python bench/make_corpus.py OUT_DIR [N]
"""

from __future__ import annotations

import base64
import io
import json
import random
import sys
from email.header import Header
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
from openpyxl.styles import Alignment, Border, Font, Side

SERVICES = ["科普", "美术", "书法", "阅读", "劳动", "合唱", "舞蹈", "篮球", "足球", "编程", "茶艺", "围棋"]
HEADER = ["学校名称", "开展课后服务学校数（所）", "在校学生数（人）", "参与课后服务学生数（人）",
          '是否落实"2+N"模式', "拓展服务项目名称"]
NOTES = ("填表说明：1.在校学生数指本校在籍学生人数；2.参与课后服务学生数指本月参加课后服务的学生人数；"
         "3.“2+N”模式中的“2”指作业辅导和体育活动两项基础服务，“N”指科普、文艺、劳动、阅读、兴趣小组、社团等拓展服务；"
         "4.请于每月24日前报送至相应股室邮箱。")


def school_name(i: int, level: str) -> str:
    return f"安溪县第{i}实验{'小学' if level == 'primary' else '中学'}"


def stamp_image(rng: random.Random):
    """A red seal as a phone photo of it looks: a noisy PNG of 8-20 KB (needs Pillow)."""
    from openpyxl.drawing.image import Image as SheetImage
    from PIL import Image, ImageDraw

    size = rng.randint(90, 130)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((4, 4, size - 4, size - 4), outline=(200, 20, 20), width=5)
    pixels = img.load()
    for _ in range(size * size // 3):
        x, y = rng.randrange(size), rng.randrange(size)
        r, g, b = pixels[x, y]
        pixels[x, y] = (max(0, r - rng.randint(0, 60)), max(0, g - rng.randint(0, 60)), max(0, b - rng.randint(0, 60)))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    buf.seek(0)
    return SheetImage(buf)


def make_xlsx(rng: random.Random, name: str, month: int) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "汇总表"
    thin = Side(style="thin")
    ws.merge_cells("A1:F1")
    ws["A1"] = "城区义务教育阶段学校课后服务开展情况汇总表"
    ws["A1"].font = Font(size=16, bold=True)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.merge_cells("A2:F2")
    ws["A2"] = f"（2022年{month}月）"
    ws["A3"] = f"填报单位：{name}（盖章）"
    ws["D3"] = f"填报时间：2022年{month}月{rng.randint(10, 24)}日"
    ws.append(HEADER)
    enrolled = rng.randint(600, 3000)
    services = rng.sample(SERVICES, rng.randint(2, 6))
    ws.append([name, 1, enrolled, rng.randint(enrolled // 2, enrolled), "是", "、".join(services)])
    for row in ws.iter_rows(min_row=4, max_row=5):
        for cell in row:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.alignment = Alignment(wrap_text=True, vertical="center")
    # The annex as schools get it: bordered blank rows for more schools, then the notes.
    for _ in range(rng.randint(30, 60)):
        ws.append([None] * 6)
        for cell in ws[ws.max_row]:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.font = Font(name=rng.choice(["宋体", "仿宋_GB2312", "Calibri"]), size=rng.choice([10, 11, 12]))
    ws.append([NOTES])
    ws.append([f"填表人：{rng.choice(['王', '李', '陈', '林'])}老师", None, f"联系电话：0595-2{rng.randint(1000000, 9999999)}"])
    for col, width in zip("ABCDEF", (28, 14, 14, 16, 14, 40)):
        ws.column_dimensions[col].width = width
    ws.page_setup.orientation = "landscape"
    notes = wb.create_sheet("填表说明")
    for i, line in enumerate(NOTES.split("；")):
        notes.append([f"{i + 1}.", line])
    # Most real 15-30 KB tables are that size because of the school's stamp pasted in as a picture.
    ws.add_image(stamp_image(rng), "E9")
    wb.create_sheet("Sheet3")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def make_eml(rng: random.Random, i: int, name: str, sender: str, to: str, month: int, xlsx: bytes) -> bytes:
    sent = datetime(2022, month, rng.randint(5, 24), rng.randint(8, 20), rng.randint(0, 59), tzinfo=timezone(timedelta(hours=8)))
    filename = Header(f"{name}2022年{month}月课后服务开展情况汇总表.xlsx", "gbk").encode()
    body = base64.encodebytes("您好！附件是我校课后服务开展情况汇总表，请查收。".encode("gbk")).decode()
    att = base64.encodebytes(xlsx).decode()
    text = (
        f"From: {Header(name, 'gbk').encode()} <{sender}>\r\nTo: <{to}>\r\n"
        f"Subject: {Header(f'{name}{month}月份课后服务开展情况汇总表', 'gbk').encode()}\r\n"
        f"Date: {format_datetime(sent)}\r\nMessage-ID: <bench.{i}.{month}@bench.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        f'--b1\r\nContent-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n'
        f'--b1\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet; name="{filename}"\r\n'
        f'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="{filename}"\r\n\r\n'
        f"{att}\r\n--b1--\r\n")
    return text.replace("\n", "\r\n").replace("\r\r\n", "\r\n").encode("ascii")


def make_corpus(out: Path, n: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    schools, paths = [], []
    for i in range(n):
        level = "primary" if i % 2 == 0 else "middle"
        name = school_name(i + 1, level)
        sender = f"school{i + 1}@bench.test"
        schools.append({"name": name, "level": level, "emails": [sender], "aliases": []})
        to = "chuyoujiao@163.com" if level == "primary" else "zjg23236764@163.com"
        path = out / f"{i + 1:05d}.eml"
        path.write_bytes(make_eml(rng, i, name, sender, to, 10, make_xlsx(rng, name, 10)))
        paths.append(path)
    (out / "roster.json").write_text(json.dumps(schools, ensure_ascii=False), encoding="utf-8")
    return paths


def write_config(out: Path, state: Path) -> Path:
    schools = json.loads((out / "roster.json").read_text(encoding="utf-8"))
    lines = ["[general]", f'state_dir = "{state}"', ""]
    for name, address, level in (("chuyoujiao", "chuyoujiao@163.com", "primary"), ("zjg", "zjg23236764@163.com", "middle")):
        lines += ["[[mailbox]]", f'name = "{name}"', f'address = "{address}"', f'levels = ["{level}"]',
                  f'maildir = "{state}/maildir/{name}"', f'outbox_dir = "{state}/outbox/{name}"', ""]
    for s in schools:
        lines += ["[[school]]", f"name = {json.dumps(s['name'], ensure_ascii=False)}", f'level = "{s["level"]}"',
                  f"emails = {json.dumps(s['emails'])}", ""]
    path = out / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    files = make_corpus(target, count)
    sizes = sorted(len(p.read_bytes()) for p in files)
    print(f"{len(files)} messages in {target}, {sizes[0] // 1024}-{sizes[-1] // 1024} KiB each")
