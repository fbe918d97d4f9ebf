"""A minimal OLE2 compound-file writer, for building .xls test files without a binary blob.

Small streams go into the mini stream (as Excel stores a 2 KB workbook), so the tests exercise the
same chains real files have; `cycle_mini_chain` then damages one the way a corrupt file in the wild
was damaged (a mini-sector chain that points back at itself).
"""

from __future__ import annotations

import struct

SECTOR, MINI_SECTOR, CUTOFF = 512, 64, 4096
FREE, END, FAT_SECTOR = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NO_STREAM = 0xFFFFFFFF


def _entry(name: str, kind: int, start: int, size: int, child: int = NO_STREAM, right: int = NO_STREAM) -> bytes:
    encoded = (name.encode("utf-16-le") + b"\x00\x00") if name else b""
    entry = bytearray(128)
    entry[:len(encoded)] = encoded
    struct.pack_into("<HBB", entry, 64, len(encoded), kind, 1)
    struct.pack_into("<III", entry, 68, NO_STREAM, right, child)
    struct.pack_into("<IQ", entry, 116, start, size)
    return bytes(entry)


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A version-3 compound file whose root holds `streams` (each under 4096 bytes)."""
    assert streams and all(len(data) < CUTOFF for data in streams.values()) and len(streams) <= 3
    mini = b""
    mini_fat: list[int] = []
    entries = []
    names = list(streams)
    for index, name in enumerate(names):
        data = streams[name]
        first = len(mini) // MINI_SECTOR
        count = max(1, -(-len(data) // MINI_SECTOR))
        mini += data.ljust(count * MINI_SECTOR, b"\x00")
        mini_fat += [first + i + 1 for i in range(count - 1)] + [END]
        entries.append((name, first, len(data), index + 2 if index + 1 < len(names) else NO_STREAM))
    container_sectors = -(-len(mini) // SECTOR)
    # Sectors: 0 FAT, 1 directory, 2 mini FAT, 3.. the mini stream container.
    fat = [FAT_SECTOR, END, END] + [4 + i for i in range(container_sectors - 1)] + [END]
    directory = _entry("Root Entry", 5, 3, len(mini), child=1)
    for name, first, size, right in entries:
        directory += _entry(name, 2, first, size, right=right)
    directory = directory.ljust(SECTOR, b"\x00")
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, CUTOFF, 2, 1, END, 0)
    struct.pack_into("<109I", header, 76, 0, *([FREE] * 108))
    sectors = [
        struct.pack(f"<{SECTOR // 4}I", *(fat + [FREE] * (SECTOR // 4 - len(fat)))),
        directory,
        struct.pack(f"<{SECTOR // 4}I", *(mini_fat + [FREE] * (SECTOR // 4 - len(mini_fat)))),
        mini.ljust(container_sectors * SECTOR, b"\x00"),
    ]
    return bytes(header) + b"".join(sectors)


def cycle_mini_chain(data: bytes) -> bytes:
    """The same file with the first stream's mini-sector chain looping back to its start."""
    buffer = bytearray(data)
    mini_fat_offset = 512 + 2 * SECTOR
    entries = list(struct.unpack_from(f"<{SECTOR // 4}I", buffer, mini_fat_offset))
    last = entries.index(END)
    struct.pack_into("<I", buffer, mini_fat_offset + 4 * last, 0)
    return bytes(buffer)
