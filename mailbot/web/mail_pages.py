"""收件记录, 发件箱 and 隔离区: every message and email, and the clerk's mends (approve or reject a
held message, retry a failed email)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from mailbot.db import audit, views
from mailbot.errors import MailbotError
from mailbot.ingest.archive import read_archived
from mailbot.rules.outcome import Outcome
from mailbot.web.mime import attachments_of, body_of, headers_of
from mailbot.web.auth import actor, is_clerk
from mailbot.web.context import db, services
from mailbot.web.formatting import OUTBOX_STATES, OUTCOME_LABELS
from mailbot.web.pages import month_arg, reason_arg

log = logging.getLogger(__name__)
bp = Blueprint("mail", __name__)


def _page() -> int:
    try:
        return max(0, int(request.args.get("page", "0")))
    except ValueError:
        return 0


@bp.route("/messages")
def messages():
    config = services().config
    outcome = request.args.get("outcome") or None
    mailbox = request.args.get("mailbox") or None
    school = request.args.get("school") or None
    month = month_arg() if request.args.get("month") else None
    page = _page()
    data = views.list_messages(db(), config, month=month, outcome=outcome if outcome in OUTCOME_LABELS else None,
                               school=school, mailbox=mailbox, offset=page * views.PAGE_SIZE)
    return render_template("messages.html", data=data, page=page, outcome=outcome, mailbox=mailbox, school=school,
                           month=month, mailboxes=[m.name for m in config.mailboxes])


def _archived(detail: dict) -> bytes | None:
    if detail.get("purged_at"):
        return None
    try:
        return read_archived(db(), services().config.state_dir, detail["archive_path"])
    except OSError:
        return None


@bp.route("/messages/<int:message_pk>")
def message(message_pk: int):
    detail = views.message_detail(db(), message_pk)
    if detail is None:
        abort(404)
    raw = _archived(detail)
    return render_template("message.html", m=detail, has_raw=raw is not None,
                           headers=headers_of(raw) if raw else [],
                           attachments=attachments_of(raw) if raw else [])


@bp.route("/messages/<int:message_pk>/raw")
def message_raw(message_pk: int):
    if not is_clerk():
        abort(403, description="原始邮件只有经办人员可以下载。")
    detail = views.message_detail(db(), message_pk)
    raw = _archived(detail) if detail else None
    if raw is None:
        abort(404, description="这封邮件的存档已按保留期限删除，或找不到。")
    log.info("raw message %d downloaded by %s", message_pk, actor())
    # An attachment, never rendered: octet-stream, nosniff (security.add_headers) and a sandbox CSP.
    return Response(raw, mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="message-{message_pk}.eml"',
        "Content-Security-Policy": "default-src 'none'; sandbox"})


@bp.route("/outbox")
def outbox():
    status = request.args.get("status") or None
    page = _page()
    data = views.list_outbox(db(), status=status if status in OUTBOX_STATES else None,
                             offset=page * views.PAGE_SIZE)
    return render_template("outbox.html", data=data, page=page, status=status)


@bp.route("/outbox/<int:outbox_id>")
def outbox_item(outbox_id: int):
    detail = views.outbox_detail(db(), outbox_id)
    if detail is None:
        abort(404)
    raw = detail["raw"]
    return render_template("outbox_item.html", o=detail, headers=headers_of(raw),
                           attachments=attachments_of(raw), text=body_of(raw, "plain"),
                           has_html=body_of(raw, "html") is not None)


@bp.route("/outbox/<int:outbox_id>/html")
def outbox_html(outbox_id: int):
    detail = views.outbox_detail(db(), outbox_id)
    html = body_of(detail["raw"], "html") if detail else None
    if html is None:
        abort(404)
    from mailbot.web.security import SANDBOXED
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": SANDBOXED})


@bp.route("/outbox/<int:outbox_id>/retry", methods=["POST"])
def outbox_retry(outbox_id: int):
    from mailbot.outbound.retry import RetryError, retry_failed
    svc = services()
    corrected = [a.strip() for a in request.form.get("to", "").replace("；", ";").replace(",", ";").split(";")
                 if a.strip()]
    now = svc.clock()
    try:
        with svc.sessions.begin() as session:
            row = retry_failed(session, outbox_id, now, corrected or None)
            audit.outbox_retried(session, actor=actor(), outbox_id=outbox_id, retry_id=row.id, to=list(row.to_addrs),
                                 now=now)
            new_id = row.id
    except RetryError as exc:
        log.info("retry of outbox %d refused: %s", outbox_id, exc)
        flash("这封邮件不能重新发送：只有发送失败的邮件可以重发，且收件地址必须有效。", "error")
        return redirect(url_for("mail.outbox_item", outbox_id=outbox_id))
    flash(f"已重新排队发送（新的发件记录第{new_id}号），将在下一次发送时寄出。", "ok")
    return redirect(url_for("mail.outbox_item", outbox_id=new_id))


@bp.route("/quarantine")
def quarantine():
    return render_template("quarantine.html", items=views.list_quarantine(db()),
                           schools=[s.name for s in services().config.schools])


@bp.route("/quarantine/<int:quarantine_id>/approve", methods=["POST"])
def quarantine_approve(quarantine_id: int):
    from mailbot.ingest.quarantine import approve
    svc = services()
    school = (request.form.get("other_school", "").strip() or request.form.get("school", "").strip())
    remember = request.form.get("remember") == "yes"
    if views.find_school(svc.config, school) is None:
        flash("请选择或填写名册中的学校全称。", "error")
        return redirect(url_for("mail.quarantine"))
    try:
        result = approve(svc.config, svc.sessions, svc.clock, quarantine_id, [school], remember, actor())
    except MailbotError as exc:
        log.info("approval of quarantine %d refused: %s", quarantine_id, exc)
        flash("这封邮件已经处理过，或找不到。", "error")
        return redirect(url_for("mail.quarantine"))
    if result.outcome == Outcome.ACCEPTED:
        flash(f"已批准，{school}的报送已登记" + ("，并已记住该发件地址。" if remember else "。"), "ok")
    elif result.outcome == Outcome.FAILED:  # nothing was committed: the message is still pending
        flash("系统处理这封邮件时出错，尚未批准，邮件仍在待审核列表中，请稍后重试。", "error")
    else:
        flash(f"已批准，但表格未能登记（结果：{OUTCOME_LABELS.get(result.outcome, result.outcome)}）。"
              "详情见收件记录。", "error")
    return redirect(url_for("mail.quarantine"))


@bp.route("/quarantine/<int:quarantine_id>/reject", methods=["POST"])
def quarantine_reject(quarantine_id: int):
    from mailbot.ingest.quarantine import reject
    svc = services()
    reason = reason_arg()
    try:
        reject(svc.sessions, svc.clock, quarantine_id, reason, actor())
    except MailbotError:
        flash("这封邮件已经处理过，或找不到。", "error")
        return redirect(url_for("mail.quarantine"))
    flash("已拒绝这封邮件：不登记，也不回复发件人。", "ok")
    return redirect(url_for("mail.quarantine"))
