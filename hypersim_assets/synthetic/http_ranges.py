"""HTTP validators and byte ranges as the mirror server answers them: the strong ETag, the
``If-Range`` test, the single-range ``Range`` parser, and content types by file suffix.
"""

from __future__ import annotations

import email.utils
import os
import re
from pathlib import Path

_CONTENT_TYPES = {".zip": "application/zip", ".csv": "text/csv"}
_SINGLE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def content_type(path: Path) -> str:
    """The ``Content-Type`` for a served file, by suffix."""
    return _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def etag(st: os.stat_result, generation: int) -> str:
    """A strong ETag from the file's size and ``mtime_ns``; ``generation`` > 0 changes it without touching the file."""
    suffix = f"-g{generation}" if generation else ""
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}{suffix}"'


def parse_single_range(header: str, size: int) -> tuple[int, int] | None | str:
    """Parse a ``Range`` header against a file of ``size`` bytes.

    Returns ``(first, last)`` inclusive byte offsets for one satisfiable range,
    ``None`` when the header should be ignored (malformed, not ``bytes``, or
    several ranges) and ``"unsatisfiable"`` for a valid single range outside the file.
    """
    match = _SINGLE_RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last n bytes
        n = int(last_text)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid syntax: ignore the header
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def if_range_matches(value: str, current_etag: str, st: os.stat_result) -> bool:
    """True if an ``If-Range`` value still names the file: the same strong ETag, or its ``Last-Modified`` date."""
    value = value.strip()
    if value.startswith("W/"):
        return False  # weak validators never satisfy If-Range
    if value.startswith('"'):
        return value == current_etag
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return int(when.timestamp()) == int(st.st_mtime)
