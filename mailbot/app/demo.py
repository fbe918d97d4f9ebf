"""`mailbot demo`: a whole reporting month on embedded defaults, with a simulated clock.

No mail server and no configuration are needed: two Maildir inboxes stand for the section
mailboxes, two directories for their outboxes, SQLite for the database. Schools' emails are built
from the real pre-filled template, delivered into the Maildirs, and picked up by the same poll the
daemon runs; reminders, receipts and the summary are written to the outbox directories as .eml.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import datetime
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import click

from mailbot.app.demo_mail import school_mail, submission_mail

TZ = ZoneInfo("Asia/Shanghai")
MONTH = "2022-10"
MARKER = ".mailbot-demo"
MAILBOXES = {"chuyoujiao": ("chuyoujiao@163.com", "primary"), "zjg": ("zjg23236764@163.com", "middle")}
# (name, level, address): invented schools in the shape of the county's city-area roster.
SCHOOLS = [
    ("安溪县城南实验小学", "primary", "cnsyxx@163.com"), ("安溪县第六实验小学", "primary", "axlsx@163.com"),
    ("安溪县凤华小学", "primary", "1827364509@qq.com"), ("安溪县北门小学", "primary", "beimenxx@163.com"),
    ("安溪县东门小学", "primary", "dmxx_jws@126.com"), ("安溪县玉湖小学", "primary", "yuhuxx@163.com"),
    ("安溪县城南中学", "middle", "cnzx_jwc@163.com"), ("安溪县凤华中学", "middle", "fhzx1962@126.com"),
    ("安溪县培文中学", "middle", "pwzx_ax@163.com"), ("安溪县玉湖中学", "middle", "yhzx_jws@163.com"),
    ("安溪县溪东中学", "middle", "xdzx@yeah.net"), ("安溪县龙津中学", "middle", "ljzx_office@126.com"),
]


def write_config(out: Path) -> Path:
    lines = ["# Written by `mailbot demo`: Maildir inboxes and directory outboxes, no mail server.",
             "[general]", 'timezone = "Asia/Shanghai"', 'state_dir = "state"', "",
             "[sending]", "throttle_seconds = 0.0", "", "[summary]", 'recipients = ["leader@example.gov.cn"]', "",
             "[operator]", 'email = "it@example.gov.cn"', ""]
    for name, (address, level) in MAILBOXES.items():
        for sub in ("cur", "new", "tmp"):
            (out / "mail" / name / sub).mkdir(parents=True, exist_ok=True)
        lines += ["[[mailbox]]", f'name = "{name}"', f'address = "{address}"', f'levels = ["{level}"]',
                  f'maildir = "mail/{name}"', f'outbox_dir = "outbox/{name}"', f'staff = ["staff-{name}@example.gov.cn"]', ""]
    for name, level, address in SCHOOLS:
        lines += ["[[school]]", f'name = "{name}"', f'level = "{level}"', f'emails = ["{address}"]', 'contact = "教务处"', ""]
    path = out / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Demo:
    def __init__(self, out: Path, echo: Callable[[str], None]):
        from mailbot.config import load_config
        from mailbot.db.engine import make_sessionmaker
        from mailbot.db.migrate import prepare_database

        self.out, self.echo = out, echo
        self.config = load_config(write_config(out))
        self.engine = prepare_database(self.config)
        self.sessions = make_sessionmaker(self.engine)
        self.rng = random.Random(2022)
        self.now = datetime(2022, 10, 1, 8, 0, tzinfo=TZ)
        self.delivered = 0

    def clock(self) -> datetime:
        return self.now

    def at(self, day: int, hour: int, minute: int = 0) -> None:
        self.now = datetime(2022, 10, day, hour, minute, tzinfo=TZ)
        self.echo(click.style(f"\n== {self.now:%Y-%m-%d %H:%M} (Asia/Shanghai)", bold=True))

    def deliver(self, mailbox: str, raw: bytes, what: str) -> None:
        self.delivered += 1
        (self.out / "mail" / mailbox / "new" / f"{self.delivered:04d}.demo").write_bytes(raw)
        self.echo(f"   arrives in {mailbox}: {what}")

    def submit(self, school: str, *, sent: datetime | None = None, **values) -> None:
        name, level, address = next(s for s in SCHOOLS if s[0] == school)
        mailbox = "chuyoujiao" if level == "primary" else "zjg"
        raw = submission_mail(self.rng, school=name, level=level, sender=address, to=MAILBOXES[mailbox][0],
                              month=MONTH, sent=sent or self.now, **values)
        self.deliver(mailbox, raw, f"{name} sends its table")

    def first_poll(self, pipeline) -> None:
        from mailbot.ingest.poll import poll_and_send

        poll_and_send(self.config, self.sessions, self.clock, pipeline=pipeline, send=False)
        self.echo("   mailbot starts: its first poll records what the mailboxes hold (nothing yet) as the baseline")

    def poll(self, pipeline) -> None:
        from mailbot.ingest.poll import poll_and_send

        def show(outcome) -> None:
            result = outcome.as_json()
            rows = "; ".join(f"{r['school']} 在校{r['enrolled']} 参与{r['participating']} N={r['n']}"
                             for r in result.get("rows", []) if r.get("ok"))
            problems = " ".join(e for r in result.get("rows", []) for e in r.get("errors", [])) or " ".join(
                result.get("errors", []))
            detail = {"accepted": rows, "rejected": problems[:90], "ignored": "(left as it was)",
                      "quarantined": "(held for the operator: mailbot quarantine list)"}.get(result["outcome"], problems)
            reply = f" -> reply: {result['reply']['subject']}" if result.get("reply") else ""
            self.echo(f"   {result['outcome']:<11} {result.get('sender', '')} {detail}{reply}")

        report = poll_and_send(self.config, self.sessions, self.clock, on_result=show, pipeline=pipeline)
        if report.sending is not None:
            self.echo(f"   outbox: {report.sending.sent} sent")

    def remind(self) -> None:
        from mailbot.outbound.reminders import queue_reminders
        from mailbot.outbound.sending import send_outbox

        with self.sessions.begin() as session:
            queued = queue_reminders(session, self.config, self.now)
        for item in queued:
            who = item.get("school") or ", ".join(item.get("schools", []))
            self.echo(f"   {item['kind']:<18} {who} -> {', '.join(item['to'])}")
        if not queued:
            self.echo("   nothing due")
        send_outbox(self.config, self.sessions, self.clock)

    def summary(self) -> list[Path]:
        from mailbot.outbound.sending import send_outbox
        from mailbot.summary.send import build_package, queue_summary, write_preview

        with self.sessions.begin() as session:
            package = build_package(session, self.config, MONTH, self.now)
            queued = queue_summary(session, self.config, package, self.now)
        send_outbox(self.config, self.sessions, self.clock)
        if queued is not None:
            self.echo(f"   summary -> {', '.join(queued.to_addrs)}: {package.composed.subject}")
        for line in package.composed.text.splitlines()[:6]:  # its opening: the month's figures
            if line.strip():
                self.echo(f"     {line.strip()}")
        return write_preview(package, self.out / "summary")

    def reply_to_last_reminder(self, school: str) -> None:
        """The school answers the reminder email with the table attached."""
        from sqlalchemy import select

        from mailbot.db.models import Outbox

        name, level, address = next(s for s in SCHOOLS if s[0] == school)
        with self.sessions() as session:
            reminder = session.scalars(select(Outbox).where(Outbox.recipient == address, Outbox.kind.like("reminder%"))
                                       .order_by(Outbox.id.desc())).first()
        mailbox = "chuyoujiao" if level == "primary" else "zjg"
        raw = submission_mail(self.rng, school=name, level=level, sender=address, to=MAILBOXES[mailbox][0],
                              month=MONTH, sent=self.now, in_reply_to=reminder.message_id if reminder else None)
        self.deliver(mailbox, raw, f"{name} replies to the reminder with its table")


def run_demo(out: Path, echo: Callable[[str], None] = click.echo) -> Path:
    """Run the month; return the folder with everything it produced."""
    from mailbot.db.queries import load_status
    from mailbot.ingest.isolation import WorkerPool
    from mailbot.ingest.pipeline import Pipeline

    if out.exists():
        if not (out / MARKER).exists() and any(out.iterdir()):
            raise click.UsageError(f"{out} exists and is not a demo folder: choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by mailbot demo; safe to delete\n", encoding="utf-8")
    demo = Demo(out, echo)
    echo(f"mailbot demo: {len(SCHOOLS)} schools, month {MONTH}, deadline 24 October, everything under {out}")
    # One pipeline and its workers for the whole month, as the daemon keeps them.
    with WorkerPool(demo.config.limits) as runner, Pipeline(demo.config, demo.sessions, runner, demo.clock) as pipeline:
        # As at a bureau: mailbot's first poll records what the mailboxes already hold as the
        # baseline (here: nothing), and mail arriving after it is answered.
        demo.first_poll(pipeline)
        demo.at(18, 10)
        for school in ("安溪县城南实验小学", "安溪县北门小学", "安溪县城南中学", "安溪县培文中学"):
            demo.submit(school)
        demo.submit("安溪县玉湖小学", enrolled=1417, participating=1554)  # more participating than enrolled
        demo.deliver("chuyoujiao", school_mail(sender="parent@example.com", sender_name="一位家长",
                                               to="chuyoujiao@163.com", subject="反映孩子放学时间问题",
                                               sent=demo.now, body="老师您好，想反映一下……"),
                     "a parent's complaint (not a submission: left untouched)")
        demo.deliver("zjg", submission_mail(demo.rng, school="安溪县玉湖中学", level="middle",
                                            sender="teacher.wang@qq.com", to="zjg23236764@163.com",
                                            month=MONTH, sent=demo.now),
                     "a teacher's personal address, not in the roster (quarantined for the operator)")
        demo.poll(pipeline)

        demo.at(19, 9, 30)
        demo.submit("安溪县玉湖小学", enrolled=1417, participating=1320)
        demo.poll(pipeline)

        demo.at(20, 9)
        echo("   reminder stage 'upcoming':")
        demo.remind()

        demo.at(22, 16)
        demo.reply_to_last_reminder("安溪县凤华小学")
        demo.submit("安溪县凤华中学")
        demo.poll(pipeline)

        demo.at(24, 9)
        echo("   reminder stage 'due':")
        demo.remind()

        demo.at(24, 23, 40)
        demo.submit("安溪县第六实验小学")
        demo.poll(pipeline)

        demo.at(25, 0, 10)
        demo.submit("安溪县溪东中学")
        demo.poll(pipeline)

        demo.at(25, 9)
        echo("   reminder stage 'overdue', and the missing list to each section's staff:")
        demo.remind()

        demo.at(25, 10)
        echo("   monthly summary to leadership:")
        paths = demo.summary()

    with demo.sessions() as session:
        status = load_status(session, demo.config, MONTH)
    totals = status["totals"]
    echo(click.style("\n== where things stand", bold=True))
    echo(f"   required {totals['required']}, on time {totals['on_time']}, late {totals['late']}, "
         f"missing {totals['missing']}")
    for school in status["schools"]:
        echo(f"   {school['state']:<8} {school['name']}")
    (out / "status.json").write_text(json.dumps(status, ensure_ascii=False, indent=1), encoding="utf-8")
    echo(click.style("\n== what to look at", bold=True))
    for path in paths:
        echo(f"   {path}")
    echo(f"   {out / 'outbox'}  (every email mailbot sent, as .eml)")
    echo(f"   {out / 'config.toml'}  (try: mailbot --config {out / 'config.toml'} status --month {MONTH})")
    demo.engine.dispose()
    return out
