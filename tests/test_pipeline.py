"""The pipeline's decisions beyond the samples (SPEC 3.4-4), in process with the inline reader."""

from __future__ import annotations

import email
import email.policy
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select

import hostile_jobs
from builders import submission
from mailbot.db.models import AuditEntry, KnownSender, Message, Quarantine, Submission
from mailbot.ingest.archive import read_archived
from mailbot.ingest.isolation import InlineRunner, WorkerPool
from mailbot.ingest.pipeline import Inbound, Pipeline
from mailbot.ingest.quarantine import approve
from mailbot.db.queries import load_status
from mailbot.errors import MailbotError
from support.pipeline_world import NOW, World

BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.pipeline.close()
    w.engine.dispose()


def test_receipt_is_queued_with_the_decision(world):
    result = world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN]))
    assert result["outcome"] == "accepted" and result["month"] == "2022-10"
    (mail,) = world.outbox()
    assert mail.kind == "receipt" and mail.to_addrs == ["beimenxx@163.com"] and mail.from_addr == "chuyoujiao@163.com"
    parsed = email.message_from_bytes(mail.raw)
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["In-Reply-To"].strip("<>") == result["message_id"]


def test_wrong_mailbox_is_accepted_with_a_warning_and_answered_from_where_it_was_sent(world):
    result = world.ingest(submission("beimenxx@163.com", "zjg23236764@163.com", [BEIMEN]), mailbox="zjg")
    assert result["outcome"] == "accepted"
    assert any("chuyoujiao@163.com" in w for w in result["warnings"])
    assert world.outbox()[0].from_addr == "zjg23236764@163.com"


def test_rejection_carries_a_prefilled_template(world):
    bad = ["安溪县北门小学", 1, 1417, 1554, "是", "科普"]
    result = world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [bad]))
    assert result["outcome"] == "rejected" and not result["rows"][0]["ok"]
    (mail,) = world.outbox()
    parsed = email.message_from_bytes(mail.raw)
    names = [p.get_filename() for p in parsed.walk() if p.get_filename()]
    assert len(names) == 1 and "安溪县北门小学" in str(email.header.make_header(email.header.decode_header(names[0])))


def test_unknown_sender_is_quarantined_then_approved_and_remembered(world):
    raw = submission("teacher@qq.com", "chuyoujiao@163.com", [BEIMEN])
    result = world.ingest(raw)
    assert result["outcome"] == "quarantined" and result["reply"] is None
    with world.sessions() as s:
        q = s.scalar(select(Quarantine))
        assert q.candidate_schools == ["安溪县北门小学"]
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
    assert [m.kind for m in world.outbox()] == ["operator_quarantine"]
    approved = approve(world.config, world.sessions, lambda: world.now, q.id, [], True, "tester").as_json()
    assert approved["outcome"] == "accepted" and approved["reply"]["to"] == ["teacher@qq.com"]
    again = world.ingest(submission("teacher@qq.com", "chuyoujiao@163.com", [BEIMEN], subject="更正 课后服务"))
    assert again["outcome"] == "accepted"


def test_forged_sender_is_quarantined(world):
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN],
                     headers={"Authentication-Results": "mx.163.com; spf=fail smtp.mailfrom=beimenxx@163.com"})
    assert world.ingest(raw)["outcome"] == "quarantined"


@pytest.mark.parametrize("headers", [{"Auto-Submitted": "auto-replied"}, {"Precedence": "bulk"},
                                     {"X-Mailbot": "1"}, {"List-Id": "<x.lists.test>"}])
def test_automatic_mail_is_ignored_and_never_answered(world, headers):
    result = world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], headers=headers))
    assert result["outcome"] == "ignored" and world.outbox() == []


def test_other_business_from_a_school_is_ignored(world):
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", None, subject="关于教师培训的报名表",
                     body="您好，报名表见附件。", attachments=[("报名表.pdf", b"%PDF-1.4 ...", "application/pdf")])
    assert world.ingest(raw)["outcome"] == "ignored"


