"""One member's resumable fetch: continue its ``.part`` file with a Range request, inflate
and verify it (size and CRC-32) and rename it into place, or tell that a member a previous
run left is still complete.

On disk, per member ``<name>``: ``<name>.part`` holds the member's *compressed* bytes
fetched so far and ``<name>.part.json`` the archive ETag and the member's offsets, sizes
and CRC-32 they belong to; ``<name>`` appears (``os.replace``) only after verification.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from hypersim_assets.download.errors import MemberCorrupt, MemberInflatesPastSize, ZipFormatError
from hypersim_assets.download.files import COPY_CHUNK, disk_full_or_none, file_crc32, read_json, unlink
from hypersim_assets.download.manifest import (
    PART_SUFFIX,
    SIDECAR_SUFFIX,
    Manifest,
    manifest_entry,
    member_path,
)
from hypersim_assets.download.remote_zip import (
    DEFLATED,
    LOCAL_HEADER_FIXED,
    STORED,
    ByteRangeReader,
    CentralDirectory,
    ZipMember,
    parse_local_header,
)
from hypersim_assets.download.sinks import TrackedFile

# Bytes of local-header extra field we expect at most when fetching header and data in one request
# (zip64 and timestamp fields are 20-36 bytes); more costs one extra request for the data's tail.
LOCAL_EXTRA_GUESS = 64


@dataclass
class SceneRun:
    scene: str
    raw_root: Path
    reader: ByteRangeReader
    directory: CentralDirectory
    manifest: Manifest
    abort: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    resumed_members: int = 0
    resumed_bytes: int = 0
    fetched: int = 0


def _sidecar_for(run: SceneRun, member: ZipMember, data_offset: int) -> dict:
    return {
        "archive_etag": run.directory.etag,
        "archive_size": run.directory.size,
        "member": member.name,
        "header_offset": member.header_offset,
        "data_offset": data_offset,
        "compressed_size": member.compressed_size,
        "file_size": member.file_size,
        "crc32": member.crc32,
    }


def resume_point(run: SceneRun, member: ZipMember, part: Path, sidecar: Path) -> tuple[int, int] | None:
    """(data offset, bytes already in ``part``) when ``part`` may be continued; else removes both and returns None."""
    info = read_json(sidecar)
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        have = -1
    if info is not None and have >= 0:
        expected = _sidecar_for(run, member, info.get("data_offset", -1))
        if info == expected and have <= member.compressed_size and run.directory.etag is not None:
            return int(info["data_offset"]), have
    unlink(part, sidecar)
    return None


def _verify_into(
    archive: str, member: ZipMember, part: Path, out: Path, stored_crc: tuple[int, int] | None
) -> str | None:
    """Check size and CRC-32 of a member whose compressed bytes are in ``part``; returns a problem or None.

    Deflated members are inflated into ``out`` on the way, never past the declared size:
    inflation stops at ``file_size + 1`` bytes (that byte is not written), holding at most
    ``COPY_CHUNK`` inflated bytes in memory, and :class:`_InflatesPastSize` is raised.
    For stored members ``stored_crc`` is (CRC-32, size) computed while the bytes arrived, if known.
    """
    crc, size = 0, 0
    if member.compress_type == STORED:
        crc, size = stored_crc if stored_crc is not None else file_crc32(part)
    else:
        decomp = zlib.decompressobj(-15)
        with open(part, "rb") as src, open(out, "wb") as dst:
            try:
                while not decomp.eof:
                    pending = decomp.unconsumed_tail or src.read(COPY_CHUNK)
                    if not pending:
                        break
                    # Ask for at most one byte more than the declared size can still take.
                    data = decomp.decompress(pending, min(COPY_CHUNK, member.file_size - size + 1))
                    if size + len(data) > member.file_size:
                        dst.write(data[: member.file_size - size])
                        raise _InflatesPastSize
                    crc = zlib.crc32(data, crc)
                    size += len(data)
                    dst.write(data)
            except zlib.error as exc:
                return f"deflate stream is broken ({exc})"
            if not decomp.eof:
                return "deflate stream ends early"
    if size != member.file_size:
        return f"{size} bytes, expected {member.file_size}"
    if crc != member.crc32:
        return f"CRC-32 {crc:08x}, expected {member.crc32:08x}"
    return None


class _InflatesPastSize(Exception):
    """Internal: the member's deflate stream produced more than its declared size."""


