"""The dataset's provenance file, ``<dataset>/creation_meta.json``: a JSON list
with one record appended per call, readable by the reference's loader.

Each record keeps the reference's keys (``executable``, ``command``, ``timestamp``
(Unix seconds, int), ``local_time`` (``%Y-%m-%d %H:%M:%S``), ``user``, ``version``,
``additional_meta``) and adds ``generator``, ``package_version``, ``source``,
``settings`` and ``utc_time`` (ISO 8601). ``version`` holds our package version: the
reference's loader only normalises it as a string. ``additional_meta`` (which the
reference's loaders merge and read keys from) holds our source and settings plus,
where the settings say so, the reference's own keys ``additional_subsamples`` and
``apply_tilt_shift_conversion``.

Nothing secret is written: passwords in URLs (``scheme://user:secret@host``) anywhere in the
source or settings become ``***``, and ``command`` is the program's name only, not its
arguments (which may carry a source URL with credentials).
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from hypersim_assets.common.atomic_files import write_text_atomic
from hypersim_assets.common.frame_facts import STATUS_CONVERTED

CREATION_META_FILE = "creation_meta.json"
GENERATOR = "hypersim-assets"
# "scheme://user:" then the password up to the "@" that ends the user info.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")


def redact(value: Any) -> Any:
    """``value`` with every URL password in its strings (also inside lists and dicts) replaced by ``***``."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<head>:***@", value)
    if isinstance(value, Mapping):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return str(os.getuid())


def creation_record(
    package_version: str, source: str, settings: Mapping[str, Any], now: datetime | None = None
) -> dict:
    """One provenance record (see the module docstring); ``now`` defaults to the current time."""
    now = now or datetime.now(timezone.utc)
    settings = redact(dict(settings))
    source = redact(source)
    additional: dict[str, Any] = {"generator": GENERATOR, "source": source, "settings": settings}
    if "subsamples" in settings:
        additional["additional_subsamples"] = [int(n) for n in settings["subsamples"] if int(n) != 1]
    if isinstance(settings.get("tilt_shift"), bool):  # a list: frames converted both ways (see converted_with)
        additional["apply_tilt_shift_conversion"] = settings["tilt_shift"]
    return {
        "executable": sys.executable,
        "command": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "",
        "timestamp": int(now.timestamp()),
        "local_time": now.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        "user": _user(),
        "version": str(package_version),
        "additional_meta": additional,
        "generator": GENERATOR,
        "package_version": str(package_version),
        "source": source,
        "settings": settings,
        "utc_time": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
    }


CONVERSION_SETTING_COLUMNS: tuple[str, ...] = ("tilt_shift", "png_compression")


def converted_with(index: pd.DataFrame) -> dict[str, Any]:
    """The settings the dataset's converted frames were written with, from the frame index's
    ``status`` and CONVERSION_SETTING_COLUMNS: per setting its one value, or the sorted list of
    its values when frames differ. A setting no converted frame records (facts written before
    frames recorded their settings) is left out, as is every setting when none is converted.
    """
    converted = index[index["status"].astype(object) == STATUS_CONVERTED]
    out: dict[str, Any] = {}
    for column in CONVERSION_SETTING_COLUMNS:
        values = sorted({_plain(v) for v in converted[column].dropna().astype(object)})
        if values:
            out[column] = values[0] if len(values) == 1 else values
    return out


def _plain(value: Any) -> Any:
    """A numpy or pandas scalar as the JSON-serialisable Python value."""
    return value.item() if hasattr(value, "item") else value


def read_creation_meta(dataset_root: Path) -> list[dict]:
    """The records so far (empty if the file is absent). A legacy single record is returned as a list of one.

    Raises ValueError naming the file if it is not JSON or not a list/object.
    """
    path = Path(dataset_root) / CREATION_META_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); not appending to it") from exc
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a list of records; not appending to it")
    return data


def append_creation_meta(
    dataset_root: Path, *, package_version: str, source: str, settings: Mapping[str, Any], now: datetime | None = None
) -> dict:
    """Append one record to ``<dataset>/creation_meta.json`` (created if absent); returns the record.

    The file is rewritten atomically under an exclusive lock, so concurrent callers
    never lose each other's records. ``settings`` must be JSON-serialisable.
    """
    dataset_root = Path(dataset_root)
    dataset_root.mkdir(parents=True, exist_ok=True)
    record = creation_record(package_version, source, settings, now)
    lock_path = dataset_root / f".{CREATION_META_FILE}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            records = read_creation_meta(dataset_root)
            records.append(record)
            write_text_atomic(json.dumps(records, indent=4) + "\n", dataset_root / CREATION_META_FILE)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return record
