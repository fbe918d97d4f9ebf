"""下载 (the 汇总表, the 台账, the summary preview, "send the summary now") and 系统状态."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from mailbot.config import is_month
from mailbot.db import audit, views
from mailbot.db.models import MailboxState
from mailbot.db.states import OutboxStatus
from mailbot.errors import ConfigError
from mailbot.timeutil import start_of_day
from mailbot.web.auth import actor
from mailbot.web.context import db, services, this_month
from mailbot.web.pages import month_arg
from mailbot.web.security import SANDBOXED

bp = Blueprint("admin", __name__)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(data: bytes, filename: str, mimetype: str) -> Response:
    # RFC 6266/5987: an ASCII fallback and the UTF-8 name for browsers that read it.
    return Response(data, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=\"download.xlsx\"; filename*=UTF-8''{quote(filename)}"})


def _package(month: str):
    from mailbot.summary.send import build_package
    svc = services()
    return build_package(db(), svc.config, month, svc.clock())


@bp.route("/downloads")
def downloads():
    months = views.month_choices(db(), this_month())
    return render_template("downloads.html", month=month_arg(), months=months,
                           first=months[-1], last=months[0],
                           recipients=services().config.summary_recipients)


@bp.route("/downloads/summary.xlsx")
def summary_xlsx():
    package = _package(month_arg())
    return _download(package.xlsx, package.attachment_name, XLSX)


@bp.route("/downloads/ledger.xlsx")
def ledger_xlsx():
    from mailbot.summary.ledger import build_ledger, ledger_months
    from mailbot.summary.load import months_on_record, rows_in_force, submission_history
    config = services().config
    first, last = request.args.get("from", ""), request.args.get("to", "")
    if not (is_month(first) and is_month(last)) or first > last:
        abort(400, description="请选择正确的起止月份（起始月份不晚于结束月份）。")
    months = ledger_months(first, last, months_on_record(db()), config.schedule.reporting_months)
    data = build_ledger(config.schools, rows_in_force(db(), first, last), submission_history(db(), first, last),
                        months, deadline_day=config.schedule.deadline_day, tz=config.timezone,
                        reporting_months=config.schedule.reporting_months)
    return _download(data, f"课后服务台账（{first}至{last}）.xlsx", XLSX)


@bp.route("/downloads/preview")
def summary_preview():
    package = _package(month_arg())
    return Response(package.composed.html, mimetype="text/html", headers={"Content-Security-Policy": SANDBOXED})


@bp.route("/downloads/send", methods=["GET", "POST"])
def send_summary():
    from mailbot.summary.send import queue_summary, summary_key
    from mailbot.db.models import Outbox
    svc = services()
    month = month_arg()
    sent_before = db().scalar(select(Outbox.id).where(Outbox.key == summary_key(month))) is not None
    if request.method == "GET":
        return render_template("send_summary.html", month=month, sent_before=sent_before,
                               recipients=svc.config.summary_recipients)
    if request.form.get("confirm") != "yes":
        flash("请勾选确认后再发送。", "error")
        return redirect(url_for("admin.send_summary", month=month))
    force = request.form.get("again") == "yes"
    now = svc.clock()
    try:
        with svc.sessions.begin() as session:
            from mailbot.summary.send import build_package
            package = build_package(session, svc.config, month, now)
            queued = queue_summary(session, svc.config, package, now, force)
            if queued is not None:
                audit.record(session, actor=actor(), action="summary_send", target=f"summary {month}", now=now,
                             outbox=queued.id, force=force)
                queued_id = queued.id
    except ConfigError:
        flash("尚未配置汇总的收件人（[summary] recipients），无法发送。请联系系统管理员。", "error")
        return redirect(url_for("admin.downloads", month=month))
    if queued is None:
        flash("本月汇总此前已经发送过，未重复发送。如确需再次发送，请勾选“再次发送”。", "error")
        return redirect(url_for("admin.send_summary", month=month))
    flash(f"{month[:4]}年{int(month[5:])}月的汇总已排队发送（发件记录第{queued_id}号），将在下一次发送时寄出。", "ok")
    return redirect(url_for("mail.outbox_item", outbox_id=queued_id))


@bp.route("/system")
def system():
    svc = services()
    config, now = svc.config, svc.clock()
    states = {(s.mailbox, s.folder): s for s in db().scalars(select(MailboxState))}
    sent = views.sent_since(db(), start_of_day(now, config.timezone))
    mailboxes = []
    for mb in config.mailboxes:
        state = next((s for (name, _folder), s in states.items() if name == mb.name), None)
        mailboxes.append({"name": mb.name, "address": mb.address, "cap": mb.daily_send_cap,
                          "sent_today": sent.get(mb.name, 0),
                          "last_success_at": state.last_success_at if state else None,
                          "last_attempt_at": state.last_attempt_at if state else None,
                          "last_error": state.last_error if state else None,
                          "alarm_open": bool(state and state.alarm_sent_at)})
    failed = views.list_outbox(db(), status=OutboxStatus.FAILED, limit=1)["total"]
    return render_template("system.html", mailboxes=mailboxes, alarms=views.recent_alarms(db(), now),
                           failed=failed, audit=audit.recent(db()), version=current_app.config["MAILBOT_VERSION"],
                           now=now)
