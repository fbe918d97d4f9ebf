"""mailbot: collects schools' monthly after-school service tables by email.

One line per package, from the pure core outwards (plus errors.py, the one exception hierarchy,
and timeutil.py, time helpers with the clock passed in):

config      the TOML configuration: dataclasses, loading and validation, the roster CSV
rules       pure decisions: the table model, months, the roster, classification, values, rows, status
mail        MIME parsing: headers, bodystructure, TNEF, links to big attachments
tables      table readers by content (xlsx, xls, docx, csv, zip), with guards against bombs
db          the schema (models), engines, migrations (migrate), stores and queries
transports  thin adapters to servers: IMAP, Maildir, SMTP, an outbox directory
outbound    mail mailbot sends: composing, receipts and rejections, the outbox, sending, reminders
ingest      one message's way in: archive, isolated analysis, the pipeline, polling, quarantine
summary     the monthly summary for leadership and the ledger export (台账)
web         the clerks' web console: pages, accounts, sessions (Flask, served by waitress)
app         the command line, the daemon and its jobs, `check` and the demo
migrations  Alembic scripts (shipped from migrations/ as mailbot.migrations)
"""

__version__ = "0.1.0"
