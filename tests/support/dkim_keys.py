"""Real DKIM signatures for tests: an RSA key made here, its DNS record, and messages signed with it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailbot.mail.dkim_check import TemporaryDnsError


@dataclass(frozen=True)
class TestKey:
    private_pem: bytes
    txt_record: str  # what `<selector>._domainkey.<domain>` holds


@lru_cache(maxsize=4)
def make_key(bits: int = 1024) -> TestKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return TestKey(private_pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(public_der).decode())


def sign(message: bytes, domain: str, key: TestKey, selector: str = "s1", length: bool = False) -> bytes:
    """The message with a DKIM-Signature for `domain` on top."""
    signature = dkim.sign(message, selector.encode(), domain.encode(), key.private_pem,
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"], length=length)
    return signature + message


class FakeDns:
    """TXT answers by name; names listed in `failing` raise a temporary error."""

    def __init__(self, records: dict[str, str] | None = None, failing: set[str] | None = None):
        self.records = dict(records or {})
        self.failing = set(failing or ())
        self.asked: list[str] = []

    def __call__(self, name: str) -> str | None:
        self.asked.append(name)
        if name in self.failing:
            raise TemporaryDnsError(f"{name}: timed out")
        return self.records.get(name)
