"""Atomic whole-file writes: finished file or previous file, never a half-written one."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hypersim_assets.common.atomic_files import write_parquet_atomic, write_text_atomic


def test_text_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "train.txt"
    write_text_atomic("a\n", path)
    write_text_atomic("b\nc\n", path)
    assert path.read_bytes() == b"b\nc\n"
    assert os.listdir(path.parent) == ["train.txt"]
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    # the mode open() gives (0666 minus umask), not mkstemp's 0600
    assert os.stat(path).st_mode == os.stat(plain).st_mode


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "index.parquet"
    write_parquet_atomic(pa.table({"a": [1, 2]}), path)
    with pytest.raises(AttributeError):
        write_parquet_atomic("not a table", path)  # type: ignore[arg-type]
    assert pq.read_table(path).column("a").to_pylist() == [1, 2]
    assert os.listdir(tmp_path) == ["index.parquet"]
