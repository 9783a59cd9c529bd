"""Reading a zip's table of contents and single members without downloading the
whole archive: End of Central Directory (plain and ZIP64), central directory
entries (with ZIP64 extra fields) and local headers, over any *byte range
reader* (a file on disk or a URL answered with HTTP Range requests).

Offsets and sizes are bytes; ``header_offset`` is where a member's local header
starts in the archive (already corrected for data prepended to the archive).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hypersim_assets.download.errors import RemoteChanged, ZipFormatError
from hypersim_assets.download.http_client import HttpClient, Sink
from hypersim_assets.download.sinks import MemorySink

STORED = 0
DEFLATED = 8
SUPPORTED_COMPRESSION = {STORED: "stored", DEFLATED: "deflate"}

_EOCD_SIG = b"PK\x05\x06"
_EOCD = struct.Struct("<4s4H2LH")  # sig, disk, cd disk, entries here, entries, cd size, cd offset, comment len
_Z64_LOCATOR_SIG = b"PK\x06\x07"
_Z64_LOCATOR = struct.Struct("<4sLQL")  # sig, disk of record, record offset, disks
_Z64_EOCD_SIG = b"PK\x06\x06"
_Z64_EOCD = struct.Struct(
    "<4sQ2H2L4Q"
)  # sig, record size, made by, needed, disk, cd disk, entries here, entries, cd size, cd offset
_CD_SIG = b"PK\x01\x02"
_CD = struct.Struct("<4s6H3L5H2L")
_LOCAL_SIG = b"PK\x03\x04"
_LOCAL = struct.Struct("<4s5H3L2H")
LOCAL_HEADER_FIXED = _LOCAL.size  # 30 bytes before the name and extra field
_MAX_COMMENT = 0xFFFF
# Enough tail for the longest comment, the EOCD and a ZIP64 locator, with room for a small central directory.
DEFAULT_TAIL_BYTES = 64 * 1024 + _EOCD.size + _Z64_LOCATOR.size
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_UNIX = 3  # ``version made by`` high byte of an archive written on Unix


class ByteRangeReader(Protocol):
    """Random access to an archive's bytes: a local file or a remote URL."""

    name: str  # for messages: the path or URL
    size: int  # bytes
    etag: str | None  # identity of this version of the file

    def read_range(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes starting at ``offset`` (raises if the file is shorter)."""
        ...

    def copy_range(self, offset: int, length: int, sink: Sink) -> None:
        """Stream ``length`` bytes from ``offset`` into ``sink`` without holding them in memory."""
        ...


class FileRangeReader:
    """A local archive. Its ETag is made from size and mtime, so a replaced file is noticed."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        st = self.path.stat()
        self.size = st.st_size
        self.etag: str | None = f"{st.st_size:x}-{st.st_mtime_ns:x}"
        self.bytes_read = 0  # what a download from this file "transferred"

    def _check(self) -> None:
        st = self.path.stat()
        now = f"{st.st_size:x}-{st.st_mtime_ns:x}"
        if now != self.etag:
            raise RemoteChanged(self.name, self.etag, now)

    def read_range(self, offset: int, length: int) -> bytes:
        buf = MemorySink()
        self.copy_range(offset, length, buf)
        return buf.getvalue()

    def copy_range(self, offset: int, length: int, sink: Sink) -> None:
        self._check()
        if offset < 0 or offset + length > self.size:
            raise ZipFormatError(
                f"{self.name}: bytes {offset}..{offset + length} lie outside the {self.size}-byte file"
            )
        with open(self.path, "rb") as f:
            f.seek(offset)
            left = length
            while left:
                chunk = f.read(min(1 << 20, left))
                if not chunk:
                    raise ZipFormatError(f"{self.name}: file ended at {offset + length - left} while reading")
                sink.write(chunk)
                self.bytes_read += len(chunk)
                left -= len(chunk)


class HttpRangeReader:
    """A remote archive read with HTTP Range requests through ``client``.

    Opening issues one suffix-range GET for the last ``tail_bytes`` bytes, which
    yields the size and ETag too; reads inside that tail are served from memory.
    Every later request carries ``If-Range`` with the ETag, so a changed file
    raises :class:`RemoteChanged` instead of mixing versions.
    """

    def __init__(self, client: HttpClient, url: str, tail_bytes: int = DEFAULT_TAIL_BYTES) -> None:
        self.client = client
        self.name = url
        self.url = url
        self._tail, info = client.get_tail(url, tail_bytes)
        if info.size is None:
            raise ZipFormatError(f"{url}: the server did not say how large the file is")
        self.size = info.size
        self.etag = info.etag
        self._tail_start = self.size - len(self._tail)

    def read_range(self, offset: int, length: int) -> bytes:
        if offset >= self._tail_start and offset + length <= self.size:
            rel = offset - self._tail_start
            return self._tail[rel : rel + length]
        buf = MemorySink()
        self.copy_range(offset, length, buf)
        data = buf.getvalue()
        if len(data) != length:
            raise ZipFormatError(f"{self.url}: asked for {length} bytes at {offset}, got {len(data)}")
        return data

    def copy_range(self, offset: int, length: int, sink: Sink) -> None:
        if offset < 0 or offset + length > self.size:
            raise ZipFormatError(f"{self.url}: bytes {offset}..{offset + length} lie outside the {self.size}-byte file")
        remote = min(length, max(0, self._tail_start - offset))
        if remote:
            self.client.get_range(self.url, offset, remote, sink, etag=self.etag)
        if remote < length:  # the rest is in the tail we already hold
            rel = offset + remote - self._tail_start
            sink.write(self._tail[rel : rel + length - remote])


@dataclass(frozen=True)
class ZipMember:
    """One central directory entry. Sizes in bytes; ``crc32`` of the uncompressed data."""

    name: str
    header_offset: int
    compressed_size: int
    file_size: int
    compress_type: int  # 0 stored, 8 deflate
    crc32: int
    flag_bits: int
    external_attr: int = 0  # high 16 bits: the Unix mode when ``create_system`` is 3
    create_system: int = 0  # 0 MS-DOS, 3 Unix, ...

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def is_symlink(self) -> bool:
        """True for a Unix symlink entry (its data would be the link target)."""
        return self.create_system == _UNIX and stat.S_ISLNK(self.external_attr >> 16)

    def check_supported(self, archive: str) -> None:
        """Raise :class:`ZipFormatError` if we cannot extract this member."""
        if self.compress_type not in SUPPORTED_COMPRESSION:
            raise ZipFormatError(
                f"{archive}: member {self.name} uses compression method {self.compress_type}; "
                "only 0 (stored) and 8 (deflate) are supported"
            )
        if self.flag_bits & _FLAG_ENCRYPTED:
            raise ZipFormatError(f"{archive}: member {self.name} is encrypted")


@dataclass(frozen=True)
class CentralDirectory:
    """An archive's table of contents, and the archive version it was read from."""

    archive: str  # path or URL, for messages
    size: int  # archive bytes
    etag: str | None
    members: tuple[ZipMember, ...]
    cd_offset: int
    cd_size: int
    zip64: bool

    def by_name(self) -> dict[str, ZipMember]:
        return {m.name: m for m in self.members}


def _tail(reader: ByteRangeReader, want: int) -> tuple[int, bytes]:
    start = max(0, reader.size - want)
    return start, reader.read_range(start, reader.size - start)


def _find_eocd(archive: str, tail: bytes, tail_start: int, size: int) -> int:
    """Index in ``tail`` of the EOCD record whose comment runs exactly to the end of the file."""
    pos = len(tail)
    while True:
        pos = tail.rfind(_EOCD_SIG, 0, pos)
        if pos < 0:
            raise ZipFormatError(
                f"{archive}: no End of Central Directory record in the last {len(tail)} bytes; not a zip file?"
            )
        if pos + _EOCD.size <= len(tail):
            comment_len = _EOCD.unpack_from(tail, pos)[-1]
            if tail_start + pos + _EOCD.size + comment_len == size:
                return pos
        if pos == 0:
            raise ZipFormatError(f"{archive}: no consistent End of Central Directory record; not a zip file?")


def read_central_directory(reader: ByteRangeReader, tail_bytes: int = DEFAULT_TAIL_BYTES) -> CentralDirectory:
    """Parse the EOCD (and ZIP64 EOCD) and every central directory entry.

    Costs one read of the tail plus, when the central directory does not fit in
    the tail, one read of the missing part (over HTTP the tail read is usually
    already cached by :class:`HttpRangeReader`).
    """
    archive = reader.name
    if reader.size < _EOCD.size:
        raise ZipFormatError(f"{archive}: {reader.size} bytes is too small for a zip file")
    longest_end = _EOCD.size + _MAX_COMMENT + _Z64_LOCATOR.size
    tail_start, tail = _tail(reader, min(reader.size, max(tail_bytes, _EOCD.size + _Z64_LOCATOR.size)))
    try:
        pos = _find_eocd(archive, tail, tail_start, reader.size)
    except ZipFormatError:
        if len(tail) >= min(reader.size, longest_end):
            raise
        # A long archive comment: look again over the longest possible end.
        tail_start, tail = _tail(reader, min(reader.size, longest_end))
        pos = _find_eocd(archive, tail, tail_start, reader.size)
    _, disk, cd_disk, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
    eocd_at = tail_start + pos
    zip64 = False
    z64_record_at = None
    if pos >= _Z64_LOCATOR.size and tail[pos - _Z64_LOCATOR.size : pos - _Z64_LOCATOR.size + 4] == _Z64_LOCATOR_SIG:
        _, _, record_at, disks = _Z64_LOCATOR.unpack_from(tail, pos - _Z64_LOCATOR.size)
        if disks > 1:
            raise ZipFormatError(f"{archive}: multi-disk zip archives are not supported")
        raw = reader.read_range(record_at, _Z64_EOCD.size)
        if raw[:4] != _Z64_EOCD_SIG:
            raise ZipFormatError(f"{archive}: ZIP64 locator points at {record_at}, where there is no ZIP64 EOCD record")
        fields = _Z64_EOCD.unpack(raw)
        entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
        zip64 = True
        z64_record_at = record_at
    elif disk or cd_disk:
        raise ZipFormatError(f"{archive}: multi-disk zip archives are not supported")
    # Bytes prepended to the archive (e.g. a self-extractor stub) shift every offset.
    cd_end = z64_record_at if z64_record_at is not None else eocd_at
    shift = cd_end - cd_size - cd_offset
    if shift < 0:
        raise ZipFormatError(f"{archive}: central directory of {cd_size} bytes at {cd_offset} overlaps its end record")
    cd_start = cd_offset + shift
    if cd_start >= tail_start:
        cd = tail[cd_start - tail_start : cd_start - tail_start + cd_size]
    else:
        cd = reader.read_range(cd_start, tail_start - cd_start) + tail[: cd_start + cd_size - tail_start]
    members = tuple(_parse_entries(archive, cd, entries, shift))
    return CentralDirectory(archive, reader.size, reader.etag, members, cd_start, cd_size, zip64)


def _parse_entries(archive: str, cd: bytes, entries: int, shift: int) -> list[ZipMember]:
    out: list[ZipMember] = []
    pos = 0
    for index in range(entries):
        if cd[pos : pos + 4] != _CD_SIG:
            raise ZipFormatError(f"{archive}: central directory entry {index} at +{pos} has a bad signature")
        (
            _,
            made_by,
            _,
            flags,
            method,
            _,
            _,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            disk,
            _,
            external_attr,
            offset,
        ) = _CD.unpack_from(cd, pos)
        pos += _CD.size
        raw_name = cd[pos : pos + name_len]
        extra = cd[pos + name_len : pos + name_len + extra_len]
        pos += name_len + extra_len + comment_len
        if pos > len(cd):
            raise ZipFormatError(f"{archive}: central directory is truncated at entry {index}")
        name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
        usize, csize, offset = _apply_zip64_extra(archive, name, extra, usize, csize, offset, disk)
        out.append(ZipMember(name, offset + shift, csize, usize, method, crc, flags, external_attr, made_by >> 8))
    return out


def _apply_zip64_extra(
    archive: str, name: str, extra: bytes, usize: int, csize: int, offset: int, disk: int
) -> tuple[int, int, int]:
    """Replace 0xFFFFFFFF fields by their 64-bit values from the ZIP64 extra block (id 1), in spec order."""
    needs = [usize == 0xFFFFFFFF, csize == 0xFFFFFFFF, offset == 0xFFFFFFFF, disk == 0xFFFF]
    if not any(needs):
        return usize, csize, offset
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if tag != 1:
            continue
        values = [usize, csize, offset]
        at = 0
        for i in range(3):
            if needs[i]:
                if at + 8 > len(body):
                    raise ZipFormatError(f"{archive}: member {name} has a short ZIP64 extra field")
                values[i] = struct.unpack_from("<Q", body, at)[0]
                at += 8
        return values[0], values[1], values[2]
    raise ZipFormatError(f"{archive}: member {name} needs a ZIP64 extra field but has none")


def parse_local_header(archive: str, member: ZipMember, head: bytes) -> int:
    """Bytes from the local header's start to the member's data (30 + name + extra lengths).

    ``head`` holds at least the first 30 bytes of the local header. The local
    name and extra lengths may differ from the central directory's.
    """
    if len(head) < LOCAL_HEADER_FIXED or head[:4] != _LOCAL_SIG:
        raise ZipFormatError(f"{archive}: no local header for member {member.name} at offset {member.header_offset}")
    fields = _LOCAL.unpack_from(head, 0)
    name_len, extra_len = fields[-2], fields[-1]
    return LOCAL_HEADER_FIXED + name_len + extra_len


def member_data_offset(reader: ByteRangeReader, member: ZipMember) -> int:
    """Archive offset of ``member``'s (compressed) data; one small read of its local header."""
    head = reader.read_range(member.header_offset, min(LOCAL_HEADER_FIXED, reader.size - member.header_offset))
    return member.header_offset + parse_local_header(reader.name, member, head)


def open_reader(client: HttpClient | None, location: str | os.PathLike[str]) -> ByteRangeReader:
    """A reader for a URL (needs ``client``) or a local path."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        if client is None:
            raise ValueError(f"reading {text} needs an HttpClient")
        return HttpRangeReader(client, text)
    return FileRangeReader(Path(text))
