"""Every decision about one message, from data (SPEC 3.4-4): its outcome, its problems and
warnings, and whether it is answered.

`decide` runs `OUTCOME_RULES` in order; the first rule that returns a decision wins, the way a
Mailman chain does. Each rule reads `Facts`, which computes what several rules need (the
sender's schools, the rows) once, when first asked. Then `with_reply` says whether the decision is
answered (the reply cap included) and adds the warnings that go with the answer.

Nothing here reads the database or the clock: the pipeline gathers that into `Context` first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Mapping
from zoneinfo import ZoneInfo

from mailbot.rules import classify
from mailbot.rules.automatic import automatic_reason
from mailbot.rules.identify import drop_repeated_rows, identify_rows
from mailbot.rules.labels import LEVEL_LABELS, SECTION_LABELS
from mailbot.rules.model import ParsedMessage, RawTable, RowResult
from mailbot.rules.month import month_of
from mailbot.rules.outcome import Decision, Hold, HoldCause, Outcome, Reply, Twin
from mailbot.rules.reply_policy import ReplyCaps, ReplyCounts, cap_reached, reply_address
from mailbot.rules.roster import Roster
from mailbot.rules.sender_auth import AuthVerdict
from mailbot.rules.rows import interpret_row
from mailbot.tables.guards import NOT_A_TABLE_KINDS

if TYPE_CHECKING:  # plain data from the worker; the rules never run it
    from mailbot.ingest.analysis import Analysis

# Attachment kinds that are not an attempt at sending the table (a signature logo, a photo): one
# list, beside the words each kind says (mailbot.tables.guards).
NOT_TABLE_KINDS = NOT_A_TABLE_KINDS


@dataclass(frozen=True)
class Context:
    """What the decision needs beyond the message itself, gathered by the pipeline."""

    received_at: datetime  # aware: the message's date, else its newest Received, else when read
    timezone: ZoneInfo  # the bureau's, for the month a table is for
    mailbox_levels: tuple[str, ...]  # the school levels the receiving mailbox serves
    address_for_level: Mapping[str, str]  # where each level's schools should send
    own_addresses: frozenset[str]  # the bureau's mailboxes: never answered, never a reply address
    message_bytes: int
    max_message_bytes: int
    reply_cap: int  # replies per recipient and per sender per day
    replies_today: int  # replies already queued today to `reply_recipient(message)`
    our_message_ids: frozenset[str] = frozenset()  # of the message's In-Reply-To/References, ours
    replied_kinds: frozenset[str] = frozenset()  # the kinds of those emails of ours (receipt, reminder_due ...)
    twin: Twin | None = None  # an earlier processed copy of this message
    trusted_schools: tuple[str, ...] | None = None  # the operator approved it as sent by these
    # Whether the From is authentic (mailbot.rules.sender_auth), judged for a registered sender;
    # None: not judged, then only an SPF/DKIM fail the parser saw counts against it.
    sender_auth: AuthVerdict | None = None
    replies_for_sender: int = 0  # replies already queued today for mail from this From address
    replies_from_mailbox: int = 0  # automatic replies the receiving mailbox sent today
    reply_cap_per_mailbox: int = 10**9


def decide(msg: ParsedMessage, analysis: Analysis, roster: Roster, context: Context) -> Decision:
    facts = Facts(msg, analysis, roster, context)
    for rule in OUTCOME_RULES:
        decision = rule(facts)
        if decision is not None:
            return with_reply(decision, facts)
    raise AssertionError("the last rule always decides")


def reply_recipient(msg: ParsedMessage, own_addresses: frozenset[str] | set[str], roster: Roster,
                    schools: list[str] | tuple[str, ...]) -> str:
    """Where an automatic reply goes: the sender's address; its Reply-To only when that address is
    registered for one of the same schools (issue 11: never a relay to strangers)."""
    return reply_address(msg.from_addr, msg.reply_to, schools, roster, own_addresses)


def table_rows(tables: list[RawTable], roster: Roster, sender_schools: list[str],
               month_for: Callable[[RawTable], str]) -> list[RowResult]:
    """Every data row of these tables, its values interpreted, its school identified, its month
    set to `month_for(table)`."""
    rows: list[RowResult] = []
    for table in tables:
        month = month_for(table)
        found = [interpret_row(raw, table.layout) for raw in table.rows]
        for row in found:
            row.month = month
        identify_rows(found, sender_schools, roster, len(table.rows))
        rows.extend(found)
    return rows


class Facts:
    """What the rules ask about one message; each computed at most once."""

    def __init__(self, msg: ParsedMessage, analysis: Analysis, roster: Roster, context: Context):
        self.msg, self.analysis, self.roster, self.context = msg, analysis, roster, context

    @cached_property
    def sender_schools(self) -> list[str]:
        if self.context.trusted_schools is not None:
            return list(self.context.trusted_schools)
        return self.roster.schools_of_sender(self.msg.from_addr)

    @cached_property
    def authentic(self) -> bool:
        """Whether the From may be believed (SPEC 3.4): judged by `sender_auth` when given."""
        verdict = self.context.sender_auth
        return verdict.verified if verdict is not None else not self.msg.auth_failed

    @cached_property
    def trusted(self) -> bool:
        approved = self.context.trusted_schools is not None
        return bool(self.sender_schools) and (approved or self.authentic)

    def not_authentic(self, oversized: bool = False) -> tuple[Hold, str]:
        """Why the registered From is not believed: the hold, and the reason for the log."""
        verdict = self.context.sender_auth
        if verdict is None:
            return Hold(HoldCause.FORGED, oversized=oversized), "forged sender (SPF/DKIM fail)"
        return Hold(HoldCause.UNVERIFIED, verdict.check, oversized), f"unverified sender: {verdict.check}"

    @cached_property
    def tables(self) -> list[RawTable]:
        return [t for ex in self.analysis.extracted for t in ex.tables]

    @cached_property
    def problems(self) -> list[str]:
        """Why each attachment that looked like a table could not be read."""
        return [ex.unreadable.message for ex in self.analysis.extracted
                if ex.unreadable is not None and ex.unreadable.kind not in NOT_TABLE_KINDS]

    @cached_property
    def rows(self) -> list[RowResult]:
        local_sent = self.context.received_at.astimezone(self.context.timezone)
        return table_rows(self.tables, self.roster, self.sender_schools,
                          lambda table: month_of([table.title_text, self.msg.subject, table.file], local_sent))


# -- the outcome rules, in order ------------------------------------------------------------------

def duplicate(f: Facts) -> Decision | None:
    """The same message (Message-ID, else bytes) was processed before; an approval is not a repeat."""
    if f.context.twin is not None and f.context.trusted_schools is None:
        return Decision(Outcome.DUPLICATE, twin=f.context.twin, reason=f"duplicate of message #{f.context.twin.id}")
    return None


def automatic_mail(f: Facts) -> Decision | None:
    """Auto-replies, bounces, lists and the bureau's own mail are never taken or answered."""
    why = automatic_reason(f.msg) or classify.own_mail_reason(f.msg, set(f.context.own_addresses))
    return Decision(Outcome.IGNORED, reason=why) if why else None


