"""Guards at the right place (issue 11, defect and point 8): each measures what the reader or the
parser behind it will really see, and sizes are known before anything is read whole into the main
process (which has no memory limit). The hostile inputs are built here, small on disk.

- the shared-string count calamine reserves memory for, wherever its start tag puts it;
- the MIME parts the stdlib parser would make, counted by their delimiter lines (a part needs no
  header of its own);
- sizes first: a file by `stat` (`ingest FILE`, `ingest --school FILE`, a Maildir), an IMAP
  message by RFC822.SIZE before any body; over the limit only the header is read, answered politely
  and recorded, and nothing more of it is downloaded or archived.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import os
import re
import resource
import struct
import subprocess
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from builders import submission
from fixtures_tables import SAMPLES, edit_part, sample_attachments
from mailbot.config import Limits, load_config
from mailbot.db.engine import make_sessionmaker
from mailbot.db.migrate import prepare_database
from mailbot.db.models import Message, Outbox, Quarantine
from mailbot.ingest.archive import read_archived
from mailbot.ingest.isolation import Extracted, InlineRunner, WorkerPool
from mailbot.ingest.pipeline import Pipeline
from mailbot.ingest.poll import poll_mailboxes
from mailbot.ingest.quarantine import approve
from mailbot.rules.model import Attachment
from mailbot.mail.structure import header_block
from mailbot.tables.guards import MAX_START_TAG_BYTES
from mailbot.transports.fetched import Fetched, read_message_file
from support.cli import ingest_json, start_process
from support.configs import ACCOUNTS, write_config
from support.dkim_keys import FakeDns, make_key, sign
from support.pipeline_world import World

NOW = datetime(2022, 10, 20, 3, 0, tzinfo=timezone.utc)

BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]


def _text_of(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return parsed.get_body(("plain",)).get_content()


def sample_xlsx() -> bytes:
    return sample_attachments(next(SAMPLES.glob("cases/001-*/message.eml")))[0].data


def padded_start_tag(padding: bytes, count: bytes = b'"4000000000"') -> bytes:
    """The sample workbook with its <sst> start tag padded before a count no file could hold."""
    def edit(xml: bytes) -> bytes:
        xml = re.sub(rb'\s(?:count|uniqueCount)="\d+"', b"", xml, count=2)
        return xml.replace(b"<sst ", b"<sst " + padding + b" uniqueCount=" + count + b" ", 1)
    return edit_part(sample_xlsx(), "xl/sharedStrings.xml", edit)


# -- the shared-string count, as calamine reads it -----------------------------------------------------

@pytest.mark.parametrize("padding, count", [
    (b" " * 8000, b'"4000000000"'),  # the issue's case: past the 4 KB the guard used to read
    (b"\r\n\t" * 3000, b"'4000000000'"),
    (b'a="' + b">" * 5000 + b'"', b'"4000000000"'),  # a ">" inside a quoted value does not end the tag
    (b"", b'"&#52;000000000"'),  # a character reference is the digit to an XML reader
])
def test_a_shared_string_count_behind_padding_is_refused_not_reserved(padding, count):
    """On aec94e4 the worker aborted in calamine's reservation: a WorkerFailure (outcome `failed`)."""
    data = padded_start_tag(padding, count)
    with WorkerPool(Limits(), size=1) as pool:
        (extracted,) = pool.extract_many([Attachment("汇总表.xlsx", "application/octet-stream", data)])
    assert isinstance(extracted, Extracted), extracted
    assert extracted.unreadable is not None and extracted.unreadable.kind == "corrupt"
    assert "4000000000 strings" in extracted.unreadable.detail and "已损坏" in extracted.unreadable.message


def test_a_start_tag_that_never_ends_is_refused_and_an_honest_one_is_read():
    with WorkerPool(Limits(), size=1) as pool:
        endless, honest, padded_small = pool.extract_many([
            Attachment("汇总表.xlsx", "application/octet-stream", padded_start_tag(b" " * (MAX_START_TAG_BYTES + 10))),
            Attachment("汇总表.xlsx", "application/octet-stream", sample_xlsx()),
            Attachment("汇总表.xlsx", "application/octet-stream", padded_start_tag(b" " * 8000, b'"14"')),
        ])
    assert endless.unreadable is not None and endless.unreadable.kind == "corrupt"
    assert "start tag runs past" in endless.unreadable.detail
    assert honest.unreadable is None and honest.tables
    assert padded_small.unreadable is None and padded_small.tables  # padding alone is no offence


