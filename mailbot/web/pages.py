"""本月概览 and a school's page, with the clerk's actions on them: excuse a month, void a submission."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from mailbot.config import is_month
from mailbot.db import audit, campaign, views
from mailbot.web.auth import actor
from mailbot.web.context import db, services, this_month
from mailbot.web.formatting import LEVEL_LABELS, STATE_LABELS, local_time

bp = Blueprint("pages", __name__)
MAX_REASON = 500


def month_arg(name: str = "month") -> str:
    month = request.values.get(name, "").strip()
    return month if is_month(month) else this_month()


def reason_arg() -> str:
    return " ".join(request.form.get("reason", "").split())[:MAX_REASON]


@bp.route("/")
def overview():
    month = month_arg()
    level = request.args.get("level")
    level = level if level in ("primary", "middle") else None
    state = request.args.get("state")
    data = views.month_overview(db(), services().config, month, level)
    schools = data["schools"]
    if state in ("on_time", "late", "missing", "excused"):
        schools = [s for s in schools if s["state"] == state]
    return render_template("overview.html", data=data, rows=school_rows(schools), state=state,
                           months=views.month_choices(db(), this_month()))


# No data-label per cell here (the phone layout's labels come from web.css, #schools): at 2,000
# schools they would be a third of the page.
_ROW = ('<tr class="state-{state}"><td><a href="{href}">{name}</a></td><td>{level}</td>'
        '<td><span class="badge {state}">{state_label}</span></td><td>{submitted}</td><td>{enrolled}</td>'
        '<td>{participating}</td><td>{mode}</td><td>{services}</td></tr>\n')


def school_rows(schools: list[dict]) -> Markup:
    """The overview's table rows. Made here in one pass rather than cell by cell in the template:
    with 2,000 schools, Jinja's per-cell escaping and lookups were most of the page's time. What
    comes from the roster or a school's table (name, services) is escaped, quotes included; the other
    cells are our own labels, digits and times. The XSS tests check it."""
    tz, base = services().config.timezone, url_for("pages.school")
    rows = []
    for s in schools:
        mode = ""
        if s["two_plus_n"] is not None:
            mode = ("是" if s["two_plus_n"] else "否") + (f"（2+{s['n']}）" if s["two_plus_n"] and s["n"] is not None else "")
        rows.append(_ROW.format(
            state=s["state"], href=f"{base}?name={quote(s['name'])}", name=escape(s["name"], quote=True),
            level=LEVEL_LABELS[s["level"]], state_label=STATE_LABELS[s["state"]],
            submitted=local_time(s["submitted_at"], tz),
            enrolled="" if s["enrolled"] is None else f"{s['enrolled']:,}",
            participating="" if s["participating"] is None else f"{s['participating']:,}",
            mode=mode, services=escape("、".join(s["services"]), quote=True)))
    return Markup("".join(rows))


@bp.route("/school")
def school():
    config = services().config
    found = views.find_school(config, request.args.get("name", ""))
    if found is None:
        abort(404, description="名册中没有这所学校。")
    detail = views.school_detail(db(), config, found, this_month())
    return render_template("school.html", school=detail, current=this_month())


@bp.route("/school/excuse", methods=["POST"])
def excuse():
    svc = services()
    name, month, reason = request.form.get("name", ""), request.form.get("month", ""), reason_arg()
    if views.find_school(svc.config, name) is None or not is_month(month):
        abort(404, description="名册中没有这所学校，或月份有误。")
    if not reason:
        flash("请填写免报原因。", "error")
        return redirect(url_for("pages.school", name=name))
    now = svc.clock()
    with svc.sessions.begin() as session:
        _row, new = campaign.excuse(session, svc.config, name, month, reason, actor(), now)
        if new:
            audit.excused(session, actor=actor(), school=name, month=month, reason=reason, now=now)
    flash(f"已将{name}{month[:4]}年{int(month[5:])}月设为免报。" if new else "这所学校本月已是免报，无需重复设置。",
          "ok")
    return redirect(url_for("pages.school", name=name))


@bp.route("/submission/<int:submission_id>/void", methods=["POST"])
def void(submission_id: int):
    svc = services()
    reason = reason_arg()
    if not reason:
        flash("请填写作废原因。", "error")
        back = request.form.get("name", "")
        return redirect(url_for("pages.school", name=back) if back else url_for("pages.overview"))
    now = svc.clock()
    try:
        with svc.sessions.begin() as session:
            result = campaign.void(session, submission_id, reason, actor(), now)
            school = result.submission.school
            audit.voided(session, actor=actor(), submission_id=submission_id, school=school,
                         month=result.submission.month, restored=result.restored.id if result.restored else None,
                         reason=reason, now=now)
    except campaign.CampaignError:
        abort(404, description="找不到这条报送记录，或它已经作废。")
    restored = f"第{result.restored.id}号报送重新生效。" if result.restored else ""
    flash(f"已作废第{submission_id}号报送。{restored}", "ok")
    return redirect(url_for("pages.school", name=school))