def oversized(f: Facts) -> Decision | None:
    """Answered from the headers alone: the body of an oversized message is never parsed."""
    if not f.analysis.oversized:
        return None
    schools = list(f.context.trusted_schools or ()) or f.roster.schools_of_sender(f.msg.from_addr)
    if not schools:
        return Decision(Outcome.IGNORED, reason="oversized message from an unknown sender")
    if f.context.trusted_schools is None and not f.authentic:
        # Unverified, and its body (which a DKIM check needs) was never downloaded: the operator
        # decides, as for any unverified table (approving it gives the size rejection); never silent.
        hold, why = f.not_authentic(oversized=True)
        return Decision(Outcome.QUARANTINED, reason=f"oversized message, {why}", sender_schools=schools, hold=hold)
    size, limit = _shown_size(f.context.message_bytes), _shown_size(f.context.max_message_bytes)
    return Decision(Outcome.REJECTED, sender_schools=schools, reason="message over the size limit", errors=[
        f"邮件大小约 {size}，超过系统可接收的 {limit}。汇总表文件通常只有几十 KB，"
        "请只附上填写好的表格文件（不要附照片或扫描件）后重新发送。"])


def _shown_size(size: int) -> str:
    """A size as a school reads it: "30 MB", "1.4 MB", "195 KB" (never "0 MB")."""
    megabytes = size / 1024 / 1024
    if megabytes >= 10:
        return f"{megabytes:.0f} MB"
    return f"{megabytes:.1f} MB" if megabytes >= 1 else f"{max(size / 1024, 1):.0f} KB"


def stranger_without_attachments(f: Facts) -> Decision | None:
    if not f.trusted and not f.msg.attachments:
        return Decision(Outcome.IGNORED, reason="unknown sender, nothing attached")
    return None


def stranger(f: Facts) -> Decision | None:
    """A table from someone not in the roster (or forged) waits for the operator."""
    if f.trusted:
        return None
    if not any(t.rows for t in f.tables):
        return Decision(Outcome.IGNORED, reason="unknown sender, no table")
    if f.sender_schools:
        hold, why = f.not_authentic()
    else:
        hold, why = Hold(HoldCause.UNKNOWN_SENDER), "sender not in the roster"
    candidates = sorted({r.school for r in f.rows if r.school})
    return Decision(Outcome.QUARANTINED, rows=f.rows, reason=why, sender_schools=candidates, hold=hold)


# Our emails that ask the school for its table: a reply to one without a table is an attempt that
# failed (answered with the template). A reply to any other email of ours (a receipt, a notice,
# the summary) without a table is a "收到，谢谢" for the staff.
ASKING_KINDS = ("rejection", "reminder_")


