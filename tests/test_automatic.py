"""The one automatic-mail rule, and that IMAP triage and the pipeline read it alike."""

from dataclasses import dataclass

import pytest

from mailbot.mail.parse import parse_message
from mailbot.rules.automatic import AUTOREPLY_HEADERS, HEADERS, automatic_reason, header_token, is_autoreply
from mailbot.transports.imap_responses import HEADER_FIELDS, remote_message


@dataclass
class Facts:
    from_addr: str = "school@163.com"
    auto_submitted: str | None = None
    precedence: str | None = None
    x_autoreply: bool = False
    list_id: bool = False
    is_report: bool = False


@pytest.mark.parametrize("facts, reason", [
    (Facts(), None),
    (Facts(auto_submitted="no"), None),
    (Facts(auto_submitted="auto-replied"), "Auto-Submitted: auto-replied"),
    (Facts(precedence="bulk"), "Precedence: bulk"),
    (Facts(precedence="auto_reply"), "Precedence: auto_reply"),
    (Facts(precedence="first-class"), None),
    (Facts(x_autoreply=True), "X-Autoreply header"),
    (Facts(list_id=True), "List-Id header"),
    (Facts(is_report=True), "multipart/report (a bounce or receipt)"),
    (Facts(from_addr="MAILER-DAEMON@163.com"), "sender MAILER-DAEMON@163.com is a mail system"),
    (Facts(from_addr="no-reply@service.test"), "sender no-reply@service.test is a mail system"),
    (Facts(from_addr="bounces+x@lists.test"), "sender bounces+x@lists.test is a mail system"),
    (Facts(from_addr="postmasterclass@school.test"), None),  # a word that only starts like one
    (Facts(from_addr=""), "no From address"),
])
def test_automatic_reason(facts, reason):
    assert automatic_reason(facts) == reason


def test_header_reading():
    assert header_token("Auto-Replied; owner-email=x@y") == "auto-replied"
    assert header_token("  ") is None and header_token(None) is None
    assert all(is_autoreply({name: ["yes"]}) for name in AUTOREPLY_HEADERS)
    assert is_autoreply({"x-auto-response-suppress": ["DR, All"]})
    assert not is_autoreply({"x-auto-response-suppress": ["OOF"]}) and not is_autoreply({})


def test_triage_fetches_every_header_the_rule_reads():
    fetched = HEADER_FIELDS.decode().lower().split()
    assert set(HEADERS) <= set(fetched) and "x-mailbot" in fetched


@pytest.mark.parametrize("headers", [
    b"",
    b"Auto-Submitted: auto-replied\r\n",
    b"Auto-Submitted: No\r\n",
    b"Precedence: junk\r\n",
    b"Precedence: auto_reply\r\n",
    b"X-Autorespond: yes\r\n",
    b"X-Auto-Response-Suppress: All\r\n",
    b"List-Id: <news.example.test>\r\n",
])
@pytest.mark.parametrize("sender", [b"school@163.com", b"noreply@163.com"])
def test_triage_and_the_pipeline_reach_the_same_verdict(headers, sender):
    head = b"From: " + sender + b"\r\nMessage-ID: <m@x>\r\n" + headers
    parsed = parse_message(head + b"Subject: s\r\n\r\nbody\r\n")
    described = remote_message(1, {b"BODY[HEADER.FIELDS (FROM)]": head + b"\r\n"})

    assert described.automatic == automatic_reason(parsed)
