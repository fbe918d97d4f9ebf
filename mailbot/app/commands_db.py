"""`mailbot db copy` and `mailbot db checksum`: moving an installation to another database
(SQLite to PostgreSQL) and checking afterwards that nothing was lost (mailbot.db.copy)."""

from __future__ import annotations

import sys

import click

from mailbot.app.options import Context, pass_ctx
from mailbot.app.output import echo_json


def _table(sums_by_side: dict[str, list]) -> list[str]:
    sides = list(sums_by_side)
    lines = [f"{'table':<16}" + "".join(f"{side + ' rows':>14}  {side + ' sha256':<18}" for side in sides)]
    for row in zip(*sums_by_side.values()):
        line = f"{row[0].table:<16}"
        for s in row:
            line += f"{s.rows:>14}  {(s.sha256 or '(not summed)')[:16]:<18}"
        lines.append(line)
    return lines


@click.command("copy")
@click.option("--to", "to_url", required=True, metavar="URL",
              help="The new database: postgresql+psycopg://USER@HOST:PORT/DATABASE (or sqlite:///PATH), empty.")
@click.option("--password-file", type=click.Path(dir_okay=False), help="A file holding the new database's password.")
@click.option("--password-env", metavar="VARIABLE", help="An environment variable holding it.")
@click.option("--json", "as_json", is_flag=True, help="The sums as one JSON object on stdout.")
@pass_ctx
def db_copy(c: Context, to_url, password_file, password_env, as_json):
    """Copy this installation's database into a new, empty one, with the archived raw messages
    (into the database when it is PostgreSQL), then print every table's rows and SHA-256 on both
    sides and check every archived message. Exit 0 only when they all agree.

    Stop `mailbot run` and `mailbot web` first; afterwards set general.database_url (and the
    password's credential) to the new database and start them again.

    \b
    Example:
      mailbot db copy --to postgresql+psycopg://mailbot@db.example:5432/mailbot --password-file /etc/mailbot/db.pass
    """
    from pathlib import Path

    from mailbot.config.load import check_database_url
    from mailbot.config.schema import read_secret
    from mailbot.db.copy import copy_database
    from mailbot.db.engine import make_engine
    from mailbot.db.migrate import prepare_database
    url = check_database_url(to_url, c.config.state_dir, "--to")  # the config key's rules: no password inline
    password = read_secret(password_env, Path(password_file) if password_file else None, Path.cwd(),
                           "--password-env", "--password-file {path}")
    source = prepare_database(c.config)
    target = make_engine(url, password or None)
    try:
        report = copy_database(source, target, c.config.state_dir)
    finally:
        source.dispose()
        target.dispose()
    good = report.identical and not report.archive_missing
    if as_json:
        echo_json({"identical": report.identical, "archive_imported": report.archive_imported,
                   "archive_checked": report.archive_checked, "archive_missing": report.archive_missing,
                   "tables": [{"table": s.table, "source_rows": s.rows, "target_rows": t.rows,
                               "source_sha256": s.sha256, "target_sha256": t.sha256}
                              for s, t in zip(report.source, report.target)]})
    else:
        for line in _table({"source": report.source, "target": report.target}):
            click.echo(line)
        click.echo(f"archived messages: {report.archive_imported} read into the database, {report.archive_checked} "
                   f"read back and matched by SHA-256, {len(report.archive_missing)} missing"
                   + (f" (message ids {', '.join(map(str, report.archive_missing))})" if report.archive_missing else ""))
        click.echo("every table agrees" if report.identical else "THE TABLES DIFFER: do not switch over", err=not good)
    sys.exit(0 if good else 1)


@click.command("checksum")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
@pass_ctx
def db_checksum(c: Context, as_json):
    """Every table's rows and SHA-256 for the configured database: the same sums `db copy`
    printed, to compare later (messages.archive_path and raw_messages are not summed: db copy
    moves the archive into the database on purpose).

    \b
    Example:
      mailbot --config /etc/mailbot/config.toml db checksum
    """
    from mailbot.db.copy import checksums
    from mailbot.db.migrate import prepare_database
    engine = prepare_database(c.config)
    try:
        sums = checksums(engine)
    finally:
        engine.dispose()
    if as_json:
        echo_json([{"table": s.table, "rows": s.rows, "sha256": s.sha256} for s in sums])
    else:
        for line in _table({"": sums}):
            click.echo(line)
