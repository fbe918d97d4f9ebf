"""Who an automatic reply may go to, and how many a day (SPEC 4, issue 11 point 2).

The bureau's accounts must never become a relay: a reply goes to the school's registered address.
A `Reply-To` is honoured only when it is itself registered for one of the same schools (a school
that writes from a teacher's account but wants answers at the office). Counting per reply
recipient alone let 15 forged mails with 15 Reply-To addresses reach 15 strangers; the cap now
holds per sender, per recipient and per mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from mailbot.rules.roster import Roster


def reply_address(from_addr: str, reply_to: Iterable[str], sender_schools: Iterable[str], roster: Roster,
                  own_addresses: Iterable[str]) -> str:
    """The one address an automatic reply to this message goes to."""
    own = {a.lower() for a in own_addresses}
    schools = set(sender_schools)
    for address in reply_to:
        if address.lower() in own or address.lower() == from_addr.lower():
            continue
        if schools & set(roster.schools_of_sender(address)):
            return address
        break  # only the first Reply-To is the school's wish; the others are not looked at
    return from_addr


@dataclass(frozen=True)
class ReplyCounts:
    """Automatic replies already queued today."""

    to_recipient: int  # to the address this reply would go to
    for_sender: int  # caused by mail from this From address
    from_mailbox: int  # sent from this mailbox


@dataclass(frozen=True)
class ReplyCaps:
    per_sender: int  # also per recipient (SPEC 4: "per sender per day", default 10)
    per_mailbox: int


def cap_reached(counts: ReplyCounts, caps: ReplyCaps) -> str | None:
    """Which cap stops this reply ("recipient" | "sender" | "mailbox"), or None."""
    if counts.to_recipient >= caps.per_sender:
        return "recipient"
    if counts.for_sender >= caps.per_sender:
        return "sender"
    if counts.from_mailbox >= caps.per_mailbox:
        return "mailbox"
    return None


def cap_description(cap: str, caps: ReplyCaps, mailbox: str) -> str:
    """For the operator's log: the cap `cap_reached` named, with its figure."""
    if cap == "mailbox":
        return f"daily reply cap of mailbox {mailbox} reached ({caps.per_mailbox} today)"
    return f"daily reply cap per {cap} reached ({caps.per_sender} today)"