def thanks_for_our_mail(f: Facts) -> Decision | None:
    """A reply to a receipt, a notice or a summary that carries no table is `ignored` (SPEC 3.4)."""
    kinds = f.context.replied_kinds
    if not kinds or f.tables or f.problems or any(k.startswith(ASKING_KINDS) for k in kinds):
        return None
    return Decision(Outcome.IGNORED, reason=f"reply to our {', '.join(sorted(kinds))} without a table")


def other_business(f: Facts) -> Decision | None:
    """A registered school writing about something else is left for the staff; not when a file or
    a part of its mail could not be read (issue 11: never a silent `ignored`)."""
    attempt = (bool(f.tables) or bool(f.problems) or classify.mentions_submission(f.msg)
               or classify.replies_to_us(f.msg, set(f.context.our_message_ids)))
    return None if attempt else Decision(Outcome.IGNORED, reason="registered sender, not about the report")


def submission(f: Facts) -> Decision:
    """A submission attempt: accepted when one row is valid, else rejected with every reason."""
    rows = drop_repeated_rows(f.rows)
    if any(r.ok for r in rows):
        return Decision(Outcome.ACCEPTED, rows=rows, errors=f.problems, sender_schools=f.sender_schools)
    errors = f.problems + ([] if rows else why_nothing(f))
    return Decision(Outcome.REJECTED, rows=rows, errors=errors, sender_schools=f.sender_schools,
                    reason="nothing valid to record")


OUTCOME_RULES: tuple[Callable[[Facts], Decision | None], ...] = (
    duplicate, automatic_mail, oversized, stranger_without_attachments, stranger, thanks_for_our_mail, other_business,
    submission)


def why_nothing(f: Facts) -> list[str]:
    """The plain-Chinese reasons a submission attempt had nothing to record, beyond `f.problems`
    (each unreadable table file has already said why, and is not said twice)."""
    if f.tables:
        return ["表格中没有找到填写了数据的学校行（表头下方为空）。请在表头下方逐行填写本校数据后重新发送。"]
    if f.msg.big_attachment_links:
        return ["邮件中的表格是以“超大附件”（下载链接）方式发送的，系统无法自动下载。"
                "请将表格文件直接作为普通附件添加到邮件中重新发送。"]
    if f.problems:
        return []
    unreadable = [ex.unreadable for ex in f.analysis.extracted if ex.unreadable is not None]
    if unreadable:
        # Photos, PDFs, an archive of photos, files of no known kind: each sentence names the file,
        # says what it is and what to send instead (mailbot.tables.guards), never a guess.
        return list(dict.fromkeys(problem.message for problem in unreadable))
    if f.msg.attachments:
        return ["附件中没有找到《城区义务教育阶段学校课后服务开展情况汇总表》的表头"
                "（需包含“学校名称”“在校学生数”“参与课后服务学生数”等列）。请使用附带的模板填写后重新发送。"]
    return ["邮件中没有附件。请将填写好的汇总表（.xlsx、.xls 或 .docx）作为附件重新发送。"]


# -- the answer -----------------------------------------------------------------------------------

def with_reply(decision: Decision, f: Facts) -> Decision:
    """Accepted and rejected submissions are answered, at most `reply_cap` times a day per recipient
    and per sender, and `reply_cap_per_mailbox` times per mailbox (SPEC 4, issue 11); a receipt for a school that wrote to the other level's mailbox says where
    to send next time."""
    if decision.outcome not in (Outcome.ACCEPTED, Outcome.REJECTED):
        return decision
    to = reply_recipient(f.msg, f.context.own_addresses, f.roster, f.sender_schools)
    cap = f.context.reply_cap
    counts = ReplyCounts(f.context.replies_today, f.context.replies_for_sender, f.context.replies_from_mailbox)
    which = cap_reached(counts, ReplyCaps(per_sender=cap, per_mailbox=f.context.reply_cap_per_mailbox))
    if which:
        told = "今日本邮箱的自动回复已达上限，本次不再回复。" if which == "mailbox" else f"今日已向该邮箱自动回复{cap}次，本次不再回复。"
        return replace(decision, reply_cap=which, warnings=[*decision.warnings, told])
    if decision.outcome == Outcome.REJECTED:
        return replace(decision, reply=Reply("rejection", [to]))
    note = wrong_mailbox_note(decision.recorded_rows, f.roster, f.context)
    return replace(decision, reply=Reply("receipt", [to]), wrong_mailbox_note=note,
                   warnings=[*decision.warnings, note] if note else decision.warnings)


def wrong_mailbox_note(recorded: list[RowResult], roster: Roster, context: Context) -> str:
    wrong = sorted({roster.by_name[r.school].level for r in recorded} - set(context.mailbox_levels))
    if not wrong:
        return ""
    level = wrong[0]
    return (f"本校为{LEVEL_LABELS[level]}，课后服务汇总表应报送{SECTION_LABELS[level]}邮箱 "
            f"{context.address_for_level[level]}。本次数据已照常登记，下次请发送至该邮箱。")