def test_reply_cap_per_sender_per_day(tmp_path):
    w = World(tmp_path, "[replies]\nmax_per_sender_per_day = 2\n")
    outcomes = [w.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id=f"m{i}"))
                for i in range(3)]
    assert [bool(r["reply"]) for r in outcomes] == [True, True, False]
    w.now = NOW + timedelta(days=1)
    assert w.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id="m9"))["reply"]


def test_correction_after_deadline_keeps_an_on_time_school_on_time(world):
    on_time = datetime.fromisoformat("2022-10-24T23:30:00+08:00")
    late = datetime.fromisoformat("2022-10-26T09:00:00+08:00")
    world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], date=on_time))
    fixed = ["安溪县北门小学", 1, 1878, 1800, "是", "科普、美术、阅读"]
    result = world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [fixed], date=late))
    assert result["outcome"] == "accepted"
    with world.sessions() as s:
        status = load_status(s, world.config, "2022-10")
        history = s.scalars(select(Submission).order_by(Submission.id)).all()
    school = next(x for x in status["schools"] if x["name"] == "安溪县北门小学")
    assert school["state"] == "on_time" and school["participating"] == 1800
    assert len(history) == 2 and history[0].replaced_by == history[1].id


def test_late_first_submission_is_late(world):
    late = datetime.fromisoformat("2022-10-25T00:10:00+08:00")
    world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], date=late))
    with world.sessions() as s:
        status = load_status(s, world.config, "2022-10")
    assert next(x for x in status["schools"] if x["name"] == "安溪县北门小学")["state"] == "late"


class BrokenRunner(InlineRunner):
    """As if a reader had a bug: the worker reports an exception."""

    def map_ordered(self, function, args_iter, labels=None, should_stop=None):
        def broken(*args):
            raise RuntimeError("a bug in a reader")
        return super().map_ordered(broken, args_iter, labels)


def test_a_bug_gives_failed_then_the_operator_is_told(world):
    world.pipeline.runner = BrokenRunner(world.config.limits)
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN])
    results = [world.ingest(raw, source="imap", folder="INBOX", uidvalidity=1, uid="7") for _ in range(3)]
    assert [r["outcome"] for r in results] == ["failed"] * 3
    with world.sessions() as s:
        record = s.scalar(select(Message))
        assert record.attempts == 3 and "a bug in a reader" in record.last_error
    assert [m.kind for m in world.outbox()] == ["operator_failure"]
    world.pipeline.runner = InlineRunner(world.config.limits)
    assert world.ingest(raw, source="imap", folder="INBOX", uidvalidity=1, uid="7")["outcome"] == "accepted"


def test_every_message_is_archived_before_interpretation(world):
    raw = submission("nobody@example.com", "chuyoujiao@163.com", None, subject="投诉")
    world.ingest(raw)
    with world.sessions() as s:
        record = s.scalar(select(Message))
    assert (world.config.state_dir / record.archive_path).read_bytes() == raw
    assert record.outcome == "ignored"


def test_fifteen_forged_reply_tos_cannot_make_the_bureau_mail_strangers(world):
    # Issue 11: 15 mails in a school's name, each with another Reply-To, made the bureau send 15
    # rejections with an .xlsx to 15 strangers (the cap counted per reply recipient).
    for n in range(15):
        world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", None, message_id=f"relay{n}",
                                headers={"Reply-To": f"stranger{n}@spam.example"}))
    replies = [m for m in world.outbox() if m.kind in ("receipt", "rejection")]
    assert {tuple(m.to_addrs) for m in replies} == {("beimenxx@163.com",)}
    assert len(replies) == world.config.replies.max_per_sender_per_day


def test_an_oversized_message_is_refused_from_its_headers(tmp_path):
    w = World(tmp_path, "[limits]\nmax_message_bytes = 4000\n")
    big = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id="big")
    assert len(big) > 4000
    result = w.ingest(big)
    assert result["outcome"] == "rejected" and result["rows"] == [] and result["reply"]
    assert "超过系统可接收的 4 KB。" in result["errors"][0]  # the limit, as the school reads it
    stranger = w.ingest(submission("someone@qq.com", "chuyoujiao@163.com", [BEIMEN], message_id="big2"))
    assert stranger["outcome"] == "ignored" and stranger["reply"] is None


