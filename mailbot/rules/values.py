"""Pure parsers for the values schools write in the table (SPEC 3.3).

Every parser either returns a clean value or raises ValueError whose message is a Chinese reason
fragment (no trailing full stop) that rows.py prefixes with the sheet, row and column, e.g.
"“约1200”不是整数，请填写准确人数".
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, time

from mailbot.rules.model import Cell, CellError

# No school has ten million pupils; a bigger count is a typo or garbage (e.g. a float like 1e300).
MAX_COUNT = 9_999_999

# Units schools append to counts: 1234人, 1所, 1 个, 3个校区.
_COUNT_UNITS = ("个校区", "校区", "人", "名", "所", "个", "校")
# 1234, 1,234, 1234.0, 1,234.00 (after NFKC and with all white space removed).
_COUNT_RE = re.compile(r"(?P<num>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.0+)?")

_YES = {"是", "√", "✓", "✔", "☑", "y", "yes"}
_NO = {"否", "无", "×", "✗", "✘", "n", "no", "不是", "未开展", "没有"}
# Marks a school puts under its mode sub-column (SPEC 3.2); "v" is how many type a tick.
_MARKS = _YES | {"●", "■", "v", "是的", "有", "1"}

_WHITESPACE_RE = re.compile(r"\s+")


def cell_text(cell: Cell) -> str:
    """The cell as a school would read it on screen, stripped: 1878.0 shows as "1878"."""
    if cell is None:
        return ""
    if isinstance(cell, CellError):
        return cell.code
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float):
        if math.isfinite(cell) and cell.is_integer():
            return str(int(cell))
        return repr(cell)
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M") if (cell.hour or cell.minute) else cell.strftime("%Y-%m-%d")
    if isinstance(cell, (date, time)):
        return cell.isoformat()
    return str(cell).strip()


def is_blank(cell: Cell) -> bool:
    """True for an empty cell or text of only white space (readers give either for an empty cell)."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def compact(text: str) -> str:
    """NFKC and no white space at all: "１ ２３４ 人" -> "1234人". For comparing, never for display."""
    return _WHITESPACE_RE.sub("", unicodedata.normalize("NFKC", text))


def quoted(cell: Cell, limit: int = 30) -> str:
    """The cell for a message, in Chinese quotes, shortened so a hostile cell cannot flood a reply."""
    text = cell_text(cell)
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"“{text}”"


def parse_count(cell: Cell) -> int:
    """A count of schools or students as a non-negative int; ValueError(reason in Chinese) otherwise.

    A blank cell raises too ("未填写"): the caller decides what blank means for each column.
    """
    if is_blank(cell):
        raise ValueError("未填写")
    if isinstance(cell, CellError):
        if cell.code == "nocache":
            raise ValueError("公式没有保存计算结果，请在 Excel 或 WPS 中打开文件后重新保存，或直接填写数字")
        raise ValueError(f"公式错误 {cell.code}，请改为直接填写数字")
    if isinstance(cell, bool):
        raise ValueError(f"{quoted(cell)}不是人数，请填写阿拉伯数字")
    if isinstance(cell, (datetime, date, time)):
        raise ValueError(f"{quoted(cell)}是日期格式，请把单元格改为数字格式后填写人数")
    if isinstance(cell, int):
        return _checked_count(cell, cell)
    if isinstance(cell, float):
        if not math.isfinite(cell):
            raise ValueError(f"{quoted(cell)}不是有效数字，请填写准确人数")
        if not cell.is_integer():
            raise ValueError(f"{quoted(cell)}不是整数，请填写准确人数")
        return _checked_count(int(cell), cell)
    if not isinstance(cell, str):
        raise ValueError(f"{quoted(cell)}不是数字，请填写阿拉伯数字")
    return _parse_count_text(cell)


