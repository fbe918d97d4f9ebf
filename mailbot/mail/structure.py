"""The shape of a raw message, measured on its bytes before the stdlib parser sees them.

The stdlib parser does work proportional to depth x lines for nested multiparts that never close
their boundaries, recurses once per nested message/rfc822 (a few hundred levels raise
RecursionError) and builds an object per part before anything can count them. One pass of C-speed
regular expressions over the raw bytes measures all three first, so a hostile shape costs
milliseconds and is answered, never parsed (SPEC 4: bad input gets a clear answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Real mail nests a few levels (a forwarded message in a signed one in a mixed one); the walk
# reads ten. Past these the message is not something a school's client wrote.
MAX_OPEN_MULTIPARTS = 20
MAX_EMBEDDED_MESSAGES = 50
MAX_PART_HEADERS = 2000

# Lines that matter: boundary delimiters ("--xyz", "--xyz--"), boundary parameters (also on a
# folded Content-Type line of their own) and the Content-Type header lines themselves.
_INTERESTING_LINE = re.compile(rb"^(?:--[^\r\n]*|[^\r\n]*boundary[^\r\n]*|content-type:[^\r\n]*)",
                               re.IGNORECASE | re.MULTILINE)
_BOUNDARY = re.compile(rb"boundary\s*=\s*(?:\"([^\"\r\n]{1,200})\"|([^\s;\"]{1,200}))", re.IGNORECASE)
_EMBEDDED = re.compile(rb"^content-type:\s*message/(?:rfc822|global)", re.IGNORECASE)


@dataclass(frozen=True)
class Shape:
    """What the scan found; `problem` names the first limit passed ("too_deep",
    "too_many_messages", "too_many_parts") or is None for an ordinary message."""

    open_multiparts: int  # the deepest stack of multipart boundaries open at once
    embedded_messages: int  # message/rfc822 parts, nested or not
    part_headers: int  # Content-Type header lines
    problem: str | None = None


def measure(raw: bytes) -> Shape:
    """Measure `raw` in one pass; stops counting as soon as a limit is passed."""
    stack: list[bytes] = []
    deepest = embedded = headers = 0
    for match in _INTERESTING_LINE.finditer(raw):
        line = match.group(0).rstrip()
        if line.startswith(b"--") and stack:
            token = line[2:]
            closing = token.endswith(b"--") and token[:-2] in stack
            name = token[:-2] if closing else token
            if name in stack:
                # A delimiter of an outer multipart ends every part opened inside it.
                del stack[stack.index(name) + (0 if closing else 1):]
                continue
        if line[:13].lower() == b"content-type:":
            headers += 1
            if _EMBEDDED.match(line):
                embedded += 1
        found = _BOUNDARY.search(line) if b"oundary" in line.lower() else None
        if found:
            name = found.group(1) or found.group(2)
            if name not in stack:
                stack.append(name)
                deepest = max(deepest, len(stack))
        problem = _problem(deepest, embedded, headers)
        if problem:
            return Shape(deepest, embedded, headers, problem)
    return Shape(deepest, embedded, headers)


def _problem(deepest: int, embedded: int, headers: int) -> str | None:
    if deepest > MAX_OPEN_MULTIPARTS:
        return "too_deep"
    if embedded > MAX_EMBEDDED_MESSAGES:
        return "too_many_messages"
    if headers > MAX_PART_HEADERS:
        return "too_many_parts"
    return None
