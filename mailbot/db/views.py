"""Read-only views of the database for people: the web console's pages and the operator's list and
show commands (`messages list/show`, `submissions list`, `outbox show`) call these same functions.

Each is a function of a Session (and the config where the roster matters) returning plain data:
dicts and lists with aware datetimes, no ORM objects, so a caller may close the session at once and
format times in the configured zone. Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import json
from datetime import timezone

from sqlalchemy import String, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from mailbot.config import Config, School
from mailbot.db.campaign import excused_schools
from mailbot.db.models import Excuse, Message, Outbox, Quarantine, Submission, VoidLog
from mailbot.db.states import OutboxStatus, QuarantineStatus
from mailbot.rules.outcome import Outcome
from mailbot.rules.status import InForce, month_status
from mailbot.summary.aggregate import (SCOPES, TARGET_TWO_PLUS_N, TARGET_TWO_PLUS_THREE, StoredRow, figures_of,
                                       school_lines)
from mailbot.summary.formatting import count, percent
from mailbot.summary.load import months_on_record
from mailbot.summary.render import rate_text, target_verdict
from mailbot.timeutil import deadline_of

PAGE_SIZE = 100


def month_choices(session: Session, current: str) -> list[str]:
    """The months on record and the current one, newest first."""
    return sorted(set(months_on_record(session)) | {current}, reverse=True)


def _kpi_cards(figures) -> list[dict]:
    """The summary's four KPIs (SPEC 7) for one scope, every figure already text."""
    return [
        {"key": "reporting", "title": "已报送学校", "value": f"{count(figures.reported)}/{count(figures.required)}所",
         "detail": f"按时{figures.on_time}所，逾期{figures.late}所，未报送{figures.missing}所，免报{figures.excused}所",
         "target": None, "verdict": None},
        {"key": "participation", "title": "学生参与率", "value": percent(figures.participation.value),
         "detail": f"参与{count(figures.participating)}人 / 在校{count(figures.enrolled)}人",
         "target": None, "verdict": None},
        {"key": "two_plus_n", "title": "“2+N”模式覆盖率", "value": percent(figures.two_plus_n.value),
         "detail": f"{rate_text(figures.two_plus_n)}落实", "target": "目标100%",
         "verdict": target_verdict(figures.two_plus_n, TARGET_TWO_PLUS_N)},
        {"key": "two_plus_three", "title": "“2+3”模式占比", "value": percent(figures.two_plus_three.value),
         "detail": f"{rate_text(figures.two_plus_three)}达到“2+3”", "target": "目标不低于80%",
         "verdict": target_verdict(figures.two_plus_three, TARGET_TWO_PLUS_THREE)},
    ]


def month_rows(session: Session, month: str) -> dict[str, StoredRow]:
    """The rows in force for one month (as summary.load.rows_in_force gives them), read lean: the
    time and the services come as their stored text and are decoded here with the C parsers, which
    for 2,000 schools is most of the difference between a slow overview and a fast one."""
    query = select(Submission.school, type_coerce(Submission.received_at, String), Submission.late,
                   Submission.sender, Submission.schools_count, Submission.enrolled, Submission.participating,
                   Submission.two_plus_n, Submission.n, type_coerce(Submission.services, String)).where(
        Submission.month == month, Submission.replaced_by.is_(None), Submission.voided_at.is_(None))
    rows = {}
    for school, received, late, sender, count_, enrolled, participating, two_plus_n, n, services in \
            session.execute(query.order_by(Submission.id)):
        # SQLite's UTCDateTime keeps naive UTC text ("2022-10-20 12:11:00.000000") and JSON the
        # list's text; PostgreSQL's driver hands both over decoded already (timestamptz, json).
        received_at = (received.astimezone(timezone.utc) if isinstance(received, datetime)
                       else datetime.fromisoformat(received).replace(tzinfo=timezone.utc))
        listed = services if isinstance(services, list) else (json.loads(services) if services else [])
        names = tuple(x for x in listed if isinstance(x, str))
        rows[school] = StoredRow(school, month, received_at, bool(late), sender or "", count_, enrolled,
                                 participating, bool(two_plus_n), n, names)
    return rows


