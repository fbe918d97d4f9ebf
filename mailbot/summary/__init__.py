"""The monthly summary for leadership (SPEC 7) and the ledger export (台账).

aggregate   pure figures from the stored rows (reuses `month_status` for the states)
load        the database queries that feed it
formatting  how numbers and rates are written
charts      bar geometry for the HTML/CSS charts
render      the email (HTML + text) through `compose("summary", ...)`
workbook    the official 汇总表 .xlsx attachment
ledger      the 台账 .xlsx of `mailbot export`
send        the files for preview and the outbox claim
browser     headless Chromium measurements and screenshots (tests and docs only)
sample      invented data for previews, tests and the benchmark
"""
