"""Render the emails mailbot writes from templates found by name (SPEC 4).

Each kind is a folder `mailbot/templates/<kind>/` holding `subject.txt`, `body.txt` and `body.html`.
Contexts are plain data (dates already formatted as strings). StrictUndefined turns a missing key
into an error at render time instead of a silently blank sentence in a letter to a school.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

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


def _tidy_text(text: str) -> str:
    """Strip trailing spaces and runs of blank lines that optional template sections leave."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def compose(kind: str, context: dict) -> Composed:
    """Render `kind` with `context`.

    Raises ValueError for an unknown kind and jinja2.UndefinedError when the context lacks a key
    the templates use (a bug in the caller, never a school's fault).
    """
    if not isinstance(kind, str) or not _KIND_NAME.match(kind):
        raise ValueError(f"unknown email kind {kind!r}")
    env = template_environment()
    try:
        subject, text, html = (env.get_template(f"{kind}/{part}") for part in ("subject.txt", "body.txt", "body.html"))
    except TemplateNotFound as exc:
        raise ValueError(f"unknown email kind {kind!r} (missing template {exc.name})") from exc
    return Composed(
        subject=one_line(subject.render(context)),
        text=_tidy_text(text.render(context)),
        html=html.render(context),
    )
