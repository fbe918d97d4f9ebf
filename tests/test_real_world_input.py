"""Real-world input through the whole pipeline (issue 10): what other projects' mail and files did
to mailbot, each as the smallest message that shows it. In process, with the inline reader."""

from __future__ import annotations

import pytest

from builders import XLSX, submission, table_xlsx
from support.pipeline_world import World

BEIMEN = ["安溪县北门小学", 1, 1878, 1797, "是", "科普、美术、阅读"]
SENDER, MAILBOX = "beimenxx@163.com", "chuyoujiao@163.com"


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.engine.dispose()


@pytest.mark.parametrize("reply_to", ["a@x.com b@x.com c", ".", "😀", "x" * 50_000])
def test_unusable_reply_to_is_answered_at_from_and_the_table_recorded(world, reply_to):
    result = world.ingest(submission(SENDER, MAILBOX, [BEIMEN], headers={"Reply-To": reply_to}))
    assert result["outcome"] == "accepted" and result["sender"] == SENDER and result["message_id"]
    assert result["reply"]["to"] == [SENDER]
    assert [mail.to_addrs for mail in world.outbox()] == [[SENDER]]


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream"])
def test_table_declared_as_a_picture_is_read_by_its_content(world, content_type):
    raw = submission(SENDER, MAILBOX, attachments=[("IMG_2022.jpg", table_xlsx([BEIMEN]), content_type)])
    result = world.ingest(raw)
    assert result["outcome"] == "accepted" and result["rows"][0]["enrolled"] == 1878


def test_real_photo_stays_a_photo(world):
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 200
    result = world.ingest(submission(SENDER, MAILBOX, attachments=[("盖章表.xlsx", jpeg, XLSX)]))
    assert result["outcome"] == "rejected"
    assert any("图片" in error or "照片" in error for error in result["errors"])


def deep_submission(depth: int) -> bytes:
    table = submission(SENDER, MAILBOX, [BEIMEN])
    head, _, body = table.partition(b"\n\n")
    nested = b"".join(b'--n%d\nContent-Type: multipart/mixed; boundary="n%d"\n\n' % (i - 1, i) for i in range(1, depth))
    return (head.replace(b"Content-Type: multipart/mixed", b"X-Old: x").replace(b"MIME-Version: 1.0",
            b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="n0"') + b"\n\n" + nested
            + b"--n%d\n" % (depth - 1) + body)


def test_600_deep_multipart_is_rejected_with_the_reason_not_no_attachment(world):
    result = world.ingest(deep_submission(600))
    assert result["outcome"] == "rejected" and result["sender"] == SENDER
    assert any("嵌套" in error for error in result["errors"])
    assert not any("没有附件" in error for error in result["errors"])


def test_deep_multipart_from_a_stranger_is_ignored(world):
    raw = deep_submission(600).replace(SENDER.encode(), b"stranger@example.org")
    assert world.ingest(raw)["outcome"] == "ignored"


def test_each_file_that_is_not_a_table_is_named_for_what_it_is(world):
    from corpus import files
    photos = files.zip_of({"1.jpg": files.photo(), "2.jpg": files.photo()})
    raw = submission(SENDER, MAILBOX, attachments=[("材料.zip", photos, "application/zip"),
                                                   ("盖章表.jpg", files.photo(), "image/jpeg"),
                                                   ("说明", b"\x00\x01\x02 binary", "application/octet-stream")])
    result = world.ingest(raw)
    assert result["outcome"] == "rejected"
    errors = "\n".join(result["errors"])
    assert "《材料.zip》中没有找到表格文件（里面只有《1.jpg》、《2.jpg》）" in errors
    assert "《盖章表.jpg》是一张图片" in errors and "《说明》不是系统能识别的表格文件" in errors
    assert "可能是照片" not in errors and len(result["errors"]) == 3
