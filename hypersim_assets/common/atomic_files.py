"""Whole-file writes that never leave a half-written file where a finished one is
expected: write a temp file in the same folder, fsync it, ``os.replace`` it into place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _write_atomic(path: Path, write: Callable[[str], None], fsync: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would carry over to the finished file; 0666 minus umask as open() gives.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        if fsync:  # also survive a power cut, not only a crashed process
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes_atomic(data: bytes, path: Path, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return _write_atomic(path, write, fsync)


def write_text_atomic(text: str, path: Path) -> Path:
    """Write ``text`` as UTF-8 with ``\\n`` line ends to ``path`` atomically; returns ``path``."""
    return write_bytes_atomic(text.encode("utf-8"), path)


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write ``table`` as Parquet (zstd) to ``path`` atomically; returns ``path``."""
    return _write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
