"""mailbot's own DKIM check (RFC 6376), used when no trusted server recorded one (issue 11).

Verification is dkimpy's; the key records come from `txt_lookup`, a function of a DNS name that
returns the TXT text, None when there is no record, or raises `TemporaryDnsError` (tests inject
answers; production passes `mailbot.transports.dns_txt.system_txt_lookup`).
"""

from __future__ import annotations

import logging
import re
from typing import Callable

import dkim

from mailbot.errors import TransportError
from mailbot.rules.sender_auth import FAIL, PASS, TEMPERROR, AuthResult

log = logging.getLogger(__name__)

MAX_SIGNATURES = 5  # each costs a DNS query; a hostile message may carry hundreds
TxtLookup = Callable[[str], "str | None"]


class TemporaryDnsError(TransportError):
    """The DNS could not answer now (timeout, SERVFAIL): neither a pass nor a fail."""


def check_dkim(raw: bytes, txt_lookup: TxtLookup) -> list[AuthResult]:
    """One result per DKIM-Signature (the first MAX_SIGNATURES), top to bottom."""
    try:
        signer = dkim.DKIM(raw, minkey=1024, logger=_quiet)
    except Exception as exc:  # noqa: BLE001 - unreadable headers: nothing to verify
        log.info("DKIM check skipped, headers unreadable: %r", exc)
        return []
    signatures = [value for name, value in signer.headers if name.lower() == b"dkim-signature"]
    results = []
    for index, value in enumerate(signatures[:MAX_SIGNATURES]):
        results.append(_verify_one(signer, index, value, txt_lookup))
    return results


def _verify_one(signer: dkim.DKIM, index: int, value: bytes, txt_lookup: TxtLookup) -> AuthResult:
    domain = _tag(value, b"d")
    if re.search(rb"(^|;)\s*l\s*=", value):
        # A body length limit lets anyone append an attachment to a school's signed mail.
        return AuthResult("dkim", "policy", domain, "mailbot")

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        answer = txt_lookup(name.decode("ascii", errors="replace").rstrip("."))
        return answer.encode() if answer is not None else None

    try:
        ok = signer.verify(idx=index, dnsfunc=dnsfunc)
    except TemporaryDnsError as exc:
        log.info("DKIM key of %s not available now: %s", domain, exc)
        return AuthResult("dkim", TEMPERROR, domain, "mailbot")
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):  # the body was changed after signing
            return AuthResult("dkim", FAIL, domain, "mailbot")
        log.info("DKIM signature of %s unusable: %s", domain, exc)
        return AuthResult("dkim", "permerror", domain, "mailbot")
    except dkim.DKIMException as exc:
        log.info("DKIM signature of %s unusable: %s", domain, exc)
        return AuthResult("dkim", "permerror", domain, "mailbot")
    except Exception as exc:  # noqa: BLE001 - a hostile signature must not break the message
        log.warning("DKIM check of %s broke: %r", domain, exc)
        return AuthResult("dkim", "permerror", domain, "mailbot")
    return AuthResult("dkim", PASS if ok else FAIL, domain, "mailbot")


def _tag(value: bytes, name: bytes) -> str:
    match = re.search(rb"(?:^|;)\s*" + name + rb"\s*=\s*([^;\s]*)", value)
    return match.group(1).decode("ascii", errors="replace").lower().strip(".") if match else ""


class _Quiet:
    """dkimpy logs every failed signature at error level; they are normal for us."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


_quiet = _Quiet()
