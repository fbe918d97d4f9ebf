"""Whether a message really comes from the domain in its From (SPEC 3.4, issue 11).

Pure: it reads the header fields and, when asked, the results of mailbot's own DKIM check (a
callable, so the DNS work is done only when no trusted server has already judged the message).

Which `Authentication-Results` count (RFC 8601 §5): only the topmost run of adjacent fields whose
authserv-id is one the operator trusts (`[security] authserv_ids`); a field written by anyone else
(a sender can write any header) is ignored. With no trusted ids configured, the topmost field alone
is taken, since the receiving server adds its own on top.

Alignment is DMARC's relaxed alignment (RFC 7489 §3.1): the DKIM `d=` domain or the SPF envelope
domain must have the same organisational domain as the From domain, by the public suffix list
(shipped inside the `publicsuffixlist` package; never fetched).

Modes:
- "dmarc": the message counts only with an aligned pass (DKIM, SPF or the server's DMARC verdict);
  any aligned failure, `dmarc=fail`, a pass only for other domains, no result at all, or a
  temporary DNS error leaves it unverified.
- "evidence": unverified only on evidence of forgery: an aligned failure, `dmarc=fail`, or a pass
  only for a domain that is not aligned. Nothing is looked up.
- "off": every message counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Sequence

MODES = ("dmarc", "evidence", "off")
PASS, FAIL, TEMPERROR = "pass", "fail", "temperror"
# Results that say the check was made and the sender did not satisfy it.
_FAILED = {"fail", "softfail", "permerror", "policy", "neutral"}
_HEADER_BLOCK_LIMIT = 256 * 1024  # header fields beyond this are not read
_METHODS = ("dkim", "spf", "dmarc")


@dataclass(frozen=True)
class AuthResult:
    """One result: `dkim=pass header.d=school.cn` is AuthResult("dkim", "pass", "school.cn")."""

    method: str  # dkim | spf | dmarc
    result: str  # pass | fail | softfail | temperror | none | ...
    domain: str  # the domain the result is about, lower case; "" when it names none
    by: str  # who judged: the authserv-id, or "mailbot" for our own DKIM check

    def describe(self) -> str:
        about = f" for {self.domain}" if self.domain else ""
        return f"{self.method}={self.result}{about} ({self.by})"


@dataclass(frozen=True)
class AuthVerdict:
    """The judgement. `check` says in English, for the operator, what passed or which check failed."""

    verified: bool
    check: str
    forged: bool = False  # evidence of forgery, not merely a missing proof
    temporary: bool = False  # a temporary DNS error is part of why it is unverified


OwnDkimCheck = Callable[[], Sequence[AuthResult]]


# --- header fields -------------------------------------------------------------------------------


def header_fields(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of a raw message, top to bottom, as (lower-case name, unfolded value)."""
    end = min(len(raw), _HEADER_BLOCK_LIMIT)
    for separator in (b"\r\n\r\n", b"\n\n"):
        found = raw.find(separator, 0, end)  # only before the end found so far: not the whole body
        if found != -1:
            end = found
    block = raw[:end].decode("utf-8", errors="replace")
    fields: list[tuple[str, str]] = []
    for line in block.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, _, value = line.partition(":")
            if name and not name[-1].isspace():
                fields.append((name.strip().lower(), value.strip()))
    return fields


def trusted_results(fields: Sequence[tuple[str, str]], authserv_ids: Sequence[str]) -> list[AuthResult] | None:
    """The results of the trusted Authentication-Results fields, or None when there is none.

    With trusted ids: the first run of adjacent fields whose id is trusted. Any other field ends
    the run, so a field a sender wrote with our server's id (RFC 8601 §5 asks servers to remove
    those, but not every server does) is not taken: it sits below our server's `Received`, or
    below the fields the server adds after its own results (Coremail's X-Coremail-Antispam)."""
    trusted = {i.lower() for i in authserv_ids}
    found: list[AuthResult] | None = None
    for name, value in fields:
        if name != "authentication-results":
            if found is not None:
                break
            continue
        authserv_id, results = parse_authentication_results(value)
        if not trusted:
            return results  # the topmost field alone
        if authserv_id in trusted:
            found = (found or []) + results
        elif found is not None:
            break
    return found


def parse_authentication_results(value: str) -> tuple[str, list[AuthResult]]:
    """(authserv-id, results) of one field value. Tolerant: Coremail ends it with a `;`, comments
    may nest, and what cannot be read is skipped, never guessed."""
    text = _without_comments(value)
    parts = [part.strip() for part in _split_outside_quotes(text, ";")]
    authserv_id = parts[0].split()[0].lower() if parts and parts[0].split() else ""
    results: list[AuthResult] = []
    for part in parts[1:]:
        tokens = _split_outside_quotes(part, None)
        if not tokens:
            continue
        method, sep, result = tokens[0].partition("=")
        method, result = method.split("/")[0].strip().lower(), result.strip().lower()
        if not sep or method not in _METHODS or not result.isalpha():
            continue
        properties = {}
        for token in tokens[1:]:
            key, sep, prop = token.partition("=")
            if sep and "." in key:
                properties.setdefault(key.strip().lower(), prop.strip().strip('"').lower())
        results.append(AuthResult(method, result, _result_domain(method, properties), authserv_id))
    return authserv_id, results