def test_the_padded_count_gets_the_school_a_rejection_not_a_failure(tmp_path):
    config = write_config(tmp_path)
    eml = tmp_path / "padded.eml"
    eml.write_bytes(submission("beimenxx@163.com", "chuyoujiao@163.com", None, message_id="padded",
                               attachments=[("汇总表.xlsx", padded_start_tag(b" " * 8000), "application/octet-stream")]))
    (result,) = ingest_json(config, "chuyoujiao", eml)
    assert result["outcome"] == "rejected" and result["reply"]
    assert any("已损坏" in error for error in result["errors"])


# -- MIME parts, as the parser would make them ---------------------------------------------------------

def header_less_parts(count: int) -> bytes:
    """A registered school's mail with its table, followed by `count` parts without a header (a
    part needs none; it is text/plain then): a million of them take 8 MB."""
    raw = submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id=f"parts{count}")
    raw = raw.replace(re.search(rb'boundary="([^"]+)"', raw).group(1), b"b1")  # 8 bytes a part
    return raw.replace(b"--b1--", b"--b1\n\nx\n" * count + b"--b1--", 1)


def test_a_hundred_thousand_header_less_parts_are_answered_not_parsed(tmp_path):
    """On aec94e4 they passed the part count (of Content-Type lines) and the parser built them all.
    The suite keeps 100,000; the issue's million was timed by hand (the report has the figure)."""
    config = write_config(tmp_path)
    eml = tmp_path / "parts.eml"
    eml.write_bytes(header_less_parts(100_000))
    (result,) = ingest_json(config, "chuyoujiao", eml)
    assert result["outcome"] == "rejected" and result["reply"] and result["rows"] == []
    assert any("包含的部分过多" in error for error in result["errors"])
    fine = tmp_path / "fine.eml"
    fine.write_bytes(header_less_parts(10))
    assert ingest_json(config, "chuyoujiao", fine)[0]["outcome"] == "accepted"


# -- sizes first: IMAP ---------------------------------------------------------------------------------

LIMIT = 200_000  # max_message_bytes for these tests: the big mail below is seven times that


def big_school_mail(message_id: str) -> bytes:
    """A registered school's table with a 1 MB photo beside it (1.4 MB once base64-encoded)."""
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4096
    return submission("beimenxx@163.com", "chuyoujiao@163.com", [BEIMEN], message_id=message_id,
                      attachments=[("盖章版.jpg", photo, "image/jpeg")])


class ImapWorld:
    """The samples' roster with both mailboxes on Dovecot behind the recording proxy, polled in
    this process; the first poll (the baseline, SPEC 5) finds them empty."""

    def __init__(self, tmp_path: Path, dovecot, proxy):
        self.config = load_config(write_config(tmp_path, f"[limits]\nmax_message_bytes = {LIMIT}\n"))
        for mb in self.config.mailboxes:
            mb.imap = dataclasses.replace(dovecot.imap_config(ACCOUNTS[mb.name]), port=proxy.port)
            mb.maildir = None
        self.state_dir = tmp_path / "state"
        self.engine = prepare_database(self.config)
        self.sessions = make_sessionmaker(self.engine)
        self.pipeline = Pipeline(self.config, self.sessions, InlineRunner(self.config.limits), lambda: NOW)
        self.poll()

    def poll(self) -> list[dict]:
        results: list[dict] = []
        poll_mailboxes(self.config, self.sessions, self.pipeline, lambda: NOW,
                       lambda result: results.append(result.as_json()))
        return results

    def close(self) -> None:
        self.pipeline.close()
        self.engine.dispose()