def month_overview(session: Session, config: Config, month: str, level: str | None = None) -> dict:
    """本月概览: the KPI cards and every active school's state, figures and submitted time.

    `level` ("primary" or "middle") narrows both the cards and the list."""
    reporting = int(month[5:]) in config.schedule.reporting_months
    rows = month_rows(session, month)
    lines = school_lines(month, config.schools, rows, excused_schools(session, month),
                         config.schedule.deadline_day, config.timezone, reporting)
    scope = level if level in SCOPES else "all"
    figures = figures_of(lines)[scope]
    schools = []
    for line in lines:
        if level and line.level != level:
            continue
        row = line.row
        schools.append({"name": line.name, "level": line.level, "state": line.state,
                        "submitted_at": row.received_at if row else None,
                        "enrolled": row.enrolled if row else None,
                        "participating": row.participating if row else None,
                        "two_plus_n": row.two_plus_n if row else None, "n": row.n if row else None,
                        "services": list(row.services) if row else []})
    return {"month": month, "level": level, "reporting": reporting,
            "deadline": deadline_of(month, config.schedule.deadline_day, config.timezone),
            "kpis": _kpi_cards(figures), "schools": schools,
            "counts": {"on_time": figures.on_time, "late": figures.late, "missing": figures.missing,
                       "excused": figures.excused, "required": figures.required}}


# -- submissions ------------------------------------------------------------------------------------
def _submission(sub: Submission) -> dict:
    state = "voided" if sub.voided_at is not None else ("replaced" if sub.replaced_by is not None else "in_force")
    return {"id": sub.id, "school": sub.school, "month": sub.month, "state": state, "late": sub.late,
            "received_at": sub.received_at, "sender": sub.sender, "message_id": sub.message_pk,
            "replaced_by": sub.replaced_by, "voided_at": sub.voided_at, "void_reason": sub.void_reason,
            "entered_by": sub.entered_by, "schools_count": sub.schools_count, "enrolled": sub.enrolled,
            "participating": sub.participating, "two_plus_n": sub.two_plus_n, "n": sub.n,
            "services": list(sub.services or []), "sheet": sub.sheet, "row_number": sub.row_number,
            "warnings": list(sub.warnings or [])}


def list_submissions(session: Session, month: str | None = None, school: str | None = None) -> list[dict]:
    """Every accepted submission (in force, replaced, voided), newest first: the IDs `void` takes."""
    query = select(Submission)
    if month:
        query = query.where(Submission.month == month)
    if school:
        query = query.where(Submission.school == school)
    return [_submission(s) for s in session.scalars(query.order_by(Submission.month.desc(),
                                                                   Submission.received_at.desc(),
                                                                   Submission.id.desc()))]


# -- a school ---------------------------------------------------------------------------------------
def find_school(config: Config, name: str) -> School | None:
    return next((s for s in config.schools if s.name == name), None)


def school_detail(session: Session, config: Config, school: School, current: str) -> dict:
    """A school's page: every month's state, every submission (in force and the history it
    replaced), the messages it sent and the mail it got."""
    subs = list_submissions(session, school=school.name)
    excuses = {e.month: e for e in session.scalars(select(Excuse).where(
        Excuse.school == school.name, Excuse.withdrawn_at.is_(None)))}
    months = sorted({s["month"] for s in subs} | set(excuses) | {current}
                    | {m for m in months_on_record(session)}, reverse=True)
    months_out = []
    for month in months:
        reporting = int(month[5:]) in config.schedule.reporting_months
        if not school.active_in(month) or (not reporting and not any(s["month"] == month for s in subs)):
            continue
        in_force = next((s for s in subs if s["month"] == month and s["state"] == "in_force"), None)
        forced = {} if in_force is None else {school.name: InForce(
            school.name, in_force["received_at"], in_force["late"], in_force["enrolled"],
            in_force["participating"], in_force["two_plus_n"], in_force["n"], in_force["services"])}
        status = month_status(month, [school], forced, {school.name} if month in excuses else set(), config.schedule.deadline_day,
                              config.timezone, reporting)
        state = status["schools"][0]["state"] if status["schools"] else "not_required"
        excuse = excuses.get(month)
        months_out.append({"month": month, "state": state, "submission": in_force,
                           "history": [s for s in subs if s["month"] == month and s is not in_force],
                           "excuse": {"reason": excuse.reason, "by": excuse.created_by, "at": excuse.created_at}
                           if excuse else None})
    message_pks = {s["message_id"] for s in subs if s["message_id"]}
    senders = [e.lower() for e in school.emails]
    conditions = [Message.id.in_(message_pks)] if message_pks else []
    if senders:
        conditions.append(Message.sender.in_(senders))
    messages = []
    if conditions:
        messages = [_message_row(m) for m in session.scalars(
            select(Message).where(or_(*conditions)).order_by(Message.received_at.desc(), Message.id.desc())
            .limit(PAGE_SIZE))]
    out_conditions = [Outbox.recipient.in_(senders)] if senders else []
    if messages:
        out_conditions.append(Outbox.message_pk.in_([m["id"] for m in messages]))
    mail = []
    if out_conditions:
        mail = [_outbox_row(o) for o in session.scalars(
            select(Outbox).where(or_(*out_conditions)).order_by(Outbox.id.desc()).limit(PAGE_SIZE))]
    return {"name": school.name, "level": school.level, "emails": list(school.emails),
            "aliases": list(school.aliases), "contact": school.contact, "phone": school.phone,
            "months": months_out, "messages": messages, "mail": mail}


