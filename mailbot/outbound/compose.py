"""Render the emails mailbot writes from templates found by name (SPEC 4).

Each kind is a folder `mailbot/templates/<kind>/` holding `subject.txt`, `body.txt` and `body.html`.
Contexts are plain data (dates already formatted as strings). StrictUndefined turns a missing key
into an error at render time instead of a silently blank sentence in a letter to a school.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator, TextIO

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape

# The kinds the pipeline and the operator notices use; other kinds may be added as folders.
KINDS = ("receipt", "rejection", "operator_quarantine", "operator_failure")

_KIND_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_SUBJECT_CHARS = 200


@dataclass(frozen=True)
class Composed:
    """One rendered email: a one-line subject, the plain-text part and the HTML part."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The one Jinja2 environment; HTML is escaped (school-written text goes into it), text is not."""
    return Environment(
        loader=PackageLoader("mailbot", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # the templates ship with the package: no stat() of three files per email
    )


def one_line(text: str, limit: int = _MAX_SUBJECT_CHARS) -> str:
    """Collapse all white space (line breaks included) to single spaces, and cap the length."""
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


def _lines(pieces: Iterable[str], batch: int = 1024) -> Iterator[str]:
    """The lines of the pieces joined, cut where str.splitlines() cuts them (each with its line end),
    holding a batch of pieces and one unfinished line at a time."""
    carry, held = "", []
    for piece in pieces:
        held.append(piece)
        if len(held) >= batch:
            *lines, carry = (carry + "".join(held)).splitlines(keepends=True) or [""]
            yield from lines
            held.clear()
    # The unfinished line is carried, never cut: the next piece may continue it ("\r" then "\n" included).
    yield from (carry + "".join(held)).splitlines(keepends=True)


def _tidy(pieces: Iterable[str], batch: int = 1024) -> Iterator[str]:
    """The text without the trailing spaces and runs of blank lines that optional template sections
    leave: every line right-stripped, at most one blank line in a row, none first or last, one line
    end at the end. A generator, so a long text (the summary's) is tidied as it is rendered."""
    started = blank = False
    for line in _lines(pieces, batch):
        line = line.rstrip()  # its line end too: every end str.splitlines() knows is white space
        if not line:
            blank = True
            continue
        if started:
            yield "\n\n" if blank else "\n"
        yield line
        started, blank = True, False
    yield "\n"


def _templates(kind: str):
    """The subject, text and HTML templates of `kind`; ValueError for an unknown kind."""
    if not isinstance(kind, str) or not _KIND_NAME.match(kind):
        raise ValueError(f"unknown email kind {kind!r}")
    env = template_environment()
    try:
        return tuple(env.get_template(f"{kind}/{part}") for part in ("subject.txt", "body.txt", "body.html"))
    except TemplateNotFound as exc:
        raise ValueError(f"unknown email kind {kind!r} (missing template {exc.name})") from exc


def compose(kind: str, context: dict) -> Composed:
    """Render `kind` with `context`.

    Raises ValueError for an unknown kind and jinja2.UndefinedError when the context lacks a key
    the templates use (a bug in the caller, never a school's fault).
    """
    # Written into buffers as the templates produce the pieces: render() would join a list of all
    # of them (a million small strings for the summary of 10,000 schools, some 50 MB).
    text, html = io.StringIO(), io.StringIO()
    subject = compose_to(kind, context, text, html)
    return Composed(subject=subject, text=text.getvalue(), html=html.getvalue())


def compose_to(kind: str, context: dict, text_out: TextIO, html_out: TextIO) -> str:
    """compose(), with the text and the HTML written to two files piece by piece as the templates
    produce them; returns the subject. render() holds every piece of a part before joining them:
    for the summary of 10,000 schools (an 11 MB HTML part) some 60 MB of small strings at once."""
    subject, text, html = _templates(kind)
    html_out.writelines(html.generate(context))
    text_out.writelines(_tidy(text.generate(context)))
    return one_line(subject.render(context))
