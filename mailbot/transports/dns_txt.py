"""TXT look-ups through the system resolver, with an overall deadline (for DKIM keys)."""

from __future__ import annotations

import dns.exception
import dns.resolver

from mailbot.mail.dkim_check import TemporaryDnsError

DEFAULT_DEADLINE = 5.0  # seconds for one name, retries included


def system_txt_lookup(name: str, deadline: float = DEFAULT_DEADLINE,
                      resolver: dns.resolver.Resolver | None = None) -> str | None:
    """The first TXT record of `name` (its strings joined), None when the name or the record does
    not exist; TemporaryDnsError when the DNS cannot answer in time. `resolver`: the system's
    (/etc/resolv.conf) unless given."""
    resolver = resolver or dns.resolver.get_default_resolver()
    try:
        answer = resolver.resolve(name, "TXT", lifetime=deadline, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:  # timeout, SERVFAIL, no name server reachable
        raise TemporaryDnsError(f"{name}: {exc.__class__.__name__}") from exc
    for record in answer:
        return b"".join(record.strings).decode("utf-8", errors="replace")
    return None
