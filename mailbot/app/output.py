"""How commands print what they did: JSON on stdout for --json, plain lines otherwise."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import click


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def people_json(value, tz: ZoneInfo):
    """JSON-ready data for people: datetimes as ISO-8601 in the configured zone with its offset
    (SPEC 8), bytes left out."""
    from mailbot.timeutil import iso_local
    if isinstance(value, datetime):
        return iso_local(value, tz)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: people_json(v, tz) for k, v in value.items() if not isinstance(v, (bytes, bytearray))}
    if isinstance(value, (list, tuple)):
        return [people_json(v, tz) for v in value]
    return value


def echo_people_json(obj, tz: ZoneInfo) -> None:
    click.echo(json.dumps(people_json(obj, tz), ensure_ascii=False))


def print_result(result: dict) -> None:
    """One message's `ingest --json` object, for a person (ingest, poll, quarantine approve)."""
    click.echo(f"{result['file']}: {result['outcome']}" + (f" ({result['month']})" if result.get("month") else ""))
    for row in result.get("rows", []):
        mark = "ok " if row["ok"] else "ERR"
        click.echo(f"  {mark} {row['school']}  在校 {row['enrolled']}  参与 {row['participating']}  "
                   f"2+N {'是' if row['two_plus_n'] else '否'}  N={row['n']}")
        for text in row["errors"] + row["warnings"]:
            click.echo(f"      {text}")
    for text in result.get("errors", []) + result.get("warnings", []):
        click.echo(f"  {text}")
    if result.get("reply"):
        click.echo(f"  reply queued to {', '.join(result['reply']['to'])}: {result['reply']['subject']}")


def sending_line(report) -> str:
    """What one pass over the outbox did (outbox send, poll)."""
    line = (f"outbox: {report.sent} sent, {report.retrying} to retry, {report.failed} failed"
            + (f", {report.requeued_abandoned} requeued after a crash" if report.requeued_abandoned else ""))
    if report.capped:
        line += f"; daily cap reached: {', '.join(sorted(set(report.capped)))}"
    for name, error in report.broken_accounts.items():
        line += f"\n  {name} cannot send: {error}"
    return line
