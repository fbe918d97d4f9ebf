"""Find cloud "big attachment" links (QQ Mail 超大附件, 163/126 超大附件) in message bodies.

Such a message carries no file at all, only a download link; the school must be told to attach the
file instead (SPEC 3.1). mailbot never follows these links.
"""

from __future__ import annotations

import html
import re

_URL_CHARS = r"[^\s\"'<>()\[\]{}\u3000-\u303f\uff08\uff09\uff0c\uff1b]"

# Download links of the clients' cloud attachments.
_BIG_ATTACHMENT_URL = re.compile(
    r"https?://(?:"
    r"(?:[\w-]+\.)*mail\.qq\.com/cgi-bin/ftnExs_download"  # QQ Mail (and exmail.qq.com)
    r"|(?:[\w-]+\.)*exmail\.qq\.com/cgi-bin/ftnExs_download"
    r"|(?:[\w-]+\.)*mail\.qq\.com/ftn/download"  # QQ Mail in WeChat
    r"|(?:[\w-]+\.)*(?:163|126|yeah)\.(?:com|net)/" + _URL_CHARS + r"*large-attachment-download"
    r"|fs\.(?:163|126)\.com/fs/display"  # 163's older 网盘 attachments
    r")" + _URL_CHARS + r"*",
    re.IGNORECASE,
)

# Signs that a body holds a big-attachment block even where no link survived (quoting, plain text).
# Only the clients' own wording, not the bare word 超大附件, which our own replies may contain.
_BLOCK_MARKERS = re.compile(r"id=[\"']?QQMailBigAttach|发来的超大附件|large-attachment-download")

NO_LINK_FOUND = "超大附件"


def find_big_attachment_links(html_body: str, text_body: str = "") -> list[str]:
    """Every big-attachment download URL in the bodies, HTML first, without duplicates; the
    literal "超大附件" when a block is recognised but no URL could be read; [] otherwise."""
    links: list[str] = []
    for body in (html_body, text_body):
        for match in _BIG_ATTACHMENT_URL.finditer(body):
            url = html.unescape(match.group(0)).rstrip(".,;:")
            if url not in links:
                links.append(url)
        if links:
            break
    # Bodies often show a shortened copy of a full link as text: keep only the full one.
    links = [url for url in links if not any(other != url and other.startswith(url) for other in links)]
    if not links and (_BLOCK_MARKERS.search(html_body) or _BLOCK_MARKERS.search(text_body)):
        links.append(NO_LINK_FOUND)
    return links