def test_closing_the_pipeline_waits_for_the_archive_and_stops_its_thread(world):
    world.ingest(submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN]))
    with world.pipeline as pipeline:
        pass
    pipeline.close()  # a second close is harmless
    with pytest.raises(RuntimeError, match="closed"):  # nothing can be stored that would not be synced
        pipeline.archive.store(b"Subject: late\r\n\r\n")


def _text_of(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return parsed.get_body(("plain",)).get_content()


def test_an_unreadable_table_is_rejected_with_its_reason_once_in_the_json_and_the_mail(world):
    """Issue 10, defect 8: the reason was stated twice, in the result and in the rejection."""
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", None,
                     attachments=[("汇总表.xlsx", b"PK\x03\x04 not a zip at all", "application/octet-stream")])
    result = world.ingest(raw)
    assert result["outcome"] == "rejected" and len(result["errors"]) == 1
    (reason,) = result["errors"]
    (mail,) = world.outbox()
    assert mail.kind == "rejection" and _text_of(mail.raw).count(reason) == 1


def _quarantined(world) -> int:
    assert world.ingest(submission("teacher@qq.com", "chuyoujiao@163.com", [BEIMEN]))["outcome"] == "quarantined"
    with world.sessions() as s:
        return s.scalar(select(Quarantine.id))


def _still_quarantined(world, quarantine_id: int) -> None:
    with world.sessions() as s:
        held = s.get(Quarantine, quarantine_id)
        assert held.status == "pending" and held.decided_at is None
        assert s.get(Message, held.message_pk).outcome == "quarantined"
        assert s.scalar(select(func.count()).select_from(KnownSender)) == 0
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
    assert [m.kind for m in world.outbox()] == ["operator_quarantine"]


