"""The DNS adapter against a real (tiny) name server on loopback: answers, missing names, and one
that never answers (a temporary error within the deadline, not a hang)."""

from __future__ import annotations

import socket
import threading

import dns.message
import dns.rcode
import dns.resolver
import dns.rrset
import pytest

from mailbot.mail.dkim_check import TemporaryDnsError
from mailbot.transports.dns_txt import system_txt_lookup

KEY = "v=DKIM1; k=rsa; p=" + "A" * 300  # longer than one 255-byte TXT string


class TinyNameServer:
    """Answers TXT queries over UDP from a dict; a name mapped to None is NXDOMAIN; silent=True
    never answers at all."""

    def __init__(self, records: dict[str, str | None], silent: bool = False):
        self.records, self.silent = records, silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if self.silent:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            name = query.question[0].name.to_text().rstrip(".")
            text = self.records.get(name)
            if text is None:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            else:
                chunks = " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))
                reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "TXT", chunks))
            self.sock.sendto(reply.to_wire(), peer)

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    made = []

    def make(records, silent=False):
        made.append(TinyNameServer(records, silent))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_key_record_split_in_strings_is_joined(server):
    ns = server({"s1._domainkey.school.edu.cn": KEY})
    assert system_txt_lookup("s1._domainkey.school.edu.cn", resolver=ns.resolver()) == KEY


def test_a_missing_name_is_no_record(server):
    ns = server({})
    assert system_txt_lookup("s1._domainkey.nowhere.cn", resolver=ns.resolver()) is None


def test_a_server_that_never_answers_is_a_temporary_error_within_the_deadline(server):
    ns = server({}, silent=True)
    with pytest.raises(TemporaryDnsError):
        system_txt_lookup("s1._domainkey.school.edu.cn", deadline=0.5, resolver=ns.resolver())
