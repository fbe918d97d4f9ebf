"""Decoding of header text and attachment names as Chinese mail clients really write them.

Pure functions over strings and bytes. Raw header values arrive from the stdlib parser as `str`
with non-ASCII bytes smuggled in as lone surrogates (`surrogateescape`); `header_bytes` turns them
back into the bytes on the wire so we can pick the charset ourselves.

What real clients send (see SPEC 3.1 and the sample messages):
- RFC 2047 encoded words, also inside quoted strings (163, QQ, Foxmail), split between words in
  the middle of a multi-byte character, labelled `gb2312` while holding GBK bytes;
- RFC 2231 `filename*=utf-8''...` (Outlook) and continuations `filename*0*=` / `filename*1*=`
  that split a UTF-8 sequence between parts (iPhone);
- raw 8-bit UTF-8 (Thunderbird) or GBK bytes in the header.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import re
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

log = logging.getLogger(__name__)

# Labels whose real-world content is GBK (or GB18030): decode all of them as GB18030, a superset.
_GB_LABELS = {"gb2312", "gbk", "gb18030", "cp936", "ms936", "x-gbk", "euc-cn", "gb_2312-80", "csgb2312"}
# Big5 as written on Windows (cp950) and Hong Kong (HKSCS) are supersets of plain Big5.
_BIG5_LABELS = {"big5", "x-big5", "csbig5", "cn-big5", "big5-hkscs"}

# An RFC 2047 encoded word; RFC 2231 allows a language after the charset (`utf-8*zh`).
# Encoded text may not contain "?", so one match never spans two words.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?([bBqQ])\?([^?]*)\?=")
_CONTINUATION = re.compile(r"^(?P<name>[^*]+)\*(?P<index>\d+)(?P<star>\*?)$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

# Confidence of one decoding, to choose between `filename` and `name` when both are present.
CLEAN = 2  # decoded strictly with the declared charset (or raw UTF-8)
GUESSED = 1  # decoded strictly, but with a charset we had to guess
DAMAGED = 0  # some bytes had to be replaced


def python_codec(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, widened to the superset clients really use;
    None when the label is missing or unknown."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    if name in _GB_LABELS:
        return "gb18030"
    if name in _BIG5_LABELS:
        return "big5hkscs"
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def header_bytes(value: str) -> bytes:
    """The bytes of a raw header value (surrogate-escaped 8-bit bytes restored; real non-ASCII
    characters, as in values built by hand, become UTF-8)."""
    return value.encode("utf-8", "surrogateescape")


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, int]:
    """Decode bytes with the declared charset, else UTF-8, else GB18030; returns the text and how
    confident the decoding is (CLEAN, GUESSED or DAMAGED). Never raises."""
    declared = python_codec(charset)
    if declared:
        try:
            return data.decode(declared), CLEAN
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), (GUESSED if declared else CLEAN)
    except UnicodeDecodeError:
        pass
    guessed = decode_legacy_8bit(data)
    if guessed is not None:
        return guessed, GUESSED
    return data.decode(declared or "gb18030", "replace"), DAMAGED


# Bytes in one GB18030 character whose second byte is printable ASCII (GBK's extension areas):
# real Chinese names rarely need them, Latin-1 words ("Résumé", "Übersicht") always produce them.
_GBK_ASCII_TRAIL = re.compile(rb"[\x81-\xfe][\x40-\x7e]")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")  # GB18030 maps unassigned GBK pairs here


def decode_legacy_8bit(data: bytes) -> str | None:
    """Undeclared 8-bit text that is not UTF-8: GB18030 (older Chinese clients and zip tools), or
    ISO-8859-1 when the bytes only make sense as Latin letters; None when neither fits."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    latin = all(byte >= 0xA0 for byte in data if byte >= 0x80)  # no C1 controls: may be Latin-1
    if text is not None and not (latin and (_gbk_needs_odd_pairs(data) or _PRIVATE_USE.search(text))):
        return text
    return data.decode("latin-1") if latin else text