def test_a_worker_failure_during_approval_leaves_the_message_in_quarantine(world):
    quarantine_id = _quarantined(world)
    failed = approve(world.config, world.sessions, lambda: world.now, quarantine_id, [], True, "tester",
                     runner=BrokenRunner(world.config.limits)).as_json()
    assert failed["outcome"] == "failed" and "a bug in a reader" in failed["errors"][0]
    _still_quarantined(world, quarantine_id)
    again = approve(world.config, world.sessions, lambda: world.now, quarantine_id, [], True, "tester",
                    runner=InlineRunner(world.config.limits)).as_json()
    assert again["outcome"] == "accepted" and again["reply"]["to"] == ["teacher@qq.com"]
    with world.sessions() as s:
        assert s.get(Quarantine, quarantine_id).status == "approved"
        assert s.scalar(select(func.count()).select_from(KnownSender)) == 1
        # The trail has both: the attempt that changed nothing, and the approval.
        trail = [(e.action, e.detail["outcome"]) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert trail == [("quarantine_approve", "failed"), ("quarantine_approve", "accepted")]


class SignallingRunner(InlineRunner):
    """Reads the tables in-process, and says when it is done (the approval then records itself)."""

    def __init__(self, limits):
        super().__init__(limits)
        self.done = threading.Event()

    def map_ordered(self, function, args_iter, labels=None, should_stop=None):
        yield from super().map_ordered(function, args_iter, labels)
        self.done.set()


def test_two_approvals_at_once_process_the_message_once(world, monkeypatch):
    """The CLI and the web console approve the same message at the same moment. The second reaches
    the quarantine entry while the first is processing it (not yet committed): it must process
    nothing. (Before, both read "pending", the second waited for the first's write lock, then
    recorded the rows a second time.)"""
    quarantine_id = _quarantined(world)
    second = SignallingRunner(world.config.limits)
    second_reached_entry, outcomes = threading.Event(), {}

    def entry_statement(when):
        def listener(_conn, _cursor, statement, *_rest):
            verb = statement.lstrip().split()[0].upper()
            if (second.done.is_set() and "quarantine" in statement and threading.current_thread().name == "web"
                    and (verb == "UPDATE") == (when == "before")):  # a read once done, a write as it waits
                second_reached_entry.set()
        return listener

    event.listen(world.engine, "after_cursor_execute", entry_statement("after"))
    event.listen(world.engine, "before_cursor_execute", entry_statement("before"))

    def web_approval():
        try:
            outcomes["web"] = approve(world.config, world.sessions, lambda: world.now, quarantine_id, [], False,
                                      "web:clerk", runner=second).outcome
        except MailbotError as exc:
            outcomes["web"] = exc

    original = Pipeline._conclude

    def conclude_while_the_web_approves(self, *args, **kwargs):
        if threading.current_thread().name != "web" and "thread" not in outcomes:
            outcomes["thread"] = threading.Thread(target=web_approval, name="web")
            outcomes["thread"].start()
            assert second_reached_entry.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_conclude", conclude_while_the_web_approves)
    first = approve(world.config, world.sessions, lambda: world.now, quarantine_id, [], True, "cli:operator",
                    runner=InlineRunner(world.config.limits))
    outcomes["thread"].join(60)
    assert first.outcome == "accepted"
    assert isinstance(outcomes["web"], MailbotError) and "already approved" in str(outcomes["web"])
    with world.sessions() as s:
        held = s.get(Quarantine, quarantine_id)
        assert (held.status, held.decided_by) == ("approved", "cli:operator")
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
    assert sorted(m.kind for m in world.outbox()) == ["operator_quarantine", "receipt"]


def test_a_bug_while_processing_an_approval_commits_nothing(world, monkeypatch):
    quarantine_id = _quarantined(world)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug while recording")

    monkeypatch.setattr("mailbot.ingest.pipeline.record_rows", broken)
    failed = approve(world.config, world.sessions, lambda: world.now, quarantine_id, [], True, "tester",
                     runner=InlineRunner(world.config.limits)).as_json()
    assert failed["outcome"] == "failed" and "a bug while recording" in failed["errors"][0]
    _still_quarantined(world, quarantine_id)


def test_a_stream_of_messages_reads_no_message_row_back_and_the_installation_id_once(world):
    """Issue 13: the statements each message costs. The row written when a message is archived is
    the one decided on (not read back by id), the installation id is read once per session, and
    today's replies (for the caps) once per transaction."""
    statements: list[str] = []
    event.listen(world.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_rest: statements.append(" ".join(statement.split())))
    chengnan = ["安溪县城南实验小学", 1, 2100, 1900, "是", "科普、美术、阅读"]
    raws = [submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id="one"),
            submission("cnsyxx@163.com", "chuyoujiao@163.com", [chengnan], message_id="two")]
    results = list(world.pipeline.process_stream([Inbound(raw=raw, mailbox="chuyoujiao") for raw in raws]))
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    assert len(world.outbox()) == 2
    assert [s for s in statements if s.startswith("SELECT messages.id") and "WHERE messages.id = " in s] == []
    assert sum(s.startswith("SELECT") and "FROM installation" in s for s in statements) == 1
    # Each message's row: one INSERT when archived, one UPDATE (its header fields and outcome), no
    # ORM flush; today's replies read once.
    assert sum(s.startswith("INSERT INTO messages") for s in statements) == 2
    assert sum(s.startswith("UPDATE messages") for s in statements) == 2
    assert sum("FROM outbox" in s and "count" not in s.lower() and "outbox.created_at >=" in s
               for s in statements) == 1


class ReadAheadRunner(InlineRunner):
    """As the worker pool does: every message is archived before the first is decided, so the
    second is decided in a commit group that has not written yet."""

    def map_ordered(self, function, args_iter, labels=None, should_stop=None):
        return super().map_ordered(function, list(args_iter), labels)


