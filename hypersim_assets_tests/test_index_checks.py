"""The index, view and text-list checks pass on good data and catch each kind of damage."""

from __future__ import annotations

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_index import INDEX_FILE, build_frame_index, write_parquet_atomic
from hypersim_assets.catalog.index_checks import (
    check_converted_files_exist,
    check_index_matches_metadata,
    check_text_lists_match_views,
    check_text_lists_on_disk,
    check_views_on_disk,
    check_views_subset_of_index,
)
from hypersim_assets.catalog.subsample_views import (
    KIND_SPLIT,
    read_split_views,
    read_views,
    select_every_nth_split,
    write_views,
)
from hypersim_assets_tests.catalog_fixtures import (
    facts_frame,
    real_metadata_dir,
    synthetic_tables,
    write_converted_files,
)


def test_real_index_matches_metadata():
    tables = md.read_metadata(real_metadata_dir(), camera_parameters=False)
    index = build_frame_index(tables).to_pandas()
    ok, details = check_index_matches_metadata(index, tables.splits)
    assert ok, details
    assert details["index_rows"] == 82_900


def test_index_vs_metadata_catches_missing_duplicate_and_changed_rows(tmp_path):
    tables = synthetic_tables(tmp_path)
    index = build_frame_index(tables).to_pandas()
    assert check_index_matches_metadata(index, tables.splits)[0]
    ok, details = check_index_matches_metadata(index.iloc[1:], tables.splits)
    assert not ok and details["missing_frames"] == 1
    ok, details = check_index_matches_metadata(index.iloc[[0] + list(range(len(index)))], tables.splits)
    assert not ok and details["duplicate_rows"] == 1
    changed = index.copy()
    changed["split"] = changed["split"].astype(object)
    changed.loc[changed["stem"] == "ai_002_002/cam_00/0000", "split"] = "train"
    ok, details = check_index_matches_metadata(changed, tables.splits)
    assert not ok and details["examples"]["differing"] == ["ai_002_002/cam_00/0000"]


def test_converted_files_exist(tmp_path):
    root = tmp_path / "dataset"
    frames = [("ai_001_001", "cam_01", 0), ("ai_001_001", "cam_01", 1)]
    index = build_frame_index(synthetic_tables(tmp_path), facts_frame(frames)).to_pandas()
    ok, details = check_converted_files_exist(index, root)
    assert not ok and details["missing_files"] == 2 * 11 - 2  # intrinsics shared by the trajectory
    write_converted_files(root, [("train", *f) for f in frames])
    ok, details = check_converted_files_exist(index, root)
    assert ok and details == {"converted_frames": 2, "missing_files": 0, "examples": []}
    (root / "train/instance/ai_001_001/cam_01/0001.png").unlink()
    ok, details = check_converted_files_exist(index, root)
    assert not ok and details["examples"] == ["train/instance/ai_001_001/cam_01/0001.png"]


def test_views_subset_and_text_lists(tmp_path):
    root = tmp_path / "dataset"
    frames = [("ai_001_001", "cam_01", f) for f in range(12)]
    table = build_frame_index(synthetic_tables(tmp_path), facts_frame(frames))
    write_parquet_atomic(table, root / INDEX_FILE)
    write_converted_files(root, [("train", *f) for f in frames])
    index = table.to_pandas()
    write_views(root, (3,))
    assert check_views_on_disk(root, (3,))[0] and check_text_lists_on_disk(root, (3,))[0]

    views = read_views(root, (3,))
    assert check_views_subset_of_index(views, index)[0]
    # a blacklisted frame smuggled into a view is caught
    bad = {"x": select_every_nth_split(index[index["scene"] == "ai_013_001"].assign(blacklisted=False), 1)}
    ok, details = check_views_subset_of_index(bad, index)
    assert not ok and details["x"]["not_in_index"] == 6

    split_views = read_split_views(root, (3,))
    assert check_text_lists_match_views(root, split_views)[0]
    (root / "train_every_3th.txt").write_text("ai_001_001/cam_01/0000\n")
    ok, details = check_text_lists_match_views(root, split_views)
    assert not ok and details["train_every_3th.txt"]["matches"] is False
    (root / "valid.txt").unlink()
    ok, details = check_text_lists_match_views(root, split_views)
    assert details["valid.txt"]["error"] == "file missing"
    (root / "views" / "every_nth_split_N3.parquet").unlink()
    for check in (check_views_on_disk, check_text_lists_on_disk):
        ok, details = check(root, (3,))
        assert not ok and "every_nth_split_N3.parquet" in details["error"]
    assert KIND_SPLIT in next(iter(views))