def _narrow(text: str) -> str:
    """Full-width forms (１２３４, ，) to ASCII and no white space. Unlike NFKC this leaves ² or ⑫
    alone, so they fail as garbage instead of silently becoming digits."""
    narrowed = "".join(chr(ord(ch) - 0xFEE0) if "\uff01" <= ch <= "\uff5e" else ch for ch in text)
    return _WHITESPACE_RE.sub("", narrowed)


def _parse_count_text(cell: str) -> int:
    text = _narrow(cell)
    for unit in _COUNT_UNITS:
        if text.endswith(unit) and len(text) > len(unit):
            text = text[: -len(unit)]
            break
    if text.startswith("-") and _COUNT_RE.fullmatch(text[1:]):
        raise ValueError(f"{quoted(cell)}是负数，请填写准确人数")
    match = _COUNT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{quoted(cell)}不是整数，请填写准确人数")
    return _checked_count(int(match.group("num").replace(",", "")), cell)


def _checked_count(value: int, cell: Cell) -> int:
    if value < 0:
        raise ValueError(f"{quoted(cell)}是负数，请填写准确人数")
    if value > MAX_COUNT:
        raise ValueError(f"{quoted(cell)}数值过大，请核对后填写准确人数")
    return value


def _yes_no_key(cell: Cell) -> str:
    return compact(cell_text(cell)).casefold()


def parse_yes_no(cell: Cell) -> tuple[bool, str | None]:
    """Whether the school runs "2+N": (answer, warning in Chinese or None).

    Blank is a plain "no". Text beginning with 是 (e.g. "是（科普、美术）") is yes, text beginning
    with 否 is no. Anything unrecognised is no, with a warning asking for 是 or 否.
    """
    if is_blank(cell):
        return False, None
    if isinstance(cell, bool):
        return cell, None
    key = _yes_no_key(cell)
    # "是否" / "是/否" is the template's hint left in place, not an answer.
    undecided = key.startswith("是") and "否" in key[:3]
    if not undecided:
        if key in _YES or key.startswith("是"):
            return True, None
        if key in _NO or key.startswith("否"):
            return False, None
    return False, f"{quoted(cell)}无法识别为“是”或“否”，已按“否”记录，请填写“是”或“否”"


def is_mark(cell: Cell) -> bool:
    """Whether a mode sub-column cell is ticked (是, √, ✓, ✔, Y, yes, ☑, ●, v …)."""
    if is_blank(cell) or isinstance(cell, CellError):
        return False
    if isinstance(cell, bool):
        return cell
    key = _yes_no_key(cell)
    return key in _MARKS or (key.startswith("是") and "否" not in key)


# Separators between service names: 、，,；;/／ line breaks, tabs, 。 and |.
_SEPARATORS_RE = re.compile(r"[、，,；;/／\r\n\t|｜。]+")
# Numbering that starts an item: ①..⑳, (1)/（1）, 1. 1、 1) 1．; the look-arounds keep "1.5" and "3D".
_NUMBERING_RE = re.compile(
    r"[\u2460-\u2473]"
    r"|[(（]\s*\d{1,2}\s*[)）]"
    r"|(?<![\d.．])\d{1,2}\s*[.．、)）](?![\d])"
)
# Chinese-numeral numbering (一、科普) only where an item starts, so 统一 in a name is untouched.
_CHINESE_NUMBERING_RE = re.compile(r"(?:^|(?<=\s))[一二三四五六七八九十]{1,3}[、.．)）]")
_EDGE_JUNK = " \u3000\t.．。:：!！?？\"'“”‘’"


def _strip_edges(item: str) -> str:
    while True:
        stripped = item.strip().strip(_EDGE_JUNK)
        if stripped == item:
            return item
        item = stripped


def _clean_item(item: str) -> str:
    item = _strip_edges(item)
    # A bracket left open by the split of "（科普、美术）" belongs to no name.
    if item[:1] in "(（" and not any(ch in item for ch in ")）"):
        item = item[1:]
    if item[-1:] in ")）" and not any(ch in item for ch in "(（"):
        item = item[:-1]
    return _strip_edges(item)


