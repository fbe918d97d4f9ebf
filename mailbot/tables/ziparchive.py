"""Plain .zip archives: the table files inside, one level deep (SPEC 3.1)."""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import Callable

from mailbot.config import Limits
from mailbot.errors import UnreadableFile
from mailbot.rules.model import TableFile
from mailbot.tables.guards import NOT_A_TABLE_KINDS, ZIP_ERRORS, check_zip_directory, inflate_member, refusal

# Reads one member's bytes given its name; raises UnreadableFile when it holds no table.
MemberReader = Callable[[bytes, str], list[TableFile]]


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as the school saw it.

    Without the UTF-8 flag (bit 11) the name is in the writer's code page: CP936 (GBK) from
    Windows "Send to compressed folder" in China, sometimes UTF-8 from macOS or Linux tools.
    zipfile has decoded it as CP437, which gives back the original bytes exactly.
    """
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def is_skipped(name: str) -> bool:
    """Folders, macOS resource forks and hidden files are not what the school meant to send."""
    parts = name.replace("\\", "/").split("/")
    return name.endswith(("/", "\\")) or "__MACOSX" in parts or parts[-1].startswith(".") or not parts[-1]


def read_archive(data: bytes, filename: str, limits: Limits, read_member: MemberReader) -> list[TableFile]:
    """Every table in the archive's members. When none is readable, the refusal of the first
    unreadable member (naming it inside the archive), or no_table for an archive of other files."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except ZIP_ERRORS as exc:
        raise refusal("corrupt", filename, f"bad zip: {exc}") from exc
    check_zip_directory(zf, limits, filename)
    tables: list[TableFile] = []
    problems: list[tuple[str, UnreadableFile]] = []
    for info in infos:
        name = member_name(info)
        if info.is_dir() or is_skipped(name):
            continue
        shown = posixpath.basename(name.replace("\\", "/"))
        try:
            content = inflate_member(data, zf, info, filename)
            tables.extend(read_member(content, shown))
        except UnreadableFile as problem:
            problems.append((shown, problem))
    if tables:
        return tables
    attempts = [(shown, problem) for shown, problem in problems if problem.kind not in NOT_A_TABLE_KINDS]
    if attempts:  # a table file that could not be read: say why, naming it inside the archive
        shown, problem = attempts[0]
        raise refusal(problem.kind, shown, f"in {filename}: {problem.detail}", archive=filename, limits=limits)
    if problems:  # photos, PDFs, other files: say what the archive held instead of a table
        kind = problems[0][1].kind
        raise refusal(kind, filename, f"no table among {len(problems)} files", worded_as="no_table",
                      found=[shown for shown, _ in problems])
    raise refusal("no_table", filename, "the archive holds no files")
