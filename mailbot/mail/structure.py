"""The shape of a raw message, measured on its bytes before the stdlib parser sees them.

The stdlib parser does work proportional to depth x lines for nested multiparts that never close
their boundaries, recurses once per nested message/rfc822 (a few hundred levels raise
RecursionError) and builds an object per part before anything can count them. One pass of C-speed
regular expressions over the raw bytes measures all three first, so a hostile shape costs
milliseconds and is answered, never parsed (SPEC 4: bad input gets a clear answer).

Parts are counted as the parser makes them: one per delimiter line of an open multipart, with or
without headers of its own (a part needs no Content-Type, so counting those lines let a million
header-less parts through).

The header section of a message (`header_block`) is cut here too: it is all that is read of a
message over the size limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

# Real mail nests a few levels (a forwarded message in a signed one in a mixed one); the walk
# reads ten. Past these the message is not something a school's client wrote.
MAX_OPEN_MULTIPARTS = 20
MAX_EMBEDDED_MESSAGES = 50
MAX_BODY_PARTS = 2000  # body parts of all multiparts together, as the parser would make them
# The header section read of a message over the size limit (real ones are a few KB; one that does
# not end within this is cut at HEADER_FALLBACK_BYTES).
MAX_HEADER_BYTES = 1_000_000
HEADER_FALLBACK_BYTES = 65536

# Lines that matter: boundary delimiters ("--xyz", "--xyz--"), boundary parameters (also on a
# folded Content-Type line of their own) and the Content-Type header lines (for message/rfc822).
# A line is what follows a "\n" up to the next "\r" or "\n". They are found with `find` and a
# regular expression that starts with a literal, not by trying a pattern at every byte: a message
# is mostly base64 lines, and that trial cost a third of a millisecond per 30 KB message (issue 13).
_LINE_START = re.compile(rb"\n(?:--|content-type:)", re.IGNORECASE)
_LINE_END = re.compile(rb"[\r\n]")
_BOUNDARY = re.compile(rb"boundary\s*=\s*(?:\"([^\"\r\n]{1,200})\"|([^\s;\"]{1,200}))", re.IGNORECASE)
_EMBEDDED = re.compile(rb"^content-type:\s*message/(?:rfc822|global)", re.IGNORECASE)


@dataclass(frozen=True)
class Shape:
    """What the scan found; `problem` names the first limit passed ("too_deep",
    "too_many_messages", "too_many_parts") or is None for an ordinary message."""

    open_multiparts: int  # the deepest stack of multipart boundaries open at once
    embedded_messages: int  # message/rfc822 parts, nested or not
    parts: int  # body parts: delimiter lines of the multiparts open where they stand
    problem: str | None = None


def measure(raw: bytes) -> Shape:
    """Measure `raw` in one pass; stops counting as soon as a limit is passed."""
    stack: list[bytes] = []
    deepest = embedded = parts = 0
    for line in _interesting_lines(raw):
        line = line.rstrip()
        if line.startswith(b"--") and stack:
            token = line[2:]
            closing = token.endswith(b"--") and token[:-2] in stack
            name = token[:-2] if closing else token
            if name in stack:
                # A delimiter of an outer multipart ends every part opened inside it.
                del stack[stack.index(name) + (0 if closing else 1):]
                if not closing:
                    parts += 1  # the parser starts a part here, headers or not
                    if parts > MAX_BODY_PARTS:
                        return Shape(deepest, embedded, parts, "too_many_parts")
                continue
        if line[:13].lower() == b"content-type:" and _EMBEDDED.match(line):
            embedded += 1
        found = _BOUNDARY.search(line) if b"oundary" in line.lower() else None
        if found:
            name = found.group(1) or found.group(2)
            if name not in stack:
                stack.append(name)
                deepest = max(deepest, len(stack))
        problem = _problem(deepest, embedded)
        if problem:
            return Shape(deepest, embedded, parts, problem)
    return Shape(deepest, embedded, parts)


def _interesting_lines(raw: bytes) -> Iterator[bytes]:
    """The lines of `raw` that start with "--" or "content-type:" or hold "boundary" (any case),
    in order. Each line is read once: linear in the size of `raw` whatever it holds."""
    lowered = raw.lower()
    size = len(raw)

    def next_start(position: int) -> int:
        found = _LINE_START.search(raw, position)
        return found.start() + 1 if found else size

    def next_boundary(position: int) -> int:
        """The start of the next line with "boundary" before any "\r" in it."""
        while (hit := lowered.find(b"boundary", position)) >= 0:
            line_start = lowered.rfind(b"\n", 0, hit) + 1
            if lowered.find(b"\r", line_start, hit) < 0:
                return line_start
            position = lowered.find(b"\n", hit)  # the line ended at that "\r": go on from the next one
            if position < 0:
                break
        return size

    start = 0 if lowered.startswith((b"--", b"content-type:")) else next_start(0)
    boundary = next_boundary(0)
    while (line_start := min(start, boundary)) < size:
        found = _LINE_END.search(raw, line_start)
        end = found.start() if found else size
        yield raw[line_start:end]
        if start < end:
            start = next_start(end)
        if boundary < end:
            boundary = next_boundary(end)


def _problem(deepest: int, embedded: int) -> str | None:
    if deepest > MAX_OPEN_MULTIPARTS:
        return "too_deep"
    if embedded > MAX_EMBEDDED_MESSAGES:
        return "too_many_messages"
    return None


def header_block(raw: bytes) -> bytes:
    """The header section of `raw` (up to its first empty line) as a message of its own: what is
    read of a message over the size limit. One whose header does not end within MAX_HEADER_BYTES
    is cut at HEADER_FALLBACK_BYTES."""
    ends = [end for end in (raw.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4), raw.find(b"\n\n", 0, MAX_HEADER_BYTES + 2))
            if end >= 0]
    return raw[: min(ends) if ends else HEADER_FALLBACK_BYTES] + b"\r\n\r\n"