def _gbk_needs_odd_pairs(data: bytes) -> bool:
    """Whether reading `data` as GBK needs a character with a printable-ASCII second byte (pairs
    are taken from left to right, as a decoder does)."""
    position = 0
    while position < len(data):
        byte = data[position]
        if byte < 0x80:
            position += 1
            continue
        if _GBK_ASCII_TRAIL.match(data, position):
            return True
        position += 2
    return False


def decode_raw_header(value: str) -> str:
    """A raw header value as text: unfolded, 8-bit bytes decoded (UTF-8, else GB18030), encoded
    words NOT yet decoded (addresses must be split first)."""
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")
    data = header_bytes(unfolded)
    if data.isascii():
        return data.decode("ascii")
    return decode_bytes(data)[0]


def _decode_b(text: str) -> bytes:
    # Lenient like mail clients: drop stray characters, repair missing padding.
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    if len(cleaned) % 4 == 1:  # a lone trailing character cannot encode a byte
        cleaned = cleaned[:-1]
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return b""


def _decode_q(text: str) -> bytes:
    raw = header_bytes(text.replace("_", " "))
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_encoded_words_scored(text: str) -> tuple[str, int]:
    """Decode RFC 2047 encoded words anywhere in `text` (also inside quotes or glued to other
    text); returns the text and the confidence of the worst decoded run."""
    pieces: list[str] = []
    score = CLEAN
    run_charset: str | None = None
    run_bytes = b""
    position = 0

    def flush() -> None:
        nonlocal run_bytes, run_charset, score
        if run_bytes or run_charset is not None:
            decoded, run_score = decode_bytes(run_bytes, run_charset)
            if python_codec(run_charset) is None:
                run_score = min(run_score, GUESSED)
            pieces.append(decoded)
            score = min(score, run_score)
        run_bytes, run_charset = b"", None

    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
        if between and not between.isspace():
            flush()
            pieces.append(between)
        elif between and run_charset is None:
            pieces.append(between)  # white space before the first word of a run is kept
        # Adjacent words in the same charset are joined as bytes before decoding: clients split
        # long names between words in the middle of a multi-byte character.
        if run_charset is not None and run_charset.lower() != charset.lower():
            flush()
        run_charset = charset
        run_bytes += _decode_b(payload) if encoding == "b" else _decode_q(payload)
        position = match.end()
    flush()
    pieces.append(text[position:])
    return "".join(pieces), score


def decode_encoded_words(text: str) -> str:
    """`decode_encoded_words_scored` without the confidence."""
    return decode_encoded_words_scored(text)[0]


def decode_header_text(value: str) -> str:
    """Decode an unstructured raw header value (Subject, a display name) to clean text."""
    text, _ = decode_encoded_words_scored(decode_raw_header(value))
    return " ".join(text.split())


