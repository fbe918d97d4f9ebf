"""Sender authentication (issue 11 point 1): which Authentication-Results count, DMARC alignment,
mailbot's own DKIM check with real signatures, and the three modes."""

from __future__ import annotations

import socket

import pytest

from mailbot.mail.dkim_check import check_dkim
from mailbot.rules.sender_auth import (
    aligned,
    header_fields,
    judge,
    organisational_domain,
    parse_authentication_results,
    trusted_results,
)
from support.dkim_keys import FakeDns, make_key, sign

SCHOOL = "school.edu.cn"
SENDER = f"jwc@{SCHOOL}"
OUR_SERVER = "mx.bureau.test"
KEY_NAME = f"s1._domainkey.{SCHOOL}"


def message(from_addr: str = SENDER, body: str = "附件是十月的汇总表。") -> bytes:
    return (f"From: =?utf-8?B?5YyX6Zeo5bCP5a2m?= <{from_addr}>\r\nTo: zjg@163.com\r\n"
            "Subject: =?utf-8?B?6K++5ZCO5pyN5Yqh5rGH5oC76KGo?=\r\nDate: Thu, 20 Oct 2022 10:00:00 +0800\r\n"
            f"Message-ID: <20221020.1@{from_addr.partition('@')[2]}>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
            ).encode()


def with_results(raw: bytes, *values: str) -> bytes:
    """The receiving servers add their Authentication-Results on top, above the signature."""
    return "".join(f"Authentication-Results: {v}\r\n" for v in values).encode() + raw


def signed(domain: str = SCHOOL, raw: bytes | None = None, **kwargs) -> bytes:
    return sign(raw if raw is not None else message(), domain, make_key(), **kwargs)


def school_dns(**kwargs) -> FakeDns:
    return FakeDns({KEY_NAME: make_key().txt_record}, **kwargs)


def verdict(raw: bytes, mode: str = "dmarc", authserv_ids=(OUR_SERVER,), dns: FakeDns | None = None,
            from_addr: str = SENDER):
    dns = dns if dns is not None else school_dns()
    return judge(header_fields(raw), from_addr, mode=mode, authserv_ids=authserv_ids,
                 own_dkim=lambda: check_dkim(raw, dns))


# --- the matrix of issue 11 under "dmarc" ------------------------------------------------------------


def test_aligned_dkim_pass_recorded_by_our_server_is_accepted():
    raw = with_results(signed(), f"{OUR_SERVER}; dkim=pass header.d={SCHOOL} header.s=s1; spf=none")
    result = verdict(raw, dns=FakeDns())  # the server's word is taken: nothing is looked up
    assert result.verified, result.check
    assert "dkim=pass" in result.check


def test_aligned_dkim_pass_verified_by_mailbot_itself_is_accepted():
    dns = school_dns()
    result = verdict(signed(), dns=dns)
    assert result.verified, result.check
    assert dns.asked == [KEY_NAME]
    assert "(mailbot)" in result.check


def test_dkim_of_a_subdomain_is_aligned():
    dns = FakeDns({f"s1._domainkey.mail.{SCHOOL}": make_key().txt_record})
    assert verdict(signed(f"mail.{SCHOOL}"), dns=dns).verified


def test_aligned_spf_pass_is_accepted():
    raw = with_results(message(), f"{OUR_SERVER}; spf=pass smtp.mailfrom=bounce@mail.{SCHOOL}")
    assert verdict(raw, dns=FakeDns()).verified


def test_coremail_spf_pass_for_the_from_address_is_accepted():
    raw = with_results(message("beimenxx@163.com"), "mx25; spf=pass smtp.mail=beimenxx@163.com;")
    assert verdict(raw, authserv_ids=["mx25"], from_addr="beimenxx@163.com").verified


def test_spf_pass_only_for_the_attackers_own_domain_is_quarantined():
    raw = with_results(message(), f"{OUR_SERVER}; spf=pass smtp.mailfrom=someone@attacker.example; dkim=none")
    result = verdict(raw)
    assert not result.verified and result.forged
    assert "attacker.example" in result.check


def test_no_authentication_results_and_no_signature_is_quarantined():
    dns = school_dns()
    result = verdict(message(), dns=dns)
    assert not result.verified and not result.temporary
    assert "no Authentication-Results" in result.check
    assert dns.asked == []  # nothing to look up


def test_a_valid_signature_of_the_attackers_domain_is_not_the_school():
    dns = FakeDns({"s1._domainkey.attacker.example": make_key().txt_record})
    result = verdict(signed("attacker.example"), dns=dns)
    assert not result.verified
    assert "attacker.example" in result.check


