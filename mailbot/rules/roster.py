"""Which school a row belongs to (SPEC 3.4): exact matching on normalised names, never fuzzy."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from mailbot.config import School

_PREFIXES = ("福建省", "泉州市", "安溪县")
_BRACKETS = str.maketrans({"（": "(", "）": ")", "【": "(", "】": ")", "[": "(", "]": ")", "〔": "(", "〕": ")",
                           "［": "(", "］": ")", "｛": "(", "｝": ")", "{": "(", "}": ")"})
_SEAL = re.compile(r"\((盖章|公章|签章)\)$")


def normalise_name(name: str) -> str:
    """NFKC, no white space, no province/city/county prefix, no trailing （盖章）, one kind of bracket."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(ch for ch in text if not ch.isspace()).translate(_BRACKETS)
    text = _SEAL.sub("", text)
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix):], True
    return text


@dataclass
class Roster:
    """The schools, looked up by normalised name or alias and by sender address."""

    schools: list[School]
    extra_senders: dict[str, set[str]] = field(default_factory=dict)  # email -> school names (approved)

    def __post_init__(self):
        self.by_name: dict[str, School] = {s.name: s for s in self.schools}
        self._by_key: dict[str, School] = {}
        for school in self.schools:
            for label in [school.name, *school.aliases]:
                self._by_key.setdefault(normalise_name(label), school)
        self._by_email: dict[str, list[str]] = {}
        for school in self.schools:
            for email in school.emails:
                self._by_email.setdefault(email.lower(), []).append(school.name)
        for email, names in self.extra_senders.items():
            for name in sorted(names):
                if name in self.by_name and name not in self._by_email.get(email, []):
                    self._by_email.setdefault(email.lower(), []).append(name)

    def match(self, written: str) -> School | None:
        if not written:
            return None
        return self._by_key.get(normalise_name(written))

    def schools_of_sender(self, email: str) -> list[str]:
        return list(self._by_email.get((email or "").lower(), []))

    def active(self, month: str) -> list[School]:
        return [s for s in self.schools if s.active_in(month)]
