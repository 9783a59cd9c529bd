"""creation_meta.json: one record appended per call, in the reference's shape."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from hypersim_assets.catalog.provenance import (
    CREATION_META_FILE,
    append_creation_meta,
    converted_with,
    creation_record,
    read_creation_meta,
)

REFERENCE_KEYS = {"executable", "command", "timestamp", "local_time", "user", "version", "additional_meta"}


def test_appends_records_with_reference_keys(tmp_path):
    when = datetime(2026, 11, 23, 12, 0, 5, tzinfo=timezone.utc)
    first = append_creation_meta(
        tmp_path,
        package_version="0.1.0",
        source="file:///mirror",
        settings={"subsamples": [1, 10], "tilt_shift": True},
        now=when,
    )
    append_creation_meta(tmp_path, package_version="0.1.1", source="upstream", settings={"subsamples": [1, 5]})
    records = json.loads((tmp_path / CREATION_META_FILE).read_text())
    assert isinstance(records, list) and len(records) == 2
    assert records[0] == first
    assert REFERENCE_KEYS <= set(records[0])
    assert records[0]["timestamp"] == int(when.timestamp()) and isinstance(records[0]["timestamp"], int)
    assert records[0]["utc_time"] == "2026-11-23T12:00:05+00:00"
    datetime.strptime(records[0]["local_time"], "%Y-%m-%d %H:%M:%S")
    meta = records[0]["additional_meta"]
    assert meta["additional_subsamples"] == [10] and meta["apply_tilt_shift_conversion"] is True
    assert meta["source"] == "file:///mirror" and meta["settings"]["subsamples"] == [1, 10]
    assert records[1]["version"] == "0.1.1" and "apply_tilt_shift_conversion" not in records[1]["additional_meta"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_refuses_to_append_to_a_broken_file(tmp_path):
    (tmp_path / CREATION_META_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="creation_meta.json is not valid JSON"):
        append_creation_meta(tmp_path, package_version="0.1.0", source="upstream", settings={})
    assert (tmp_path / CREATION_META_FILE).read_text() == "{not json"


def test_legacy_single_record_is_kept(tmp_path):
    (tmp_path / CREATION_META_FILE).write_text(json.dumps({"version": "0.5.0", "additional_meta": None}))
    append_creation_meta(tmp_path, package_version="0.1.0", source="upstream", settings={})
    records = read_creation_meta(tmp_path)
    assert [r["version"] for r in records] == ["0.5.0", "0.1.0"]


def _index(rows: list[tuple[str, object, object]]) -> pd.DataFrame:
    """A frame index's status and setting columns, typed as read from the Parquet file."""
    frame = pd.DataFrame(rows, columns=["status", "tilt_shift", "png_compression"])
    return frame.astype({"status": "category", "tilt_shift": "boolean", "png_compression": "category"})


def test_converted_with_reads_the_settings_of_converted_frames_only():
    one = _index([("converted", True, "fast"), ("converted", True, "fast"), ("failed", False, "small")])
    assert converted_with(one) == {"tilt_shift": True, "png_compression": "fast"}
    assert type(converted_with(one)["tilt_shift"]) is bool  # JSON-serialisable, not numpy's bool
    mixed = _index([("converted", True, "fast"), ("converted", False, "default"), ("pending", None, None)])
    assert converted_with(mixed) == {"tilt_shift": [False, True], "png_compression": ["default", "fast"]}
    # Facts written before frames recorded their settings: nothing to say, so nothing is said.
    assert converted_with(_index([("converted", None, None)])) == {}
    assert converted_with(_index([("input_missing", None, None)])) == {}


def test_mixed_tilt_shift_is_not_reported_as_the_reference_flag():
    record = creation_record("0.1.0", "upstream", {"tilt_shift": [False, True]})
    assert record["settings"]["tilt_shift"] == [False, True]
    assert "apply_tilt_shift_conversion" not in record["additional_meta"]
    assert (
        creation_record("0.1.0", "upstream", {"tilt_shift": False})["additional_meta"]["apply_tilt_shift_conversion"]
        is False
    )
