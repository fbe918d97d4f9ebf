"""Automatic replies go only to a school's registered address (issue 11 point 2)."""

from __future__ import annotations

from mailbot.config import School
from mailbot.rules.reply_policy import ReplyCaps, ReplyCounts, cap_reached, reply_address
from mailbot.rules.roster import Roster

ROSTER = Roster([
    School("安溪县北门小学", "primary", emails=["beimen@163.com", "beimen_office@163.com"]),
    School("安溪县城厢中学", "middle", emails=["chengxiang@163.com"]),
])
OWN = ["zjg@163.com", "cyj@163.com"]


def test_a_stranger_in_reply_to_is_not_answered():
    assert reply_address("beimen@163.com", ["victim@example.com"], ["安溪县北门小学"], ROSTER, OWN) == "beimen@163.com"


def test_reply_to_registered_for_the_same_school_is_honoured():
    assert reply_address("beimen@163.com", ["BeiMen_Office@163.com"], ["安溪县北门小学"], ROSTER,
                         OWN) == "BeiMen_Office@163.com"


def test_reply_to_registered_for_another_school_is_not():
    assert reply_address("beimen@163.com", ["chengxiang@163.com"], ["安溪县北门小学"], ROSTER, OWN) == "beimen@163.com"


def test_reply_to_ourselves_is_never_used():
    assert reply_address("beimen@163.com", ["zjg@163.com"], ["安溪县北门小学"], ROSTER, OWN) == "beimen@163.com"


def test_caps_hold_per_recipient_sender_and_mailbox():
    caps = ReplyCaps(per_sender=10, per_mailbox=100)
    assert cap_reached(ReplyCounts(9, 9, 99), caps) is None
    assert cap_reached(ReplyCounts(10, 0, 0), caps) == "recipient"
    assert cap_reached(ReplyCounts(0, 10, 0), caps) == "sender"
    assert cap_reached(ReplyCounts(0, 0, 100), caps) == "mailbox"