# -- incoming messages ------------------------------------------------------------------------------
def _reason(m: Message) -> str:
    """Why the message ended as it did, in the words the pipeline recorded."""
    parts = list(m.errors or [])
    if m.outcome == Outcome.FAILED and m.last_error:
        parts.append(m.last_error)
    if not parts and m.result:
        for row in m.result.get("rows") or []:
            parts.extend(row.get("errors") or [])
    return "；".join(str(p) for p in parts)


def _message_row(m: Message) -> dict:
    result = m.result or {}
    return {"id": m.id, "mailbox": m.mailbox, "source": m.source, "sender": m.sender, "subject": m.subject,
            "date": m.date, "received_at": m.received_at, "read_at": m.read_at, "outcome": m.outcome,
            "reason": _reason(m), "month": result.get("month"), "size": m.size,
            "message_id": m.message_id, "attempts": m.attempts}


def _month_bounds(month: str, config: Config) -> tuple[datetime, datetime]:
    year, mon = int(month[:4]), int(month[5:])
    start = datetime(year, mon, 1, tzinfo=config.timezone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=config.timezone)
    return start, end


def list_messages(session: Session, config: Config, *, month: str | None = None, outcome: str | None = None,
                  school: str | None = None, mailbox: str | None = None, limit: int = PAGE_SIZE,
                  offset: int = 0) -> dict:
    """Every message mailbot saw, newest first, with its outcome and reason. `month` is the month
    it was received in (configured zone); `school` the messages from its addresses or recorded for it."""
    query = select(Message)
    if month:
        start, end = _month_bounds(month, config)
        query = query.where(Message.received_at >= start, Message.received_at < end)
    if outcome:
        query = query.where(Message.outcome == outcome)
    if mailbox:
        query = query.where(Message.mailbox == mailbox)
    if school:
        found = find_school(config, school)
        emails = [e.lower() for e in found.emails] if found else []
        recorded = select(Submission.message_pk).where(Submission.school == school)
        query = query.where(or_(Message.sender.in_(emails), Message.id.in_(recorded)))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Message.received_at.desc(), Message.id.desc()).limit(limit).offset(offset))
    return {"total": total, "offset": offset, "limit": limit, "messages": [_message_row(m) for m in rows]}


def message_detail(session: Session, message_pk: int) -> dict | None:
    """One message: what the ledger holds, the rows it carried, the submissions it made, the
    quarantine decision and the mail it caused (replies; notices to the operator are listed too)."""
    m = session.get(Message, message_pk)
    if m is None:
        return None
    out = _message_row(m)
    result = m.result or {}
    q = session.scalar(select(Quarantine).where(Quarantine.message_pk == m.id))
    out.update({
        "archive_path": m.archive_path, "purged_at": m.purged_at, "warnings": list(m.warnings or []),
        "errors": list(m.errors or []), "last_error": m.last_error, "rows": list(result.get("rows") or []),
        "submissions": [_submission(s) for s in session.scalars(
            select(Submission).where(Submission.message_pk == m.id).order_by(Submission.id))],
        "quarantine": None if q is None else {"id": q.id, "status": q.status, "reason": q.reason,
                                              "decided_by": q.decided_by, "decided_at": q.decided_at,
                                              "note": q.note},
        "mail": [_outbox_row(o) for o in session.scalars(
            select(Outbox).where(Outbox.message_pk == m.id).order_by(Outbox.id))],
    })
    return out