class HeaderThenData:
    """Sink for one request that starts at a member's local header: parses the header, then
    writes the member's compressed bytes (at most ``compressed_size``) to the ``.part`` file.

    Saves a round trip per member. The local header's extra field may be longer than we
    guessed; then fewer data bytes arrive and the caller fetches the rest.
    """

    def __init__(self, run: SceneRun, member: ZipMember, part: Path, sidecar: Path) -> None:
        self.run, self.member, self.part, self.sidecar = run, member, part, sidecar
        self.head = bytearray()
        self.header_len: int | None = None
        self.pos = 0  # bytes seen, counted from the local header's first byte
        self.raw = None
        self.file: TrackedFile | None = None

    @property
    def complete(self) -> bool:
        """True once the header and all ``compressed_size`` data bytes have arrived."""
        return self.header_len is not None and self.pos >= self.header_len + self.member.compressed_size

    @property
    def data_offset(self) -> int | None:
        return None if self.header_len is None else self.member.header_offset + self.header_len

    def write(self, data: bytes) -> None:
        if self.header_len is None:
            self.head += data
            if len(self.head) < LOCAL_HEADER_FIXED:
                return
            self.header_len = parse_local_header(
                self.run.directory.archive, self.member, bytes(self.head[:LOCAL_HEADER_FIXED])
            )
            # The sidecar first: a .part without a valid one is never continued (so a torn write is harmless).
            self.sidecar.write_text(json.dumps(_sidecar_for(self.run, self.member, self.data_offset)))  # type: ignore[arg-type]
            self.raw = open(self.part, "wb")
            self.file = TrackedFile(self.raw)
            data, self.head = bytes(self.head), bytearray()
        start = max(0, self.header_len - self.pos)
        end = min(len(data), self.header_len + self.member.compressed_size - self.pos)
        if end > start:
            self.file.write(data[start:end])  # type: ignore[union-attr]
        self.pos += len(data)

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()


def local_span_guess(member: ZipMember) -> int:
    """Bytes from ``member``'s local header to the end of its data, guessing the extra field's length."""
    name_len = len(member.name.encode("utf-8" if member.flag_bits & 0x800 else "cp437"))
    return LOCAL_HEADER_FIXED + name_len + LOCAL_EXTRA_GUESS + member.compressed_size


def member_files(run: SceneRun, member: ZipMember) -> tuple[Path, Path, Path]:
    """``(dest, part, sidecar)`` of ``member``; creates the folder they go in."""
    dest = member_path(run.raw_root, run.scene, member.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest, dest.with_name(dest.name + PART_SUFFIX), dest.with_name(dest.name + SIDECAR_SUFFIX)


def fetch_member(run: SceneRun, member: ZipMember, prefetched: HeaderThenData | None = None) -> None:
    """Bring one member into place (resume, fetch, verify, rename); retries once from zero on a bad CRC.

    ``prefetched`` is the sink a coalesced request (:mod:`~hypersim_assets.download.coalesce`) already
    streamed this member's local header and data into; the first attempt then continues from it.
    """
    archive = run.directory.archive
    member.check_supported(archive)
    dest, part, sidecar = member_files(run, member)
    out = dest.with_name(dest.name + ".inflating")
    current = part
    try:
        for attempt in range(2):
            resume = None if attempt == 0 and prefetched is not None else resume_point(run, member, part, sidecar)
            if resume is None:
                if attempt == 0 and prefetched is not None:
                    sink = prefetched
                else:
                    # One request for the local header and (we guess) all of the data after it.
                    sink = HeaderThenData(run, member, part, sidecar)
                    try:
                        run.reader.copy_range(
                            member.header_offset,
                            min(local_span_guess(member), run.reader.size - member.header_offset),
                            sink,
                        )
                    finally:
                        sink.close()
                if sink.data_offset is None:
                    raise ZipFormatError(
                        f"{archive}: member {member.name}: local header cut short at {member.header_offset}"
                    )
                data_offset = sink.data_offset
                crc, have = (sink.file.crc, sink.file.size) if sink.file is not None else (0, 0)
            else:
                data_offset, have = resume
                crc = file_crc32(part)[0] if member.compress_type == STORED else 0
                if have:
                    with run.lock:
                        run.resumed_members += 1
                        run.resumed_bytes += have
            with open(part, "ab") as f:
                tracked = TrackedFile(f, crc, have)
                if have < member.compressed_size:
                    run.reader.copy_range(data_offset + have, member.compressed_size - have, tracked)
            current = out
            stored_crc = (tracked.crc, tracked.size) if member.compress_type == STORED else None
            try:
                problem = _verify_into(archive, member, part, out, stored_crc)
            except _InflatesPastSize:
                # The central directory would tell the same lie on a second fetch: stop here.
                unlink(part, sidecar, out)
                raise MemberInflatesPastSize(run.scene, member.name, archive, member.file_size) from None
            current = part
            if problem is None:
                os.replace(out if member.compress_type == DEFLATED else part, dest)
                unlink(part, sidecar, out)
                run.manifest.record(member.name, manifest_entry(member), dest)
                return
            unlink(part, sidecar, out)
            if attempt == 1:
                raise MemberCorrupt(run.scene, member.name, archive, problem)
    except OSError as exc:
        full = disk_full_or_none(exc, current, run.scene)
        if full is not None:
            unlink(part, sidecar, out)
            raise full from exc
        raise
    except BaseException:
        unlink(out)
        raise


def member_complete(run: SceneRun, member: ZipMember, check_crc: bool) -> bool:
    """True if a previous run left this member verified and in place (re-reading its CRC-32 when ``check_crc``)."""
    dest = member_path(run.raw_root, run.scene, member.name)
    try:
        size = dest.stat().st_size
    except FileNotFoundError:
        run.manifest.forget(member.name)
        return False
    if size != member.file_size:
        return False
    entry = run.manifest.entry(member.name)
    wanted = manifest_entry(member)
    if entry == wanted and not check_crc:
        return True
    # Not recorded (e.g. killed between the rename and the manifest save) or asked to: check the CRC.
    crc, _ = file_crc32(dest)
    if crc == member.crc32:
        if entry != wanted:
            run.manifest.record(member.name, wanted, dest)
        return True
    run.manifest.forget(member.name)
    return False
