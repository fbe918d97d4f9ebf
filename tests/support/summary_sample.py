"""Invented but realistic data for previews, the rendering test and the benchmark: a roster of city
schools and their rows over several months, some schools late, some missing. Deterministic per seed."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.config import School
from mailbot.summary.aggregate import StoredRow

TZ = ZoneInfo("Asia/Shanghai")
_PLACES = ("城南", "城东", "城西", "城北", "凤城", "龙湖", "大同", "参内", "蓬莱", "官桥", "东岳", "湖头", "魁斗",
           "金谷", "尚卿", "长坑", "白濑", "虎邱", "西坪", "龙涓", "剑斗", "感德", "祥华", "桃舟", "福田")
_SERVICES = ("科普", "文艺", "劳动", "阅读", "书法", "合唱", "美术", "茶艺", "篮球", "足球", "编程", "心理健康",
             "朗诵", "舞蹈", "围棋", "兴趣小组", "社团")
_CONTACTS = ("陈老师", "林老师", "王老师", "李老师", "黄老师", "张老师", "刘老师", "吴老师")


def sample_roster(count: int, seed: int = 7) -> list[School]:
    """`count` schools, about two thirds primary, with contacts and phones."""
    rng = random.Random(seed)
    schools = []
    for index in range(count):
        place = _PLACES[index % len(_PLACES)]
        round_ = index // len(_PLACES)
        level = "primary" if index % 3 != 2 else "middle"
        kind = "小学" if level == "primary" else "中学"
        suffix = "" if round_ == 0 else f"第{round_ + 1}"
        schools.append(School(name=f"安溪县{place}{suffix}{'实验' if index % 4 == 0 else ''}{kind}", level=level,
                              emails=[f"school{index}@163.com"], contact=rng.choice(_CONTACTS),
                              phone=f"138{rng.randrange(10**8):08d}"))
    return schools


def month_sequence(last: str, count: int) -> list[str]:
    """The `count` months ending with `last`, oldest first."""
    year, month = int(last[:4]), int(last[5:])
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


def sample_rows(schools: list[School], months: list[str], seed: int = 7, missing: float = 0.1,
                late: float = 0.1) -> list[StoredRow]:
    """Rows in force for `months`: each school reports with probability 1 - missing, late with
    probability `late`; figures drift upward over the months as a campaign would."""
    rng = random.Random(seed)
    rows = []
    for step, month in enumerate(months):
        year, mon = int(month[:4]), int(month[5:])
        for school in schools:
            if rng.random() < missing:
                continue
            is_late = rng.random() < late
            day = rng.randint(25, 28) if is_late else rng.randint(15, 24)
            received = datetime(year, mon, day, rng.randint(8, 22), rng.randint(0, 59), tzinfo=TZ)
            enrolled = rng.randint(600, 3200)
            share = min(1.0, rng.uniform(0.72, 0.95) + step * 0.005)
            services = tuple(rng.sample(_SERVICES, k=min(len(_SERVICES), max(0, int(rng.gauss(2.8 + step * 0.1, 1.1))))))
            two_plus_n = rng.random() < 0.95
            rows.append(StoredRow(school=school.name, month=month, received_at=received,
                                  late=is_late, sender=school.emails[0], schools_count=1 if rng.random() < 0.9 else 2,
                                  enrolled=enrolled, participating=int(enrolled * share), two_plus_n=two_plus_n,
                                  n=len(services) if two_plus_n else None, services=services))
    return rows