# -- outbox -----------------------------------------------------------------------------------------
def _outbox_row(o: Outbox) -> dict:
    return {"id": o.id, "key": o.key, "kind": o.kind, "mailbox": o.mailbox, "from": o.from_addr,
            "to": list(o.to_addrs or []), "subject": o.subject, "status": o.status, "attempts": o.attempts,
            "created_at": o.created_at, "sent_at": o.sent_at, "next_attempt_at": o.next_attempt_at,
            "last_error": o.last_error, "message_id": o.message_pk, "own_message_id": o.message_id}


def list_outbox(session: Session, *, status: str | None = None, kind: str | None = None,
                limit: int = PAGE_SIZE, offset: int = 0) -> dict:
    """Queued, sending, sent and failed mail, newest first, with the server's last answer."""
    query = select(Outbox)
    if status:
        query = query.where(Outbox.status == status)
    if kind:
        query = query.where(Outbox.kind.startswith(kind))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Outbox.id.desc()).limit(limit).offset(offset))
    return {"total": total, "offset": offset, "limit": limit, "mail": [_outbox_row(o) for o in rows]}


def outbox_detail(session: Session, outbox_id: int) -> dict | None:
    """One email as sent (its raw bytes included) and the retries made of it."""
    o = session.get(Outbox, outbox_id)
    if o is None:
        return None
    out = _outbox_row(o)
    out["raw"] = bytes(o.raw)
    out["retries"] = [_outbox_row(r) for r in session.scalars(
        select(Outbox).where(Outbox.key.startswith(f"{o.key}:retry:")).order_by(Outbox.id))]
    return out


# -- quarantine -------------------------------------------------------------------------------------
def list_quarantine(session: Session, *, pending_only: bool = False, limit: int = PAGE_SIZE) -> list[dict]:
    """Held messages (pending first, then the latest decisions): sender, subject, why, and the rows
    approving it would record."""
    query = select(Quarantine, Message).join(Message, Quarantine.message_pk == Message.id)
    if pending_only:
        query = query.where(Quarantine.status == QuarantineStatus.PENDING)
    query = query.order_by((Quarantine.status != QuarantineStatus.PENDING), Quarantine.id.desc()).limit(limit)
    out = []
    for q, m in session.execute(query):
        out.append({"id": q.id, "status": q.status, "reason": q.reason,
                    "candidate_schools": list(q.candidate_schools or []), "created_at": q.created_at,
                    "decided_at": q.decided_at, "decided_by": q.decided_by, "note": q.note,
                    "message": _message_row(m), "rows": list((m.result or {}).get("rows") or [])})
    return out


# -- system -----------------------------------------------------------------------------------------
def void_log(session: Session, limit: int = 50) -> list[dict]:
    return [{"submission_id": v.submission_id, "school": v.school, "month": v.month, "reason": v.reason,
             "by": v.voided_by, "at": v.voided_at, "restored_id": v.restored_id}
            for v in session.scalars(select(VoidLog).order_by(VoidLog.id.desc()).limit(limit))]


def sent_since(session: Session, since: datetime) -> dict[str, int]:
    """Emails sent per mailbox since `since` (the daily cap counts these)."""
    rows = session.execute(select(Outbox.mailbox, func.count()).where(
        Outbox.status == OutboxStatus.SENT, Outbox.sent_at >= since).group_by(Outbox.mailbox))
    return {mailbox: count_ for mailbox, count_ in rows}


def recent_alarms(session: Session, now: datetime, days: int = 7) -> list[dict]:
    return [_outbox_row(o) for o in session.scalars(select(Outbox).where(
        Outbox.kind == "operator_alarm", Outbox.created_at >= now - timedelta(days=days)).order_by(Outbox.id.desc()))]
