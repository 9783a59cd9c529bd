"""Which of the frame index's output files are on disk: each folder is listed once (far fewer
system calls than a stat per file), for the views' ``present`` column and the index checks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from hypersim_assets.catalog.frame_index import PATH_COLUMNS


class _DirCache:
    """Names in each directory, listed once: far fewer syscalls than a stat per file."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._names: dict[str, frozenset[str]] = {}

    def has(self, rel: str) -> bool:
        folder, _, name = rel.rpartition("/")
        names = self._names.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(os.path.join(self.root, folder)))
            except (FileNotFoundError, NotADirectoryError):
                names = frozenset()
            self._names[folder] = names
        return name in names


def _path_matrix(index: pd.DataFrame, rows: np.ndarray) -> list[np.ndarray]:
    """Each path column at positions ``rows``; only those rows become Python strings."""
    return [index[col].iloc[rows].to_numpy(dtype=object) for col in PATH_COLUMNS.values()]


def frame_files_present(index: pd.DataFrame, dataset_root: Path, rows: np.ndarray | None = None) -> np.ndarray:
    """Per index row: True if every output file of the frame (all ``path_*`` columns) exists.

    ``rows``: boolean mask of the rows to look at (others are False); default all.
    Rows without paths (excluded frames) are False.
    """
    mask = np.ones(len(index), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    selected = np.flatnonzero(mask)
    present = np.zeros(len(index), dtype=bool)
    cache = _DirCache(Path(dataset_root))
    ok = np.ones(len(selected), dtype=bool)
    for paths in _path_matrix(index, selected):
        ok &= np.fromiter((isinstance(p, str) and cache.has(p) for p in paths), dtype=bool, count=len(paths))
    present[selected] = ok
    return present


def missing_frame_files(index: pd.DataFrame, dataset_root: Path, rows: np.ndarray | None = None) -> list[str]:
    """Relative paths of the selected rows' files that do not exist, each once (a trajectory's
    intrinsics are shared by its frames), in index order and modality order within a frame."""
    mask = np.ones(len(index), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    selected = np.flatnonzero(mask)
    cache = _DirCache(Path(dataset_root))
    columns = _path_matrix(index, selected)
    missing = []
    for r in range(len(selected)):
        for paths in columns:
            p = paths[r]
            if isinstance(p, str) and not cache.has(p):
                missing.append(p)
    return list(dict.fromkeys(missing))


def expected_frame_files(index: pd.DataFrame, rows: np.ndarray | None = None) -> Iterable[str]:
    """Every relative output path of the selected rows (for tests and tools)."""
    mask = np.ones(len(index), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    for paths in _path_matrix(index, np.flatnonzero(mask)):
        yield from (p for p in paths if isinstance(p, str))