def test_an_oversized_imap_message_is_answered_from_its_header_and_its_body_never_downloaded(
        tmp_path, dovecot, imap_proxy):
    """On aec94e4 the 1.4 MB message was fetched whole (BODY.PEEK[]) and archived whole, then
    rejected for its size."""
    world = ImapWorld(tmp_path, dovecot, imap_proxy)
    raw = big_school_mail("big-over-imap")
    dovecot.append(ACCOUNTS["chuyoujiao"], raw)
    imap_proxy.reset()

    (result,) = world.poll()

    downloaded = len(imap_proxy.server_bytes)
    print(f"oversized IMAP message of {len(raw)} bytes: {downloaded} bytes downloaded")
    assert downloaded < 32_000 < len(raw) // 40, downloaded  # the header, the description, the dialogue
    sent = "\n".join(imap_proxy.client_lines())
    assert "BODY.PEEK[HEADER]<0." in sent and "BODY.PEEK[]" not in sent
    assert result["outcome"] == "rejected" and result["reply"] and result["rows"] == []
    (error,) = result["errors"]
    assert error.startswith("邮件大小约 1.4 MB，超过系统可接收的 195 KB。") and "请只附上填写好的表格文件" in error
    with world.sessions() as session:
        (record,) = session.scalars(select(Message).where(Message.uid.is_not(None)))
        archived = read_archived(session, world.state_dir, record.archive_path)
        (reply,) = session.scalars(select(Outbox).where(Outbox.kind == "rejection"))
    assert record.size > LIMIT and record.outcome == "rejected"  # its size as the server gave it
    assert len(archived) < 4096 and archived.endswith(b"\r\n\r\n") and b"Message-ID: <big-over-imap@test>" in archived
    assert reply.to_addrs == ["beimenxx@163.com"]
    assert "超过" in _text_of(reply.raw)

    imap_proxy.reset()
    assert world.poll() == []  # recorded: never fetched again
    assert "FETCH" not in " ".join(imap_proxy.commands())
    world.close()


def test_a_message_within_the_limit_still_comes_whole_in_the_same_poll(tmp_path, dovecot, imap_proxy):
    world = ImapWorld(tmp_path, dovecot, imap_proxy)
    user = ACCOUNTS["chuyoujiao"]
    dovecot.append(user, submission("cnsyxx@163.com", "chuyoujiao@163.com",
                                    [["安溪县城南实验小学", 1, 1000, 900, "是", "科普"]], message_id="small-1"))
    dovecot.append(user, big_school_mail("big-between"))
    dovecot.append(user, submission("axlsx@163.com", "chuyoujiao@163.com",
                                    [["安溪县第六实验小学", 1, 1000, 900, "是", "科普"]], message_id="small-2"))

    results = world.poll()

    assert [(r["message_id"], r["outcome"]) for r in results] == [
        ("small-1@test", "accepted"), ("big-between@test", "rejected"), ("small-2@test", "accepted")]
    world.close()


# -- sizes first: files and Maildir ----------------------------------------------------------------

def sparse_message(path: Path, size: int) -> bytes:
    """A school's mail header followed by a hole: `size` bytes long, a few KB on disk."""
    header = big_school_mail("sparse").split(b"\n\n", 1)[0] + b"\n\n"
    with open(path, "wb") as file:
        file.write(header)
        file.truncate(size)
    return header