def split_header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split a raw `Content-Type` / `Content-Disposition` value into its lower-case main value
    and its parameters (names lower-case, values unquoted, the first of duplicates kept).
    Tolerates missing quotes and semicolons inside quoted values."""
    text = re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", " ").replace("\n", " ")
    segments: list[str] = []
    current: list[str] = []
    in_quotes = False
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and in_quotes:
            current.append(char)
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
            current.append(char)
        elif char == ";" and not in_quotes:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    main = segments[0].strip().lower()
    params: dict[str, str] = {}
    for segment in segments[1:]:
        name, sep, raw_value = segment.partition("=")
        name = name.strip().lower()
        if not sep or not name or name in params:
            continue
        params[name] = _unquote(raw_value.strip())
    return main, params


def _unquote(value: str) -> str:
    if value.startswith('"'):
        inner = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


def _decode_plain(value: str) -> tuple[str, int]:
    """A plain parameter value: maybe raw 8-bit, maybe RFC 2047 words (163, QQ, Foxmail)."""
    data = header_bytes(value)
    if data.isascii():
        return decode_encoded_words_scored(data.decode("ascii"))
    text, score = decode_bytes(data)
    decoded, words_score = decode_encoded_words_scored(text)
    return decoded, min(score, words_score)


def _decode_extended(value: str) -> tuple[str, int]:
    """An RFC 2231 value `charset'language'%XX...` (charset and language may be absent)."""
    charset: str | None = None
    parts = value.split("'", 2)
    if len(parts) == 3:
        charset, _, value = parts
    # Clients also write the value as raw 8-bit text instead of %-escapes: keep those bytes.
    text, score = decode_bytes(unquote_to_bytes(header_bytes(value)), charset or None)
    if charset and python_codec(charset) is None:
        score = min(score, GUESSED)
    return text, score


def decode_param(params: Mapping[str, str], name: str) -> tuple[str, int] | None:
    """Decode one logical parameter (`name`, `name*`, or continuations `name*0`, `name*0*`, ...)
    to (text, confidence); None when absent. The RFC 2231 forms win when they decode cleanly."""
    candidates: list[tuple[str, int]] = []
    extended = params.get(name + "*")
    plain = params.get(name)
    forms = (
        (lambda: _decode_extended(extended)) if extended is not None else None,
        lambda: _join_continuations(params, name),
        (lambda: _decode_plain(plain)) if plain is not None else None,
    )
    for decode in forms:
        if decode is None:
            continue
        try:
            decoded = decode()
        except Exception:  # noqa: BLE001 - a form that cannot be decoded costs that form only
            log.warning("could not decode parameter %r", name, exc_info=True)
            continue
        if decoded is not None:
            candidates.append(decoded)
    candidates = [(text, score) for text, score in candidates if text.strip()]
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate[1])  # max keeps the first of equals


def _join_continuations(params: Mapping[str, str], name: str) -> tuple[str, int] | None:
    sections: dict[int, tuple[str, bool]] = {}
    for key, value in params.items():
        match = _CONTINUATION.match(key)
        if match and match.group("name") == name:
            index = int(match.group("index"))
            if index < 1000:  # RFC 2231 numbers sections from 0; ignore absurd numbers
                sections.setdefault(index, (value, bool(match.group("star"))))
    if 0 not in sections:
        return None
    charset: str | None = None
    data = b""
    any_encoded = False
    index = 0
    while index in sections:  # stop at the first gap, as RFC 2231 says
        value, encoded = sections[index]
        if encoded:
            if index == 0:
                parts = value.split("'", 2)
                if len(parts) == 3:
                    charset, _, value = parts
            data += unquote_to_bytes(header_bytes(value))  # join bytes: a character may be split between parts
            any_encoded = True
        else:
            data += header_bytes(value)
        index += 1
    if not any_encoded:
        # Plain continuations may carry RFC 2047 words split across sections.
        return _decode_plain(data.decode("utf-8", "surrogateescape"))
    text, score = decode_bytes(data, charset or None)
    if charset and python_codec(charset) is None:
        score = min(score, GUESSED)
    return text, score


# An address a reply can be sent to: what the outgoing composer accepts (RFC 5321 limits length).
ADDRESS_SYNTAX = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$")
MAX_ADDRESS_LENGTH = 254


def is_usable_address(address: str) -> bool:
    """Whether mail can be addressed to `address` (ASCII local part and domain, no spaces)."""
    return len(address) <= MAX_ADDRESS_LENGTH and ADDRESS_SYNTAX.match(address) is not None


def clean_filename(name: str) -> str | None:
    """The bare file name as shown to people: no directories (`C:\\..\\x.xlsx` gives `x.xlsx`),
    no control characters, no surrounding white space; None when nothing is left."""
    name = _CONTROL_CHARS.sub("", name)
    name = re.split(r"[/\\]", name)[-1].strip()
    if name in ("", ".", ".."):
        return None
    return name


def decode_filename_params(
    disposition_params: Mapping[str, str], type_params: Mapping[str, str] | None = None
) -> str | None:
    """The attachment's file name from `Content-Disposition` parameters (`filename`) and
    `Content-Type` parameters (`name`): whichever decodes most cleanly, `filename` on a tie;
    without directories; None when there is no usable name."""
    candidates: list[tuple[str, int]] = []
    for params, key in ((disposition_params, "filename"), (type_params or {}, "name")):
        decoded = decode_param(params, key)
        if decoded is None:
            continue
        name = clean_filename(decoded[0])
        if name is not None:
            candidates.append((name, decoded[1]))
    if not candidates:
        return None
    return max(candidates, key=lambda candidate: candidate[1])[0]
