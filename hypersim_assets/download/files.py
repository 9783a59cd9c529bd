"""Small file helpers the download modules share: JSON read and atomic write, fsync,
CRC-32 of a file, and turning a full-disk ``OSError`` into :class:`DiskFull`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from zlib_ng import zlib_ng

from hypersim_assets.common.atomic_files import write_text_atomic
from hypersim_assets.download.errors import DISK_FULL_ERRNOS, DiskFull

COPY_CHUNK = 1 << 20  # bytes per read when copying or hashing a file


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent); -1 if unknown."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return -1


def unlink(*paths: Path) -> None:
    """Remove each path that exists."""
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temp file, fsync, rename; mode 0666 & ~umask)."""
    write_text_atomic(json.dumps(data, indent=1, sort_keys=True), path)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fsync_path(path: Path) -> None:
    """fsync a file or folder by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_crc32(path: Path) -> tuple[int, int]:
    """(CRC-32, size in bytes) of a file."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            crc = zlib_ng.crc32(chunk, crc)  # zlib's CRC-32, about 5 times faster
            size += len(chunk)
    return crc, size


def disk_full_or_none(exc: OSError, path: Path, scene: str | None = None) -> DiskFull | None:
    """:class:`DiskFull` naming ``path`` (and ``scene``) when ``exc`` means the disk is full, else None."""
    if exc.errno in DISK_FULL_ERRNOS:
        return DiskFull(path, free_bytes(path.parent), exc, scene)
    return None
