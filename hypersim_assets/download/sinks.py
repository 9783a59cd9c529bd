"""The write sinks a response body streams into: one family, each a ``write(bytes)`` object
that the transport's ``Sink`` protocol accepts.

:class:`MemorySink` keeps the bytes in memory (central-directory reads, small ranges);
:class:`TrackedFile` writes through to a binary file while counting bytes and, as asked,
keeping a running CRC-32 (zip members) and a SHA-256 (pinned metadata files).
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

# zlib-ng's CRC-32 (the same checksum as zlib's) runs about 5 times faster here: 0.02 instead of
# 0.1 core-seconds per 200 MB of members, CPU that a download otherwise takes from the conversion.
from zlib_ng import zlib_ng


class MemorySink:
    """Collects what is written; :meth:`getvalue` returns it as bytes."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def getvalue(self) -> bytes:
        return bytes(self.buffer)


class TrackedFile:
    """Writes through to ``f``, counting bytes in ``size`` and keeping ``crc`` (CRC-32 of all that was
    written, continued from ``crc``/``size`` when a ``.part`` file is resumed) and, with
    ``sha256=True``, a SHA-256 of what this object wrote."""

    def __init__(self, f: BinaryIO, crc: int = 0, size: int = 0, sha256: bool = False) -> None:
        self.f, self.crc, self.size = f, crc, size
        self.sha = hashlib.sha256() if sha256 else None

    def write(self, data: bytes) -> int:
        self.f.write(data)
        self.crc = zlib_ng.crc32(data, self.crc)
        if self.sha is not None:
            self.sha.update(data)
        self.size += len(data)
        return len(data)