def test_an_untrusted_header_above_the_trusted_one_is_ignored():
    raw = with_results(message(), f"evil.example; dkim=pass header.d={SCHOOL}; spf=pass smtp.mailfrom={SCHOOL}",
                       f"{OUR_SERVER}; spf=softfail smtp.mailfrom={SCHOOL}; dkim=none")
    result = verdict(raw)
    assert not result.verified
    assert "softfail" in result.check


def test_the_topmost_header_alone_counts_when_no_server_is_named():
    raw = with_results(message(), f"{OUR_SERVER}; spf=pass smtp.mailfrom={SCHOOL}",
                       f"{OUR_SERVER}; dkim=fail header.d={SCHOOL}")
    assert verdict(raw, authserv_ids=()).verified
    spoofed = with_results(message(), f"evil.example; dkim=pass header.d={SCHOOL}",
                           f"{OUR_SERVER}; spf=fail smtp.mailfrom={SCHOOL}")
    assert verdict(spoofed, authserv_ids=()).verified  # as before: name the servers to close this
    assert not verdict(spoofed).verified


def test_dkim_fail_in_a_second_trusted_header_is_quarantined():
    raw = with_results(message(), f"{OUR_SERVER}; spf=pass smtp.mailfrom={SCHOOL}",
                       f"{OUR_SERVER}; dkim=fail (signature did not verify) header.d={SCHOOL}")
    result = verdict(raw)
    assert not result.verified and result.forged
    assert "DKIM failed" in result.check


def test_dmarc_fail_is_quarantined_even_with_an_aligned_pass():
    raw = with_results(message(), f"{OUR_SERVER}; spf=pass smtp.mailfrom={SCHOOL}; dmarc=fail header.from={SCHOOL}")
    result = verdict(raw)
    assert not result.verified and result.forged
    assert "DMARC failed" in result.check


def test_spf_softfail_is_quarantined():
    raw = with_results(message(), f"{OUR_SERVER}; spf=softfail smtp.mailfrom={SCHOOL}")
    result = verdict(raw, dns=FakeDns())
    assert not result.verified and not result.forged
    assert "spf=softfail" in result.check


def test_temporary_dns_error_is_quarantined_and_says_so():
    result = verdict(signed(), dns=school_dns(failing={KEY_NAME}))
    assert not result.verified and result.temporary and not result.forged
    assert "temporary DNS error" in result.check


def test_temporary_error_recorded_by_the_server_is_quarantined():
    raw = with_results(message(), f"{OUR_SERVER}; dkim=temperror header.d={SCHOOL}; spf=temperror")
    result = verdict(raw)
    assert not result.verified and result.temporary


# --- mailbot's own DKIM check -------------------------------------------------------------------


def test_a_changed_body_breaks_the_signature():
    tampered = signed().replace("十月".encode(), "九月".encode())
    result = verdict(tampered)
    assert not result.verified and result.forged
    assert "dkim=fail" in result.check


def test_a_signature_with_a_body_length_limit_does_not_pass():
    # l= lets anyone append a part (an attachment with other figures) to a school's signed mail
    result = verdict(signed(length=True))
    assert not result.verified
    assert "dkim=policy" in result.check


def test_a_key_that_does_not_exist_is_no_pass():
    result = verdict(signed(), dns=FakeDns())
    assert not result.verified and not result.temporary


def test_own_check_runs_when_the_trusted_header_has_no_dkim_result():
    dns = school_dns()
    raw = with_results(signed(), f"{OUR_SERVER}; spf=softfail smtp.mailfrom={SCHOOL}")
    assert verdict(raw, dns=dns).verified  # DMARC: one aligned pass is enough
    assert dns.asked == [KEY_NAME]
    raw = with_results(signed(), f"{OUR_SERVER}; spf=none; dkim=none")
    assert not verdict(raw).verified  # the server checked DKIM and found nothing: its word stands


def test_two_from_addresses_are_never_verified():
    raw = b"From: other@attacker.example\r\n" + signed()
    assert not verdict(raw).verified


def test_unreadable_signatures_do_not_break_the_check():
    raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=\r\nDKIM-Signature: garbage\r\n" + message()
    results = check_dkim(raw, school_dns())
    assert [r.result for r in results] == ["permerror", "permerror"]
    assert not verdict(raw).verified


# --- "evidence" and "off" -------------------------------------------------------------------------


