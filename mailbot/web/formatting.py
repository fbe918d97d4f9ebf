"""How the web console writes times, states and kinds: in Chinese, times in the configured zone
with their offset (`2022-10-20 20:11 +08:00`, SPEC 8)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.rules.labels import LEVEL_LABELS, STATE_LABELS
from mailbot.rules.month import month_label

SUBMISSION_STATES = {"in_force": "现行", "replaced": "已被替换", "voided": "已作废"}
OUTCOME_LABELS = {"accepted": "已登记", "rejected": "已退回", "quarantined": "待审核（隔离）",
                  "ignored": "非报送邮件（未处理）", "duplicate": "重复邮件", "failed": "处理失败",
                  "baseline": "启用前已有邮件", None: "处理中"}
OUTBOX_STATES = {"queued": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败"}
QUARANTINE_STATES = {"pending": "待审核", "approved": "已批准", "rejected": "已拒绝"}
KIND_LABELS = {"receipt": "回执", "rejection": "退回通知", "summary": "月度汇总", "operator_alarm": "系统告警",
               "operator_quarantine": "隔离通知", "operator_failure": "处理失败通知", "staff_missing": "未报送名单",
               "operator_calendar": "节假日日历提醒", "reminder_upcoming": "报送提醒（临近）",
               "reminder_due": "报送提醒（截止日）", "reminder_overdue": "催报（已逾期）"}
ROLE_LABELS = {"clerk": "经办人员", "viewer": "查看人员"}
ACTION_LABELS = {"excuse": "设为免报", "excuse_withdraw": "撤销免报", "void": "作废报送",
                 "quarantine_approve": "批准隔离邮件", "quarantine_reject": "拒绝隔离邮件", "outbox_retry": "重新发送邮件",
                 "summary_send": "发送月度汇总", "sender_forget": "移除已记住的发件地址",
                 "sender_trust_unauthenticated": "免于发件人验证", "sender_forget_unauthenticated": "撤销免于发件人验证"}
_TARGETS = {"submission": "第{}号报送", "outbox": "第{}号发件", "quarantine": "第{}号隔离邮件", "summary": "{}汇总"}
SOURCE_LABELS = {"imap": "邮箱（IMAP）", "maildir": "邮箱（Maildir）", "file": "手工导入", "operator": "管理员录入"}


def local_time(moment: datetime | None, tz: ZoneInfo) -> str:
    """`2022-10-20 20:11 +08:00`; "" for no time."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    minutes = int(local.utcoffset().total_seconds()) // 60
    sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
    # Plain integer formatting: an overview of 2,000 schools formats 2,000 of these per page.
    return (f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d} "
            f"{sign}{minutes // 60:02d}:{minutes % 60:02d}")


def label(table: dict, key) -> str:
    if key in table:
        return table[key]
    if isinstance(key, str) and key.startswith("reminder_"):
        return "报送提醒"
    return "" if key is None else str(key)


def month_name(month: str | None) -> str:
    return month_label(month) if month else ""


def audit_target(target: str) -> str:
    """"submission 12" -> "第12号报送"; other targets (a school and month) as they are."""
    kind, _, rest = (target or "").partition(" ")
    if kind in _TARGETS and rest:
        return _TARGETS[kind].format(month_name(rest) if kind == "summary" else rest)
    return target or ""


def register(app, tz: ZoneInfo) -> None:
    """The template filters."""
    app.jinja_env.filters.update({
        "localtime": lambda moment: local_time(moment, tz),
        "level": lambda key: label(LEVEL_LABELS, key),
        "state": lambda key: label(STATE_LABELS, key),
        "substate": lambda key: label(SUBMISSION_STATES, key),
        "outcome": lambda key: label(OUTCOME_LABELS, key),
        "outstate": lambda key: label(OUTBOX_STATES, key),
        "qstate": lambda key: label(QUARANTINE_STATES, key),
        "kind": lambda key: label(KIND_LABELS, key),
        "role": lambda key: label(ROLE_LABELS, key),
        "source": lambda key: label(SOURCE_LABELS, key),
        "monthname": month_name,
        "action": lambda key: label(ACTION_LABELS, key),
        "target": audit_target,
        "yesno": lambda value: "" if value is None else ("是" if value else "否"),
        "num": lambda value: "" if value is None else f"{value:,}",
    })
