"""What a poll decides before and after downloading (SPEC 4-5), as pure functions of data.

`triage` judges described IMAP messages with the same rules the pipeline applies later
(`rules.automatic`, `rules.classify`), so a message decided here without downloading gets the
outcome it would have got downloaded. `advance_mark` keeps the high-water mark honest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from mailbot.rules.classify import own_mail_reason
from mailbot.rules.outcome import Outcome, Result
from mailbot.transports.imap_responses import RemoteMessage


@dataclass
class Triage:
    """What to do with each described message."""

    ignore: list[tuple[RemoteMessage, str]] = field(default_factory=list)  # (message, why)
    duplicate: list[RemoteMessage] = field(default_factory=list)
    fetch: list[int] = field(default_factory=list)


def triage(described: Iterable[RemoteMessage], *, is_known_sender: Callable[[str], bool], own_addresses: set[str],
           processed_message_ids: set[str], max_message_bytes: int) -> Triage:
    """Decide from the description alone (SPEC 4-5) what needs downloading; the same rules as
    the pipeline, applied early, so the outcome is the same either way."""
    out = Triage()
    for message in described:
        if message.message_id and message.message_id in processed_message_ids:
            out.duplicate.append(message)
        elif message.automatic:
            out.ignore.append((message, f"automatic mail: {message.automatic}"))
        elif own_mail_reason(message, own_addresses):
            out.ignore.append((message, own_mail_reason(message, own_addresses)))
        elif not is_known_sender(message.from_addr) and not message.has_candidate:
            out.ignore.append((message, "unknown sender, no table-like attachment"))
        elif not is_known_sender(message.from_addr) and message.size > max_message_bytes:
            out.ignore.append((message, "oversized message from an unknown sender"))
        else:
            out.fetch.append(message.uid)
    return out


def advance_mark(mark: int, wanted: Iterable[int], settled: set[int]) -> int:
    """The new high-water mark: past every wanted UID, in order, up to the first unsettled one."""
    for uid in sorted(wanted):
        if uid <= mark:
            continue
        if uid not in settled:
            break
        mark = uid
    return mark


def unread_result(label: str, mailbox: str, message: RemoteMessage, outcome: Outcome) -> Result:
    """The result of a message decided without downloading it."""
    return Result(label, outcome, message.message_id, mailbox, message.from_addr)