def test_another_writer_between_a_commit_groups_first_read_and_write_cannot_fail_the_message(world, monkeypatch):
    """SQLite: a commit group's first message reads (its twin) before it writes. Had its savepoint
    begun a deferred transaction, another process committing in between would make the first write
    fail at once with "database is locked" and the message would fail. The pipeline takes the write
    lock first, so the other writer waits instead (here it gives up after 0.2 s: same thread)."""
    from sqlalchemy import create_engine, text
    from mailbot.db import store

    world.pipeline.runner = ReadAheadRunner(world.config.limits)
    world.pipeline.batch_size = 1  # the second message is decided after the first is committed
    other = create_engine(world.config.database_url, connect_args={"timeout": 0.2})
    other_wrote = []
    real_twin = store.find_processed_twin

    def twin_then_another_writer(*args):
        found = real_twin(*args)
        try:
            with other.begin() as connection:
                connection.execute(text("INSERT INTO known_senders (email, school, created_at, created_by) "
                                        "VALUES ('x@y.cn', '安溪县北门小学', '2022-10-20', 'test')"))
            other_wrote.append(True)
        except Exception as exc:  # noqa: BLE001 - "database is locked": the pipeline holds the lock
            other_wrote.append(str(exc))
        return found

    monkeypatch.setattr(store, "find_processed_twin", twin_then_another_writer)
    chengnan = ["安溪县城南实验小学", 1, 2100, 1900, "是", "科普、美术、阅读"]
    raws = [submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id="one"),
            submission("cnsyxx@163.com", "chuyoujiao@163.com", [chengnan], message_id="two")]
    results = list(world.pipeline.process_stream([Inbound(raw=raw, mailbox="chuyoujiao") for raw in raws]))
    other.dispose()
    assert [r.outcome for r in results] == ["accepted", "accepted"], [r.errors for r in results]
    assert len(other_wrote) == 2 and all("locked" in str(w) for w in other_wrote)


def test_the_daily_reply_caps_count_replies_queued_earlier_in_the_same_transaction_and_before(tmp_path, caplog):
    """Issue 13: today's replies are read once per transaction and counted on as replies are queued,
    so the caps hold inside one commit group as across them (per sender 2, per mailbox 3)."""
    world = World(tmp_path, "[replies]\nmax_per_sender_per_day = 2\nmax_per_mailbox_per_day = 3\n")
    try:
        chengnan = ["安溪县城南实验小学", 1, 2100, 1900, "是", "科普、美术、阅读"]
        stream = [submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id=f"b{n}")
                  for n in range(3)]
        results = list(world.pipeline.process_stream([Inbound(raw=raw, mailbox="chuyoujiao") for raw in stream]))
        assert [r.outcome for r in results] == ["accepted"] * 3
        assert [r.reply is not None for r in results] == [True, True, False]  # the sender's cap of 2
        later = [submission("cnsyxx@163.com", "chuyoujiao@163.com", [chengnan], message_id=f"c{n}") for n in range(2)]
        results = list(world.pipeline.process_stream([Inbound(raw=raw, mailbox="chuyoujiao") for raw in later]))
        assert [r.reply is not None for r in results] == [True, False]  # the mailbox's cap of 3, 2 committed before
        # The operator's log names the cap that stopped each reply (the mailbox's was logged as the sender's).
        capped = [r.getMessage() for r in caplog.records if "reply cap" in r.getMessage()]
        assert capped == ["daily reply cap per recipient reached (2 today): no reply to message b2@test from beimenxx@163.com",
                          "daily reply cap of mailbox chuyoujiao reached (3 today): no reply to message c1@test from cnsyxx@163.com"]
        assert [m.recipient for m in world.outbox()] == ["beimenxx@163.com"] * 2 + ["cnsyxx@163.com"]
    finally:
        world.pipeline.close()
        world.engine.dispose()


