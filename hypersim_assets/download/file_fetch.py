"""One whole file (a metadata CSV) from a URL or a local path, through a temp file and a
rename, optionally checked against a pinned sha256."""

from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path

from hypersim_assets.download.errors import ChecksumMismatch, RemoteChanged
from hypersim_assets.download.files import COPY_CHUNK, disk_full_or_none, unlink
from hypersim_assets.download.http_client import HttpClient, RetryConfig
from hypersim_assets.download.manifest import PART_SUFFIX
from hypersim_assets.download.sinks import TrackedFile
from hypersim_assets.download.source import Location

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _writer_gone(host: str, pid: str) -> bool:
    """True when the process that named a temp file ``host``/``pid`` no longer runs (only knowable on this host)."""
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def remove_stale_temp_files(dest: Path) -> list[Path]:
    """Remove ``.<dest name>.<host>.<pid>.<random>.part`` files beside ``dest`` whose writer on this host is gone,
    and ``.<dest name>.<random>.part`` files of older versions (no pid in the name); returns what was removed.

    A live writer's temp file (another run fetching the same file now) is left alone.
    """
    removed = []
    prefix = f".{dest.name}."
    for path in dest.parent.glob(f"{prefix}*{PART_SUFFIX}"):
        middle = path.name[len(prefix) : -len(PART_SUFFIX)].split(".")
        legacy = len(middle) == 1  # mkstemp's random part only
        if legacy or (len(middle) == 3 and _writer_gone(middle[0], middle[1])):
            unlink(path)
            removed.append(path)
    return removed


def fetch_file(location: Location, dest: Path, sha256: str | None = None, retry: RetryConfig = RetryConfig()) -> int:
    """Download (or copy, for a local path) one file to ``dest`` via a temp file and rename; returns its bytes.

    With ``sha256`` the content must match, else :class:`ChecksumMismatch` and
    nothing is left at ``dest``. A file that changes on the server mid-download
    is fetched once more from the start.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(dest)
    tmp = dest.with_name(f".{dest.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{PART_SUFFIX}")
    # Not mkstemp: its 0600 would carry over to the finished file; 0666 & ~umask as open() gives.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as raw:
            for attempt in range(2):
                raw.seek(0)
                raw.truncate()
                sink = TrackedFile(raw, sha256=True)
                if not location.is_remote:
                    if location.path is None or not Path(location.path).is_file():
                        raise FileNotFoundError(f"{location}: no such file")
                    with open(location.path, "rb") as src:
                        while chunk := src.read(COPY_CHUNK):
                            sink.write(chunk)
                    break
                with HttpClient(retry) as client:
                    try:
                        client.get_range(location.url, 0, None, sink, etag=None)  # type: ignore[arg-type]
                        break
                    except RemoteChanged:
                        if attempt:
                            raise
            raw.flush()
            os.fsync(raw.fileno())
        actual = sink.sha.hexdigest()  # type: ignore[union-attr] (made with sha256=True)
        if sha256 is not None and actual != sha256.lower():
            raise ChecksumMismatch(dest, str(location), sha256.lower(), actual)
        os.replace(tmp, dest)
        return sink.size
    except OSError as exc:
        unlink(tmp)
        full = disk_full_or_none(exc, dest)
        if full is not None:
            raise full from exc
        raise
    except BaseException:
        unlink(tmp)
        raise
