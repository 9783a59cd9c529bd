"""Whole-file writes that never leave a half-written file where a finished one is
expected: write a temp file in the same folder, optionally fsync it, ``os.replace`` it into
place. The one atomic-write helper of the project; every whole-file writer goes through
:func:`atomic_path`.

Temp names are ``.<name>.<pid>.<random>.tmp`` so that a cleaner can tell a live writer's
temp file from one left by a dead process (:func:`temp_writer_gone`, used by ``convert.scene_conversion``). Files are created
``0666 & ~umask`` as ``open()`` would (not ``mkstemp``'s 0600), so group-shared roots work.
Streamed downloads are different: their ``.part`` files are kept to resume from and are
renamed only after size and CRC-32 verification (``download.member_fetch``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hypersim_assets.common.file_lock import pid_alive


def temp_name(path: Path) -> Path:
    """A fresh temp path beside ``path``: ``.<name>.<pid>.<random>.tmp``."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def temp_writer_pid(name: str) -> int | None:
    """The writer's pid in a temp file name made by :func:`temp_name`, else None."""
    parts = name.split(".")
    if len(parts) >= 5 and parts[-3].isdigit():
        return int(parts[-3])
    return None


def temp_writer_gone(name: str) -> bool:
    """True when the process that wrote temp file ``name`` no longer runs on this host (not this process)."""
    pid = temp_writer_pid(name)
    # A name without a pid was written by an older version: its writer is long gone.
    return pid is None or (pid != os.getpid() and not pid_alive(pid))


@contextlib.contextmanager
def atomic_path(path: Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (already created, empty) for the body to write; on
    success it replaces ``path``, on any exception it is removed and ``path`` is untouched.

    ``fsync`` flushes the temp file before the rename, so the file also survives a power
    cut, not only a crashed process. Parent folders are created as needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(data: bytes, path: Path, fsync: bool = True) -> int:
    """Write ``data`` to ``path`` atomically; returns the number of bytes written."""
    with atomic_path(path, fsync) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return len(data)


def write_text_atomic(text: str, path: Path) -> int:
    """Write ``text`` as UTF-8 with ``\\n`` line ends to ``path`` atomically; returns the byte count."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_json_atomic(data: object, path: Path) -> int:
    """Write ``data`` as indented, key-sorted JSON to ``path`` atomically; returns the byte count."""
    return write_text_atomic(json.dumps(data, indent=1, sort_keys=True), path)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write ``table`` as Parquet (zstd) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)