def test_an_email_is_queued_once_per_key_and_returned_as_stored(world):
    from mailbot.outbound.compose import Composed
    from mailbot.outbound.outbox import queue_mail

    mailbox = world.config.mailbox("chuyoujiao")
    composed = Composed("回执", "您好！\n", "<p>您好！</p>")
    with world.sessions() as session:
        first = queue_mail(session, key="reply:7", kind="receipt", mailbox=mailbox, to=["BeimenXX@163.com"],
                           composed=composed, now=NOW)
        again = queue_mail(session, key="reply:7", kind="receipt", mailbox=mailbox, to=["other@163.com"],
                           composed=composed, now=NOW)
        session.commit()
    (stored,) = world.outbox()
    assert again is None
    assert (first.id, first.key, first.recipient, first.message_id, first.raw, first.status) == \
        (stored.id, "reply:7", "beimenxx@163.com", stored.message_id, stored.raw, "queued")
    assert stored.to_addrs == ["BeimenXX@163.com"]


def test_a_key_queued_by_another_instance_after_the_look_up_is_not_queued_twice(world, monkeypatch):
    """The race the look-up cannot close: another instance sharing the database queues the same key
    between our look-up and our INSERT. Played by a look-up that finds nothing: the INSERT itself
    must then leave the one row there is and say nothing was queued (no error, no second email)."""
    from sqlalchemy import and_, bindparam, false, select

    from mailbot.outbound import outbox
    from mailbot.outbound.compose import Composed

    mailbox = world.config.mailbox("chuyoujiao")
    composed = Composed("回执", "您好！\n", "<p>您好！</p>")
    with world.sessions() as session:
        first = outbox.queue_mail(session, key="reply:8", kind="receipt", mailbox=mailbox,
                                  to=["BeimenXX@163.com"], composed=composed, now=NOW)
        session.commit()
    table = outbox.Outbox.__table__
    monkeypatch.setattr(outbox, "_QUEUED", select(table.c.id).where(and_(table.c.key == bindparam("key"), false())))
    with world.sessions() as session:
        late = outbox.queue_mail(session, key="reply:8", kind="receipt", mailbox=mailbox,
                                 to=["other@163.com"], composed=composed, now=NOW)
        session.commit()
    (stored,) = world.outbox()
    assert late is None
    assert (stored.id, stored.to_addrs) == (first.id, ["BeimenXX@163.com"])


class NeverFinishingPool(WorkerPool):
    """Real workers whose analysis never ends: a table that keeps its reader busy."""

    def map_ordered(self, function, args_iter, labels=None, should_stop=None):
        return super().map_ordered(hostile_jobs.never_finishes, args_iter, labels, should_stop)


def test_a_stop_while_a_worker_parses_ends_the_stream_and_the_message_waits_for_the_next_poll(tmp_path):
    """The stop is not held up by the parse (before, the stream waited for the worker's deadline,
    here 60 s, and then called the message failed); the message stays archived and unsettled, the
    abandoned try is not counted against it, and the next poll processes it."""
    world = World(tmp_path, "[limits]\nworker_timeout_seconds = 60.0\n")
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id="slow")
    where = dict(mailbox="chuyoujiao", source="imap", folder="INBOX", uidvalidity=7, uid="41")
    stop = threading.Event()

    def inbounds():
        yield Inbound(raw=raw, **where)
        stop.set()  # the worker has the message: SIGTERM arrives now

    try:
        with NeverFinishingPool(world.config.limits) as pool:
            stuck = Pipeline(world.config, world.sessions, pool, lambda: world.now)
            try:
                assert list(stuck.process_stream(inbounds(), stop.is_set)) == []
            finally:
                stuck.close()
        with world.sessions() as s:
            (row,) = s.scalars(select(Message))
            assert (row.uid, row.outcome, row.attempts) == ("41", None, 0)
            assert read_archived(s, world.config.state_dir, row.archive_path) == raw
        again = world.pipeline.process(Inbound(raw=raw, **where))
        assert again.outcome == "accepted"
        with world.sessions() as s:
            (row,) = s.scalars(select(Message))
            assert (row.outcome, row.attempts) == ("accepted", 1)
    finally:
        world.pipeline.close()
        world.engine.dispose()
