"""The summary as files for preview and as a queued email (`mailbot summary`). The outbox key
`summary:YYYY-MM` is the claim: the scheduled run and an operator's command cannot both send it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

from sqlalchemy.orm import Session

from mailbot.outbound.compose import Composed
from mailbot.config import Config
from mailbot.db.models import Outbox
from mailbot.errors import ConfigError
from mailbot.outbound.outbox import queue_mail
from mailbot.summary.aggregate import Summary, summarise, trend_from_totals
from mailbot.summary.load import rows_in_force, trend_totals
from mailbot.summary.render import compose_summary, summary_context, write_summary
from mailbot.summary.workbook import attachment_name, build_summary_workbook

KIND = "summary"  # its outbox rows
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PREVIEW_HTML = "summary.html"
PREVIEW_TEXT = "summary.txt"


@dataclass
class SummaryPackage:
    """Everything the summary email carries."""

    summary: Summary
    context: dict  # the email's template data (render.summary_context)
    xlsx: bytes
    attachment_name: str

    @cached_property
    def composed(self) -> Composed:
        """The email as strings, to queue or to show; rendered when first asked for (a preview
        writes its files piece by piece instead, without holding them)."""
        return compose_summary(self.context)


def summary_key(month: str) -> str:
    return f"summary:{month}"


def build_package(session: Session, config: Config, month: str, now: datetime,
                  excused: set[str] | None = None) -> SummaryPackage:
    """Read the rows in force up to `month` and render the email and its attachment.

    `excused`: the schools excused this month (default: as the operator recorded them).
    """
    if excused is None:
        from mailbot.db.campaign import excused_schools
        excused = excused_schools(session, month)
    earlier = trend_from_totals(trend_totals(session, config.schools, month), config.schools,
                                config.schedule.reporting_months)
    summary = summarise(month, config.schools, rows_in_force(session, month, month), set(excused),
                        deadline_day=config.schedule.deadline_day, tz=config.timezone,
                        reporting_months=config.schedule.reporting_months, earlier=earlier)
    name = attachment_name(month)
    return SummaryPackage(summary, summary_context(summary, config.timezone, now, name),
                          build_summary_workbook(summary, config.timezone, now), name)


def write_preview(package: SummaryPackage, out_dir: Path) -> list[Path]:
    """summary.html, summary.txt and the .xlsx, as the leaders will get them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html, text, xlsx = out_dir / PREVIEW_HTML, out_dir / PREVIEW_TEXT, out_dir / package.attachment_name
    # newline="": the parts' line ends written as rendered, as the email carries them.
    with html.open("w", encoding="utf-8", newline="") as html_out, \
            text.open("w", encoding="utf-8", newline="") as text_out:
        write_summary(package.context, text_out, html_out)
    xlsx.write_bytes(package.xlsx)
    return [html, text, xlsx]


def queue_summary(session: Session, config: Config, package: SummaryPackage, now: datetime,
                  force: bool = False) -> Outbox | None:
    """Queue the email to the configured recipients; None when this month's was queued before.

    `force` sends it again under a new key (an explicit resend, e.g. after late submissions).
    """
    if not config.summary_recipients:
        raise ConfigError("summary.recipients is empty: list the leaders' addresses, "
                          'e.g. [summary] recipients = ["leader@example.cn"]')
    key = summary_key(package.summary.month)
    if force:
        key = f"{key}:resend:{now.isoformat()}"
    return queue_mail(session, key=key, kind=KIND, mailbox=config.mailboxes[0], to=list(config.summary_recipients),
                      composed=package.composed, now=now,
                      attachments=[(package.attachment_name, package.xlsx, XLSX_TYPE)],
                      auto_submitted="auto-generated")
