"""No silent outcome (issue 11 point 7): a part of a registered sender's mail that cannot be decoded
(here a MemoryError in the worker on a 15 MB base64 part of "=" signs) is said, and the mail is
rejected with that reason, never `ignored` as if the school had written about something else."""

from __future__ import annotations

from support.cli import ingest_json
from support.configs import write_config

SCHOOL = "beimenxx@163.com"


def equals_signs_mail(megabytes: int = 15) -> bytes:
    body = b"=" * (megabytes * 1024 * 1024)
    lines = b"\r\n".join(body[i:i + 76] for i in range(0, len(body), 76))
    return (b"From: " + SCHOOL.encode() + b"\r\nTo: chuyoujiao@163.com\r\nSubject: hello\r\n"
            b"Message-ID: <equals@test>\r\nDate: Thu, 20 Oct 2022 10:00:00 +0800\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            b"--b\r\nContent-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n"
            b"Content-Disposition: attachment; filename=\"a.xlsx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + lines + b"\r\n--b--\r\n")


def test_a_part_that_cannot_be_decoded_is_a_rejection_that_says_so_not_ignored(tmp_path):
    config = write_config(tmp_path)
    (tmp_path / "equals.eml").write_bytes(equals_signs_mail())

    (result,) = ingest_json(config, "chuyoujiao", tmp_path / "equals.eml")

    assert result["outcome"] == "rejected", result
    assert any("无法解码" in error for error in result["errors"]), result["errors"]
    assert result["reply"]["to"] == [SCHOOL]
