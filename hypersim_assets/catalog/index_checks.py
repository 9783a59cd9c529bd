"""Checks of the frame index, the subsample views and the text lists, as plain
functions: each returns ``(passed, details)`` with JSON-serialisable details,
for asset checks and tests alike. They read files but write nothing; the
``*_on_disk`` ones read the views and lists back as a later reader would."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hypersim_assets.catalog.frame_files import missing_frame_files
from hypersim_assets.catalog.frame_index import PATH_COLUMNS, read_frame_index
from hypersim_assets.catalog.subsample_views import (
    ELIGIBILITY_COLUMNS,
    SPLITS,
    eligible_frames,
    read_split_views,
    read_views,
    text_list_name,
)
from hypersim_assets.common.frame_facts import STATUS_CONVERTED
from hypersim_assets.common.layout import SPLIT_DIR_NAMES

_EXAMPLES = 20  # how many offending items a details dict lists

# The columns each check reads: the index has about 60, and a check that reads them all
# spends most of its time turning unused ones into pandas.
_KEY_COLUMNS: tuple[str, ...] = ("scene", "camera", "frame_id")
INDEX_COLUMNS_FOR_METADATA_CHECK: tuple[str, ...] = _KEY_COLUMNS + ("included_in_public_release", "split")
INDEX_COLUMNS_FOR_FILES_CHECK: tuple[str, ...] = ("status", *PATH_COLUMNS.values())
_INDEX_COLUMNS_FOR_VIEWS_CHECK: tuple[str, ...] = tuple(dict.fromkeys(_KEY_COLUMNS + ELIGIBILITY_COLUMNS))
_VIEW_COLUMNS_FOR_VIEWS_CHECK: tuple[str, ...] = _KEY_COLUMNS + ("split",)
_VIEW_COLUMNS_FOR_TEXT_CHECK: tuple[str, ...] = ("split", "present", "stem")


def _keys(df: pd.DataFrame, scene: str, camera: str) -> np.ndarray:
    """``<scene>/<cam>/<NNNN>`` per row, as a numpy object array (fast to hash)."""
    frame = df["frame_id"].astype(int).astype(str).str.zfill(4)
    return (df[scene].astype(str) + "/" + df[camera].astype(str) + "/" + frame).to_numpy(dtype=object)


def check_index_matches_metadata(index: pd.DataFrame, splits: pd.DataFrame) -> tuple[bool, dict]:
    """The index has exactly one row per metadata frame, with the metadata's inclusion flag and split."""
    details: dict = {"index_rows": len(index), "metadata_rows": len(splits)}
    idx = pd.DataFrame(
        {
            "key": _keys(index, "scene", "camera"),
            "included": index["included_in_public_release"].to_numpy(dtype=bool),
            "split": index["split"].astype(object).to_numpy(),
        }
    )
    meta = pd.DataFrame(
        {
            "key": _keys(splits, "scene_name", "camera_name"),
            "included": splits["included_in_public_release"].to_numpy(dtype=bool),
            "split": splits["split_partition_name"].map(SPLIT_DIR_NAMES).astype(object).to_numpy(),
        }
    )
    meta.loc[~meta["included"], "split"] = None
    duplicates = idx.loc[idx["key"].duplicated(), "key"]
    index_keys, meta_keys = set(idx["key"].to_numpy(dtype=object)), set(meta["key"].to_numpy(dtype=object))
    missing = sorted(meta_keys - index_keys)
    extra = sorted(index_keys - meta_keys)
    both = idx.drop_duplicates("key").merge(meta, on="key", suffixes=("_index", "_metadata"))
    differ = both[
        (both["included_index"] != both["included_metadata"])
        | (both["split_index"].fillna("") != both["split_metadata"].fillna(""))
    ]
    details.update(
        {
            "duplicate_rows": int(len(duplicates)),
            "missing_frames": len(missing),
            "extra_frames": len(extra),
            "differing_frames": int(len(differ)),
            "examples": {
                "duplicate": duplicates.head(_EXAMPLES).tolist(),
                "missing": missing[:_EXAMPLES],
                "extra": extra[:_EXAMPLES],
                "differing": differ["key"].head(_EXAMPLES).tolist(),
            },
        }
    )
    passed = len(index) == len(splits) and not len(duplicates) and not missing and not extra and not len(differ)
    return passed, details