def _result_domain(method: str, properties: dict[str, str]) -> str:
    keys = {"dkim": ("header.d", "header.i"), "spf": ("smtp.mailfrom", "smtp.mail"),
            "dmarc": ("header.from",)}[method]
    value = next((properties[key] for key in keys if properties.get(key)), "")
    return value.rpartition("@")[2].strip(".")


def _without_comments(text: str) -> str:
    out, depth, quoted, escaped = [], 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
        elif char == '"' and depth == 0:
            quoted = not quoted
            out.append(char)
        elif char == "(" and not quoted:
            depth += 1
        elif char == ")" and not quoted and depth:
            depth -= 1
            out.append(" ")
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_outside_quotes(text: str, separator: str | None) -> list[str]:
    """Split on `separator` (None: on white space) except inside double quotes."""
    pieces, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        splits = (char.isspace() if separator is None else char == separator) and not quoted
        if splits:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()] if separator is None else pieces


# --- alignment -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _suffix_list():
    from publicsuffixlist import PublicSuffixList  # the bundled list: no network access

    return PublicSuffixList()


@lru_cache(maxsize=4096)
def organisational_domain(domain: str) -> str:
    """`mail.school.edu.cn` → `school.edu.cn`; a name under no known suffix is its own."""
    domain = domain.strip().strip(".").lower()
    if not domain:
        return ""
    return _suffix_list().privatesuffix(domain) or domain


def aligned(domain: str, from_domain: str) -> bool:
    return bool(domain) and bool(from_domain) and organisational_domain(domain) == organisational_domain(from_domain)


# --- the judgement -----------------------------------------------------------------------------


def judge(fields: Sequence[tuple[str, str]], from_addr: str, *, mode: str, authserv_ids: Sequence[str] = (),
          own_dkim: OwnDkimCheck | None = None) -> AuthVerdict:
    """Judge one message. `fields` from `header_fields`; `from_addr` is the From address mailbot
    matches against the roster; `own_dkim` runs mailbot's own DKIM check (only in "dmarc" mode, and
    only when no trusted field reports DKIM)."""
    if mode not in MODES:
        raise ValueError(f"unknown sender_auth mode {mode!r}")
    if mode == "off":
        return AuthVerdict(True, "sender authentication is off")
    from_domain = from_addr.rpartition("@")[2].strip().lower()
    from_fields = sum(1 for name, _ in fields if name == "from")
    if mode == "dmarc" and (from_fields != 1 or not from_domain):
        return AuthVerdict(False, "the message has no single From address to authenticate")

    results = trusted_results(fields, authserv_ids)
    forgery = _evidence_of_forgery(results or [], from_domain)
    if forgery:
        return AuthVerdict(False, forgery, forged=True)
    if mode == "evidence":
        return AuthVerdict(True, "no evidence of forgery")

    passed = _aligned_pass(results or [], from_domain)
    if passed:
        return AuthVerdict(True, passed.describe())
    seen = list(results or [])
    if own_dkim is not None and not any(r.method == "dkim" for r in seen):
        own = list(own_dkim())
        forgery = _evidence_of_forgery(own, from_domain)
        if forgery:
            return AuthVerdict(False, forgery, forged=True)
        passed = _aligned_pass(own, from_domain)
        if passed:
            return AuthVerdict(True, passed.describe())
        seen += own
    temporary = any(r.result == TEMPERROR for r in seen)
    return AuthVerdict(False, _why_unverified(results, seen, from_domain), temporary=temporary)


def _evidence_of_forgery(results: Iterable[AuthResult], from_domain: str) -> str:
    """English, for the operator: what shows the message is forged; "" when nothing does."""
    results = list(results)
    for r in results:
        if r.method == "dmarc" and r.result == FAIL:
            return f"DMARC failed: {r.describe()}"
        if r.method in ("dkim", "spf") and r.result == FAIL and (not r.domain or aligned(r.domain, from_domain)):
            return f"{r.method.upper()} failed for the From domain {from_domain}: {r.describe()}"
    passes = [r for r in results if r.result == PASS and r.method in ("dkim", "spf")]
    if passes and not any(aligned(r.domain, from_domain) for r in passes):
        shown = ", ".join(r.describe() for r in passes)
        return f"passes only for domains not aligned with the From domain {from_domain}: {shown}"
    return ""


def _aligned_pass(results: Iterable[AuthResult], from_domain: str) -> AuthResult | None:
    for r in results:
        if r.result != PASS:
            continue
        if r.method in ("dkim", "spf") and aligned(r.domain, from_domain):
            return r
        if r.method == "dmarc" and (not r.domain or aligned(r.domain, from_domain)):
            return r
    return None


def _why_unverified(trusted: list[AuthResult] | None, seen: list[AuthResult], from_domain: str) -> str:
    temporary = [r for r in seen if r.result == TEMPERROR]
    if temporary:
        return "temporary DNS error, try again later: " + ", ".join(r.describe() for r in temporary)
    failed = [r for r in seen if r.result in _FAILED]
    if failed:
        return f"no aligned pass for {from_domain}: " + ", ".join(r.describe() for r in failed)
    if trusted is None and not seen:
        return "no Authentication-Results from a trusted server and no DKIM signature mailbot could verify"
    shown = ", ".join(r.describe() for r in seen) or "no SPF, DKIM or DMARC result"
    return f"no aligned SPF or DKIM pass for {from_domain}: {shown}"