@pytest.mark.parametrize("how", ["ingest FILE", "maildir"])
def test_an_oversized_file_is_measured_before_it_is_read(tmp_path, how):
    """On aec94e4 the whole file was read into the main process and archived whole."""
    config_path = write_config(tmp_path, f"[limits]\nmax_message_bytes = {LIMIT}\n")
    size = 64 * 1024 * 1024
    if how == "ingest FILE":
        header = sparse_message(tmp_path / "sparse.eml", size)
        (result,) = ingest_json(config_path, "chuyoujiao", tmp_path / "sparse.eml")
    else:
        config = load_config(config_path)
        engine = prepare_database(config)
        sessions = make_sessionmaker(engine)
        with Pipeline(config, sessions, InlineRunner(config.limits), lambda: NOW) as pipeline:
            assert poll_mailboxes(config, sessions, pipeline, lambda: NOW)[0].ok  # the baseline: empty
            header = sparse_message(tmp_path / "maildir" / "chuyoujiao" / "new" / "1666.M1P2.host", size)
            results = []
            poll_mailboxes(config, sessions, pipeline, lambda: NOW, lambda r: results.append(r.as_json()))
        engine.dispose()
        (result,) = results
    assert result["outcome"] == "rejected" and result["reply"]
    assert result["errors"][0].startswith("邮件大小约 64 MB，超过系统可接收的 195 KB。")
    engine = prepare_database(load_config(config_path))
    with make_sessionmaker(engine)() as session:
        record = session.scalars(select(Message)).one()
        archived = read_archived(session, tmp_path / "state", record.archive_path)
    engine.dispose()
    assert record.size == size and archived == header[:-2] + b"\r\n\r\n"  # its header, and nothing more


def test_a_file_is_read_whole_within_the_limit_and_by_its_header_past_it(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\n\n" + b"y" * 100)
    assert len(path.read_bytes()) == 112
    assert read_message_file(path, 112) == Fetched(path.read_bytes(), 112, whole=True)
    assert read_message_file(path, 111) == Fetched(b"Subject: x\r\n\r\n", 112, whole=False)
    assert read_message_file(path, None).whole



def test_a_file_that_grew_after_it_was_measured_is_read_whole_or_by_its_header(tmp_path, monkeypatch):
    """The read asks for the size fstat gave and one byte more; a file longer by then is read on to
    the limit, never cut at its measured size."""
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: x\n\n" + b"y" * 100)
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 50, *real_fstat(fd)[7:])))
    assert read_message_file(path, 112) == Fetched(path.read_bytes(), 112, whole=True)
    assert read_message_file(path, 100) == Fetched(b"Subject: x\r\n\r\n", 101, whole=False)

# -- sizes first: a bare table file (ingest --school) ---------------------------------------------------

ZEROS_2_GIB_CRC = 0x4DBDF21C  # zlib.crc32 of 2**31 zero bytes, worked out once (it takes seconds)
_CONTENT_TYPES = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                  b'2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
                  b'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>')


def sparse_zip64_xlsx(path: Path, claimed: int = 2 << 30, crc: int = ZEROS_2_GIB_CRC) -> None:
    """A well-formed .xlsx whose sheet is a stored zip64 member of `claimed` zero bytes, written as
    a hole: the file is `claimed` bytes long and a few KB on disk."""
    members = [("[Content_Types].xml", _CONTENT_TYPES, zlib.crc32(_CONTENT_TYPES)),
               ("xl/workbook.xml", b"<workbook/>", zlib.crc32(b"<workbook/>")),
               ("xl/worksheets/sheet1.xml", None, crc)]
    directory = b""
    with open(path, "wb") as file:
        for name, data, member_crc in members:
            offset, encoded = file.tell(), name.encode()
            size = claimed if data is None else len(data)
            zip64 = struct.pack("<HHQQ", 1, 16, size, size) if data is None else b""
            shown = 0xFFFFFFFF if data is None else size
            file.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, member_crc, shown, shown,
                                   len(encoded), len(zip64)) + encoded + zip64)
            if data is None:
                file.seek(size, os.SEEK_CUR)  # the member's bytes: a hole
            else:
                file.write(data)
            directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, member_crc, shown,
                                     shown, len(encoded), len(zip64), 0, 0, 0, 0, offset) + encoded + zip64
        start = file.tell()
        file.write(directory)
        end = file.tell()
        file.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(members), len(members),
                               len(directory), start))
        file.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
        file.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory),
                               0xFFFFFFFF, 0))


def test_the_sparse_zip64_file_is_what_the_issue_describes(tmp_path):
    path = tmp_path / "汇总表.xlsx"
    sparse_zip64_xlsx(path, claimed=1 << 20, crc=zlib.crc32(bytes(1 << 20)))
    with zipfile.ZipFile(path) as zf:  # a real zip64 archive, its sheet of the size it claims
        assert zf.getinfo("xl/worksheets/sheet1.xml").file_size == 1 << 20
        assert zf.read("xl/worksheets/sheet1.xml") == bytes(1 << 20)
    big = tmp_path / "big.xlsx"
    sparse_zip64_xlsx(big)
    assert big.stat().st_size > 2 << 30 and big.stat().st_blocks * 512 < 64 * 1024