def service_key(name: str) -> str:
    """How two service names are compared: "美术 " and "美术" are one service."""
    return compact(name).casefold()


def split_services(text: Cell) -> list[str]:
    """Service names as listed, numbering and separators removed, duplicates dropped, order kept.

    "1.书法\\n2.合唱", "1、科普2、美术", "（1）科普（2）美术" and "①科普②美术" all give two names.
    """
    if is_blank(text) or isinstance(text, (CellError, bool)):
        return []
    raw = text if isinstance(text, str) else cell_text(text)
    raw = _CHINESE_NUMBERING_RE.sub("\n", raw)
    raw = _NUMBERING_RE.sub("\n", raw)
    names: list[str] = []
    seen: set[str] = set()
    for piece in _SEPARATORS_RE.split(raw):
        name = _clean_item(piece)
        key = service_key(name)
        if name and key not in seen:
            seen.add(key)
            names.append(name)
    return names


# Words that fill the cell but name no service ("无", "-", the "2" itself).
_NOT_A_SERVICE = {"无", "暂无", "没有", "否", "是", "空", "-", "--", "—", "——", "/", "\\", "2", "n",
                  "基础服务", "基本服务", "基础", "两项基础服务", "2项基础服务"}
# The basic sports service under its usual names. Sports *clubs* (篮球社团, 足球队) stay extension
# services: the plan lists 社团 and 兴趣小组 among the extensions.
_BASIC_SPORTS = {"体育", "体育活动", "体育锻炼", "体育运动", "体育锻炼活动", "体育活动锻炼", "体锻",
                 "阳光体育", "阳光体育活动", "户外体育活动", "体育锻炼与活动"}
_BRACKETED_RE = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")
_PREFIXES = ("课后", "基础", "校内", "日常", "集中")


def _basic_key(name: str) -> str:
    key = _BRACKETED_RE.sub("", service_key(name))
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            key = key[len(prefix):]
    if key.endswith("服务") and len(key) > 2:
        key = key[:-2]
    return key


def is_basic_service(name: str) -> bool:
    """Whether a listed name is one of the basic "2" (homework help, sports) rather than an extension.

    Decision: anything about homework (作业辅导, 课后作业辅导, 作业辅导（基础）, 作业答疑) is basic;
    sports is basic only under its generic names (体育活动, 体育锻炼, 体育运动 …), not as a club.
    """
    key = _basic_key(name)
    return "作业" in key or key in _BASIC_SPORTS


_NUMBER_RE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?%?$")


def is_not_a_name(name: str) -> bool:
    """A fragment that names no service: only punctuation or symbols (">", "+", "?"), one Latin
    letter ("y"), or a number ("3", "2.5"). Such fragments earned "2+N" credit (issue 11); they are
    dropped from N with a warning."""
    key = service_key(name)
    if not any(ch.isalnum() for ch in key):
        return True
    return (len(key) == 1 and key.isascii() and key.isalpha()) or bool(_NUMBER_RE.match(key))


def fragments_not_names(items: list[str]) -> list[str]:
    """The listed names `is_not_a_name` drops, except the usual placeholders ("-", "2", "无"),
    which say "none" on purpose: what the school should be told about."""
    return [name for name in items if is_not_a_name(name) and service_key(name) not in _NOT_A_SERVICE]


def extension_services(items: list[str]) -> list[str]:
    """The extension services ("N") among listed names: basics, placeholders, bare numbers and
    fragments that are not names dropped."""
    result: list[str] = []
    seen: set[str] = set()
    for name in items:
        key = service_key(name)
        if not key or key in seen or key in _NOT_A_SERVICE or _basic_key(name) in _NOT_A_SERVICE:
            continue
        if is_not_a_name(name) or is_basic_service(name):
            continue
        seen.add(key)
        result.append(name)
    return result
