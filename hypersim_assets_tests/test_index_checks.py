"""The index, view and text-list checks pass on good data and catch each kind of damage."""

from __future__ import annotations

import pyarrow as pa

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_index import INDEX_FILE, build_frame_index, read_frame_index, write_parquet_atomic
from hypersim_assets.catalog.index_checks import (
    INDEX_COLUMNS_FOR_FILES_CHECK,
    INDEX_COLUMNS_FOR_METADATA_CHECK,
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
    read_view,
    read_views,
    select_every_nth_split,
    view_path,
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


def test_checks_and_views_from_their_columns_equal_those_from_the_whole_index(tmp_path):
    """The on-disk checks and write_views read only the index and view columns they use; their
    results equal those computed from the whole index and whole views, passing and failing."""
    root = tmp_path / "dataset"
    present = [("ai_001_001", "cam_01", f) for f in range(12)] + [("ai_002_001", "cam_00", 0)]
    facts = facts_frame(present + [("ai_001_001", "cam_00", 0)])  # converted, but its files are missing
    tables = synthetic_tables(tmp_path)
    table = build_frame_index(tables, facts)
    write_parquet_atomic(table, root / INDEX_FILE)
    write_converted_files(root, [(s, sc, c, f) for sc, c, f, s in _with_split(tables, present)])
    whole = table.to_pandas()

    write_views(root, (3, 5))
    from_disk = {p.name: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != INDEX_FILE}
    write_views(root, (3, 5), index=whole)
    assert {p.name: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != INDEX_FILE} == (
        from_disk
    )

    for damage in (None, "text", "view"):
        if damage == "text":
            (root / "train_every_3th.txt").write_text("ai_001_001/cam_01/0000\n")
        if damage == "view":
            write_parquet_atomic(
                pa.Table.from_pandas(read_view(root, KIND_SPLIT, 5).iloc[[0, 0]], preserve_index=False),
                view_path(root, KIND_SPLIT, 5),
            )
        assert check_views_on_disk(root, (3, 5)) == check_views_subset_of_index(read_views(root, (3, 5)), whole)
        assert check_text_lists_on_disk(root, (3, 5)) == check_text_lists_match_views(
            root, read_split_views(root, (3, 5))
        )
    assert not check_views_on_disk(root, (3, 5))[0] and not check_text_lists_on_disk(root, (3, 5))[0]

    by_columns = read_frame_index(root, columns=list(INDEX_COLUMNS_FOR_FILES_CHECK))
    result = check_converted_files_exist(by_columns, root)
    assert result == check_converted_files_exist(whole, root) and not result[0]
    by_columns = read_frame_index(root, columns=list(INDEX_COLUMNS_FOR_METADATA_CHECK))
    changed = tables.splits.iloc[1:]
    for splits in (tables.splits, changed):
        assert check_index_matches_metadata(by_columns, splits) == check_index_matches_metadata(whole, splits)


def _with_split(tables: md.MetadataTables, frames: list[tuple[str, str, int]]) -> list[tuple[str, str, int, str]]:
    s = tables.splits
    split_of = dict(zip(zip(s["scene_name"], s["camera_name"], s["frame_id"]), s["split_partition_name"]))
    return [(sc, c, f, split_of[(sc, c, f)]) for sc, c, f in frames]