def check_converted_files_exist(index: pd.DataFrame, dataset_root: Path) -> tuple[bool, dict]:
    """Every file of every ``converted`` row (all ``path_*`` columns) exists under the dataset folder."""
    converted = index["status"].astype(object).to_numpy() == STATUS_CONVERTED
    missing = missing_frame_files(index, Path(dataset_root), rows=converted)
    details = {"converted_frames": int(converted.sum()), "missing_files": len(missing), "examples": missing[:_EXAMPLES]}
    return not missing, details


def check_views_subset_of_index(views: Mapping[str, pd.DataFrame], index: pd.DataFrame) -> tuple[bool, dict]:
    """Every view row is an eligible index frame (included, not blacklisted) with the same split, listed once."""
    eligible = eligible_frames(index)
    allowed = set(zip(_keys(eligible, "scene", "camera"), eligible["split"].astype(object).to_numpy()))
    details: dict = {}
    passed = True
    for name, view in views.items():
        pairs = list(zip(_keys(view, "scene", "camera"), view["split"].astype(object).to_numpy()))
        outside = [f"{split}:{key}" for key, split in pairs if (key, split) not in allowed]
        repeated = len(pairs) - len(set(pairs))
        details[name] = {
            "rows": len(view),
            "not_in_index": len(outside),
            "repeated": repeated,
            "examples": outside[:_EXAMPLES],
        }
        passed &= not outside and not repeated
    return bool(passed), details


def check_text_lists_match_views(dataset_root: Path, split_views: Mapping[int, pd.DataFrame]) -> tuple[bool, dict]:
    """Each text list holds exactly its ``every_nth_split`` view's present rows for that split, in view order,
    one ``<scene>/<cam>/<NNNN>`` per ``\\n``-terminated line."""
    details: dict = {}
    passed = True
    for n, view in split_views.items():
        for split in SPLITS:
            name = text_list_name(split, n)
            expected = view.loc[(view["split"].astype(object) == split) & view["present"].to_numpy(dtype=bool), "stem"]
            expected_text = "".join(f"{s}\n" for s in expected)
            path = Path(dataset_root) / name
            if not path.is_file():
                details[name] = {"expected_lines": len(expected), "error": "file missing"}
                passed = False
                continue
            text = path.read_text(encoding="utf-8")
            ok = text == expected_text
            entry: dict = {"expected_lines": len(expected), "lines": text.count("\n"), "matches": ok}
            if not ok:
                got = text.split("\n")
                want = expected_text.split("\n")
                first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                entry["first_difference_line"] = first + 1
                passed = False
            details[name] = entry
    return bool(passed), details


def present_rows_are_converted(view: pd.DataFrame) -> tuple[bool, dict]:
    """No view row is marked present unless its status is converted."""
    bad = view["present"].to_numpy(dtype=bool) & (view["status"].astype(object).to_numpy() != STATUS_CONVERTED)
    return not bad.any(), {"present_but_not_converted": int(np.count_nonzero(bad))}


def check_views_on_disk(dataset_root: Path, subsamples: Iterable[int]) -> tuple[bool, dict]:
    """:func:`check_views_subset_of_index` on the views and the index as they are on disk.

    A missing view or index fails the check, naming the file.
    """
    try:
        views = read_views(dataset_root, subsamples, columns=list(_VIEW_COLUMNS_FOR_VIEWS_CHECK))
        index = read_frame_index(dataset_root, columns=list(_INDEX_COLUMNS_FOR_VIEWS_CHECK))
    except FileNotFoundError as exc:
        return False, {"error": str(exc)}
    return check_views_subset_of_index(views, index)


def check_text_lists_on_disk(dataset_root: Path, subsamples: Iterable[int]) -> tuple[bool, dict]:
    """:func:`check_text_lists_match_views` against the ``every_nth_split`` views on disk.

    A missing view fails the check, naming the file.
    """
    try:
        split_views = read_split_views(dataset_root, subsamples, columns=list(_VIEW_COLUMNS_FOR_TEXT_CHECK))
    except FileNotFoundError as exc:
        return False, {"error": str(exc)}
    return check_text_lists_match_views(dataset_root, split_views)