@pytest.mark.parametrize("results, forged", [
    (None, False),
    (f"{OUR_SERVER}; spf=pass smtp.mailfrom={SCHOOL}", False),
    (f"{OUR_SERVER}; spf=softfail smtp.mailfrom={SCHOOL}", False),
    (f"{OUR_SERVER}; spf=fail smtp.mailfrom=other.example", False),
    (f"{OUR_SERVER}; spf=fail smtp.mailfrom=jwc@{SCHOOL}", True),
    (f"{OUR_SERVER}; spf=fail", True),
    (f"{OUR_SERVER}; dkim=fail header.i=@mail.{SCHOOL}", True),
    (f"{OUR_SERVER}; dmarc=fail header.from={SCHOOL}", True),
    (f"{OUR_SERVER}; spf=pass smtp.mailfrom=attacker.example", True),
])
def test_evidence_mode_quarantines_only_on_evidence_of_forgery(results, forged):
    raw = with_results(message(), results) if results else message()
    dns = school_dns()
    result = verdict(raw, mode="evidence", dns=dns)
    assert result.verified is not forged
    assert dns.asked == []  # evidence mode never looks anything up


def test_off_accepts_everything():
    raw = with_results(message(), f"{OUR_SERVER}; dmarc=fail header.from={SCHOOL}")
    assert verdict(raw, mode="off").verified


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        verdict(message(), mode="strict")


# --- reading the headers -------------------------------------------------------------------------


def test_parse_is_tolerant_of_coremail_and_comments():
    server, results = parse_authentication_results(
        'MX16 1; spf=pass (sender (ip) is 1.2.3.4; ok) smtp.mail="a b"@QQ.com; dkim/2=fail header.d=X.cn;'
        " foo=bar; dmarc=pass;")
    assert server == "mx16"
    assert [(r.method, r.result, r.domain) for r in results] == [
        ("spf", "pass", "qq.com"), ("dkim", "fail", "x.cn"), ("dmarc", "pass", "")]
    assert parse_authentication_results(" ; spf=fail=; dkim=; =pass") == ("", [])


def test_trusted_run_ends_at_any_other_field():
    fields = header_fields(with_results(
        b"Received: from relay\r\nAuthentication-Results: mx.bureau.test; dkim=fail\r\n\r\nbody",
        f"{OUR_SERVER}; spf=pass smtp.mailfrom={SCHOOL}"))
    assert [r.result for r in trusted_results(fields, [OUR_SERVER])] == ["pass"]
    # Coremail: Received, X-CM-TRANSID, its own results, X-Coremail-Antispam, then the sender's
    # fields, where a forger may have written "mx25; dkim=pass" for the school.
    fields = header_fields(b"Received: by mx1\r\nX-CM-TRANSID: 1\r\nAuthentication-Results: mx25; "
                           b"spf=pass smtp.mail=x@attacker.example;\r\nX-Coremail-Antispam: 1\r\n"
                           b"Authentication-Results: mx25; dkim=pass header.d=school.edu.cn\r\n\r\n")
    assert [(r.result, r.domain) for r in trusted_results(fields, ["mx25"])] == [("pass", "attacker.example")]
    assert not judge(fields, SENDER, mode="dmarc", authserv_ids=["mx25"]).verified
    fields = header_fields(with_results(b"\r\n", "evil; spf=pass", f"{OUR_SERVER}; spf=none", "evil; spf=pass",
                                        f"{OUR_SERVER}; dkim=fail"))
    assert [r.result for r in trusted_results(fields, [OUR_SERVER.upper()])] == ["none"]
    assert trusted_results(header_fields(message()), [OUR_SERVER]) is None


def test_folded_header_values_are_unfolded():
    fields = header_fields(b"Authentication-Results: mx1;\r\n\tspf=pass\r\n smtp.mailfrom=a.cn\r\n\r\n")
    assert fields == [("authentication-results", "mx1; spf=pass smtp.mailfrom=a.cn")]


# --- organisational domains ------------------------------------------------------------------------


def test_alignment_by_organisational_domain():
    assert organisational_domain("Mail.School.edu.cn.") == SCHOOL
    assert aligned("mail.school.edu.cn", SCHOOL) and aligned("a.163.com", "163.com")
    assert not aligned("other.edu.cn", SCHOOL)  # edu.cn is a public suffix
    assert not aligned("school.edu.cn.attacker.example", SCHOOL)
    assert not aligned("", SCHOOL) and not aligned(SCHOOL, "")


def test_the_public_suffix_list_needs_no_network(monkeypatch):
    from publicsuffixlist import PublicSuffixList

    def no_network(*args, **kwargs):
        raise AssertionError("the public suffix list must not be fetched")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert PublicSuffixList().privatesuffix("a.b.school.gov.cn") == "school.gov.cn"