def _address_space(limit: int):
    """A ceiling on the child's address space, so that a regression fails this test with a
    MemoryError instead of taking the machine's memory (aec94e4 reached 6.2 GB)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    return apply


def test_a_sparse_zip64_xlsx_claiming_2_gib_is_refused_by_its_size_in_a_small_process(tmp_path):
    """`ingest --school` read the whole 2 GiB into the main process (6.2 GB RSS on aec94e4)."""
    config = write_config(tmp_path)
    table = tmp_path / "汇总表.xlsx"
    sparse_zip64_xlsx(table)
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        proc = start_process(config, "ingest", "--json", "--school", "安溪县北门小学", "--month", "2022-10", table,
                             stdout=subprocess.PIPE, stderr=stderr, preexec_fn=_address_space(4 << 30))
        stdout = proc.stdout.read()
        proc.stdout.close()
        _pid, status, usage = os.wait4(proc.pid, 0)  # its peak RSS, and its workers' (children it waited for)
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = usage.ru_maxrss / 1024
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text(errors="replace")
    result = json.loads(stdout)
    assert result["outcome"] == "rejected" and result["rows"] == []
    assert result["errors"] == ["附件《汇总表.xlsx》超过了系统可接收的大小（15 MB），请删除表格中的图片等无关内容后，"
                                "重新发送 .xlsx、.xls 或 .docx 文件。"]
    assert peak_mb < 300, f"peak RSS {peak_mb:.0f} MB"
    print(f"ingest --school of a 2 GiB sparse zip64 .xlsx: peak RSS {peak_mb:.0f} MB")


def test_a_signed_school_mail_read_by_its_header_is_not_called_forged(tmp_path, caplog):
    """mailbot's own DKIM check needs the body (its hash is signed): on a message read by its
    header only it would say "dkim=fail" for the school's genuine signature, so it is not run;
    without a trusted Authentication-Results the mail stays unverified: quarantined for the operator
    (no reply to anyone else), never called forged; approved, it gets the size rejection."""
    world = World(tmp_path, f"[limits]\nmax_message_bytes = {LIMIT}\n", sender_auth="dmarc")
    world.pipeline.txt_lookup = FakeDns({"s1._domainkey.163.com": make_key().txt_record})
    raw = sign(big_school_mail("signed-big"), "163.com", make_key())
    header = header_block(raw)
    with caplog.at_level("WARNING", logger="mailbot.ingest.pipeline"):
        result = world.ingest(header, size=len(raw))
    assert result["outcome"] == "quarantined"
    assert [o.recipient for o in world.outbox()] == ["operator@example.test"]  # the operator's notice only
    assert "unverified sender" in caplog.text and "fail" not in caplog.text.split("unverified sender")[1]
    (notice,) = world.outbox()
    text = email.message_from_bytes(notice.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "发件邮箱虽在学校名册中" in text and "超过系统可接收的大小，只读取了邮件头" in text
    assert "不在学校名册中" not in text  # it was: the notice fell back to "not in the roster"
    with world.sessions() as session:
        quarantine_id = session.scalar(select(Quarantine.id))
    approved = approve(world.config, world.sessions, lambda: world.now, quarantine_id, [], False, "operator",
                       runner=InlineRunner(world.config.limits)).as_json()
    assert approved["outcome"] == "rejected" and approved["reply"]["to"] == ["beimenxx@163.com"]
    assert "超过系统可接收的" in approved["errors"][0]
    trusted = b"Authentication-Results: mx.163.com; dkim=pass header.d=163.com\r\n" + raw
    again = world.ingest(header_block(trusted).replace(b"signed-big", b"signed-big-2"), size=len(trusted))
    assert again["outcome"] == "rejected" and again["reply"]["to"] == ["beimenxx@163.com"]
    world.engine.dispose()
