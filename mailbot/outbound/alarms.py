"""Operator alarms (SPEC 5): one email per problem, never one per poll.

An alarm is an outbox row like any other mail, so it is sent by the same throttled, retried
sender. Its key names the problem and the occurrence ("poll_stalled:zjg:<since>",
"send_refused:<row id>", "daily_cap:zjg:2022-10-24"): queueing the same alarm again is a no-op,
which is what keeps a broken mailbox from filling the operator's inbox one poll at a time.
Alarms about a mailbox go through the other one; an alarm its mailbox refused is queued once more
through the other (`reroute`).

Problems (the `problem` of the `operator_alarm` template):
- poll_stalled: no successful poll of a mailbox for `alarm_after_minutes`.
- send_refused: the SMTP server refused a message for good (5xx), or it ran out of retries; one
  per mailbox and day.
- send_account: the SMTP account itself fails (login refused, TLS): nothing can be sent.
- daily_cap: a mailbox reached `daily_send_cap` today; sending resumes tomorrow.
- disk_full: the archive could not write a message (ENOSPC); this one is not queued but sent from
  memory, since the outbox may be on the full disk too (mailbot.outbound.disk_alarm).

Every alarm is also logged at ERROR/WARNING level, for journald, in case mail cannot leave.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from mailbot.config import Config, MailboxConfig
from mailbot.timeutil import label_date, label_datetime

# The composing and the outbox (Jinja2, the MIME builder: about 2 MB) are imported when an alarm is
# queued, not by the idle daemon that only asks whether one is due.

log = logging.getLogger(__name__)

KIND = "operator_alarm"
PROBLEMS = ("poll_stalled", "send_refused", "send_account", "daily_cap", "disk_full")
# Every key the template may use; absent facts are blank, so StrictUndefined never trips.
_FACTS = ("mailbox", "address", "since_label", "minutes", "error", "subject", "recipients", "attempts", "cap",
          "day_label", "directory")


def poll_alarm_due(*, created_at: datetime, last_success_at: datetime | None, alarm_sent_at: datetime | None,
                   now: datetime, after_minutes: float) -> bool:
    """Whether "no successful poll" should be raised now: the mailbox has not been polled
    successfully for `after_minutes` (counted from the first attempt when it never was), and no
    alarm was sent since the last success."""
    since = last_success_at or created_at
    if alarm_sent_at is not None and alarm_sent_at >= since:
        return False
    return now - since >= timedelta(minutes=after_minutes)


def alarm_context(problem: str, **facts) -> dict:
    """The template context: the problem plus every fact as text ("" when not given)."""
    if problem not in PROBLEMS:
        raise ValueError(f"unknown alarm problem {problem!r}")
    unknown = set(facts) - set(_FACTS)
    if unknown:
        raise ValueError(f"unknown alarm facts {sorted(unknown)}")
    return {"problem": problem, **{key: "" if facts.get(key) is None else str(facts[key]) for key in _FACTS}}


def sending_mailbox(config: Config, avoid: str | None = None) -> MailboxConfig:
    """The mailbox whose account sends an alarm: one other than the troubled one when there is."""
    for mailbox in config.mailboxes:
        if mailbox.name != avoid:
            return mailbox
    return config.mailboxes[0]


def raise_alarm(session: Session, config: Config, *, key: str, problem: str, now: datetime,
                avoid_mailbox: str | None = None, **facts) -> bool:
    """Queue one alarm to the operator in the caller's transaction. True when it was queued now,
    False when the same alarm was queued before or there is no [operator] email."""
    from mailbot.outbound.compose import compose
    from mailbot.outbound.outbox import queue_mail

    context = alarm_context(problem, **facts)
    if not config.operator_email:
        log.error("alarm %s (no [operator] email configured to tell): %s", problem, context)
        return False
    composed = compose(KIND, context)
    row = queue_mail(session, key=f"alarm:{key}", kind=KIND, mailbox=sending_mailbox(config, avoid_mailbox),
                     to=[config.operator_email], composed=composed, now=now, auto_submitted="auto-generated",
                     from_name="mailbot")
    if row is not None:
        log.error("alarm queued for %s: %s", config.operator_email, composed.subject)
    return row is not None


# -- the four alarms, with the facts each one needs ------------------------------------------------


def poll_stalled(session: Session, config: Config, mailbox: MailboxConfig, *, since: datetime, error: str,
                 now: datetime) -> bool:
    return raise_alarm(session, config, key=f"poll_stalled:{mailbox.name}:{since.isoformat()}",
                       problem="poll_stalled", now=now, avoid_mailbox=mailbox.name, mailbox=mailbox.name, address=mailbox.address,
                       since_label=label_datetime(since, config.timezone),
                       minutes=f"{config.alarm_after_minutes:g}", error=error or "（没有记录到错误信息）")


def send_refused(session: Session, config: Config, mailbox: MailboxConfig, *, row_id: int, recipients: list[str],
                 subject: str, attempts: int, error: str, now: datetime) -> bool:
    """One alarm per mailbox and day, however many messages it refuses (the first one is named; a
    blocked account refuses them all), sent through another mailbox: the refusing account would
    refuse the alarm too (issue 11)."""
    day = now.astimezone(config.timezone).date().isoformat()
    return raise_alarm(session, config, key=f"send_refused:{mailbox.name}:{day}", problem="send_refused", now=now,
                       avoid_mailbox=mailbox.name, mailbox=mailbox.name, address=mailbox.address,
                       recipients="、".join(recipients), subject=subject, attempts=attempts, error=error)


def reroute(session: Session, config: Config, row, now: datetime) -> bool:
    """Queue a copy of an alarm that its mailbox could not send through the other mailbox, once."""
    from mailbot.outbound.outbox import queue_mail

    tried = row.key.split(":via:")[1:] + [row.mailbox]
    other = next((mb for mb in config.mailboxes if mb.name not in tried), None)
    if other is None or not config.operator_email:
        log.error("alarm %s could not be sent through any mailbox: %s", row.key, row.subject)
        return False
    base = row.key.split(":via:")[0].removeprefix("alarm:")
    composed = _recomposed(row.raw)
    queued = queue_mail(session, key=f"alarm:{base}" + "".join(f":via:{m}" for m in tried), kind=KIND,
                        mailbox=other, to=[config.operator_email], composed=composed, now=now,
                        auto_submitted="auto-generated", from_name="mailbot")
    if queued is not None:
        log.error("alarm %s refused through %s: queued again through %s", row.key, row.mailbox, other.name)
    return queued is not None


def _recomposed(raw: bytes):
    """The subject and bodies of an alarm we built, to build it again with another sender."""
    import email
    import email.policy

    from mailbot.outbound.compose import Composed

    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return Composed(str(message["Subject"]), text.get_content() if text else "", html.get_content() if html else "")


def send_account(session: Session, config: Config, mailbox: MailboxConfig, *, error: str, now: datetime) -> bool:
    day = now.astimezone(config.timezone).date().isoformat()
    return raise_alarm(session, config, key=f"send_account:{mailbox.name}:{day}", problem="send_account", now=now,
                       avoid_mailbox=mailbox.name, mailbox=mailbox.name, address=mailbox.address, error=error)


def daily_cap(session: Session, config: Config, mailbox: MailboxConfig, *, now: datetime) -> bool:
    local = now.astimezone(config.timezone)
    return raise_alarm(session, config, key=f"daily_cap:{mailbox.name}:{local.date().isoformat()}",
                       problem="daily_cap", now=now, avoid_mailbox=mailbox.name, mailbox=mailbox.name,
                       address=mailbox.address, cap=mailbox.daily_send_cap, day_label=label_date(local))
