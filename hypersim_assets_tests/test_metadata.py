"""Reading the metadata CSVs into typed frames, and the questions asked of them."""

from __future__ import annotations

import csv
import os
import shutil

import pandas as pd
import pytest

from hypersim_assets.catalog import metadata as md
from hypersim_assets_tests.catalog_fixtures import TRAJECTORIES, real_metadata_dir, write_metadata_csvs

SPLIT = "metadata_images_split_scene_v1.csv"
TRAJECTORIES_FILE = "metadata_camera_trajectories.csv"


def test_real_metadata_counts_and_types():
    tables = md.read_metadata(real_metadata_dir())
    splits = tables.splits
    assert len(splits) == 82_900
    assert int(splits["included_in_public_release"].sum()) == 74_619
    assert splits["frame_id"].dtype == "int16"
    assert splits["included_in_public_release"].dtype == bool
    scenes = md.public_scenes(splits)
    assert len(scenes) == 457 and scenes == sorted(scenes)
    summary = md.metadata_summary(tables)
    assert summary["rows"] == 82_900
    assert summary["scenes"] == 457
    assert summary["trajectories"] == 769
    assert summary["all_trajectories"] == 829
    assert sum(summary["included_frames_per_split"].values()) == 74_619
    assert summary["camera_parameter_scenes"] == 482
    assert md.consistency_problems(tables) == []
    # Metadata order is the file's order, which is sorted by scene, camera, frame.
    keys = list(zip(splits["scene_name"], splits["camera_name"], splits["frame_id"]))
    assert keys == sorted(keys)


def test_real_included_frames_per_split_match_csv_reader():
    folder = real_metadata_dir()
    expected: dict[str, int] = {}
    with open(folder / "metadata_images_split_scene_v1.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["included_in_public_release"] == "True":
                expected[row["split_partition_name"]] = expected.get(row["split_partition_name"], 0) + 1
    summary = md.metadata_summary(md.read_metadata(folder, camera_parameters=False))
    assert summary["included_frames_per_split"] == expected


def test_real_scene_frames_include_class_and_skip_excluded():
    tables = md.read_metadata(real_metadata_dir())
    frames = md.scene_frames(tables, "ai_001_001")
    ids = [f.frame_id for f in frames]
    assert len(frames) == 98  # two frames of ai_001_001/cam_00 are outside the release
    assert all(f.scene_class == "Bathroom" and f.split == "train" and f.split_dir == "train" for f in frames)
    assert ids == sorted(ids)
    row = md.camera_parameters_row(tables, "ai_001_001")
    assert row["settings_output_img_width"] == 1024.0


def test_synthetic_tables(tmp_path):
    tables = md.read_metadata(write_metadata_csvs(tmp_path))
    assert md.public_scenes(tables.splits) == ["ai_001_001", "ai_002_001", "ai_002_002", "ai_003_001", "ai_013_001"]
    frames = md.scene_frames(tables, "ai_002_001")
    assert [f.frame_id for f in frames] == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert {(f.split, f.split_dir, f.scene_class) for f in frames} == {("val", "valid", "Office")}
    summary = md.metadata_summary(tables)
    assert summary["rows"] == sum(t[4] for t in TRAJECTORIES)
    assert summary["included_frames_per_split"] == {"train": 51, "val": 10, "test": 7}
    assert summary["trajectories"] == 7 and summary["all_trajectories"] == 8
    excluded = tables.splits[~tables.splits["included_in_public_release"]]
    assert excluded["split_partition_name"].isna().all()
    assert (excluded["exclude_reason"] == "CONTENT FLAGGED FOR REMOVAL").all()


def test_missing_file_and_column_are_named(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    (folder / "metadata_camera_trajectories.csv").unlink()
    with pytest.raises(md.MetadataError, match="metadata_camera_trajectories.csv does not exist"):
        md.read_metadata(folder)
    split_csv = folder / "metadata_images_split_scene_v1.csv"
    text = split_csv.read_text().replace("split_partition_name", "partition", 1)
    split_csv.write_text(text)
    with pytest.raises(
        md.MetadataError, match=r"metadata_images_split_scene_v1.csv lacks column\(s\) split_partition_name"
    ):
        md.read_split_table(split_csv)


def test_bad_values_name_file_column_and_line(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    split_csv = folder / "metadata_images_split_scene_v1.csv"
    lines = split_csv.read_text().splitlines()
    lines[3] = lines[3].replace(",True,", ",maybe,")
    split_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(md.MetadataError, match=r"included_in_public_release.*line 4: 'maybe'"):
        md.read_split_table(split_csv)
    lines[3] = lines[3].replace(",maybe,", ",True,").replace("ai_001_001", "../etc")
    split_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(md.MetadataError, match=r"scene_name.*line 4: '../etc'"):
        md.read_split_table(split_csv)


def test_consistency_problems_report_trajectory_without_class(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    traj = folder / "metadata_camera_trajectories.csv"
    traj.write_text(
        "\n".join(line for line in traj.read_text().splitlines() if not line.startswith("ai_002_002_cam_00")) + "\n"
    )
    tables = md.read_metadata(folder)
    assert md.consistency_problems(tables) == [
        "ai_002_002/cam_00: included frames but no scene type in metadata_camera_trajectories.csv"
    ]
    with pytest.raises(md.MetadataError, match="ai_002_002/cam_00 has no scene type"):
        md.scene_frames(tables, "ai_002_002")


def test_fingerprint_changes_with_content(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    before = md.metadata_fingerprint(folder)
    assert before == md.metadata_fingerprint(folder)
    path = folder / "metadata_camera_parameters.csv"
    path.write_text(path.read_text().replace("0.0254", "0.0255"))
    assert md.metadata_fingerprint(folder) != before


def _same_tables(a: md.MetadataTables, b: md.MetadataTables) -> None:
    pd.testing.assert_frame_equal(a.splits, b.splits)
    pd.testing.assert_frame_equal(a.scene_classes, b.scene_classes)
    pd.testing.assert_frame_equal(a.camera_params, b.camera_params)


def _count_parses(monkeypatch) -> list[int]:
    """Counts CSV parses (the real ``pd.read_csv`` still parses)."""
    calls = [0]
    real = pd.read_csv

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counting)
    return calls


def test_repeated_read_reuses_the_parse_and_equals_a_fresh_one(tmp_path, monkeypatch):
    folder = write_metadata_csvs(tmp_path / "a")
    parses = _count_parses(monkeypatch)
    first = md.read_metadata(folder)
    assert parses[0] == 3
    second = md.read_metadata(folder)
    # The second read hands out the first parse, not a new one...
    assert parses[0] == 3
    _same_tables(first, second)
    # ...equal to a parse of the same bytes at a path never read before.
    copy = tmp_path / "b"
    shutil.copytree(folder, copy)
    _same_tables(second, md.read_metadata(copy))
    assert parses[0] == 6


def test_changed_file_is_parsed_again_even_with_same_size_and_mtime(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    traj = folder / TRAJECTORIES_FILE
    assert {f.scene_class for f in md.scene_frames(md.read_metadata(folder), "ai_002_001")} == {"Office"}
    stat = traj.stat()
    # Same length and the old timestamps: only the content tells the change.
    traj.write_text(traj.read_text().replace(",Office,", ",Studio,"))
    os.utime(traj, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (traj.stat().st_size, traj.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert {f.scene_class for f in md.scene_frames(md.read_metadata(folder), "ai_002_001")} == {"Studio"}


def test_failed_parse_is_not_kept(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    split_csv = folder / SPLIT
    good = split_csv.read_text()
    md.read_split_table(split_csv)
    split_csv.write_text(good.replace(",True,", ",maybe,", 1))
    for _ in range(2):
        with pytest.raises(md.MetadataError, match="maybe"):
            md.read_split_table(split_csv)
    split_csv.write_text(good)
    assert len(md.read_split_table(split_csv)) == sum(t[4] for t in TRAJECTORIES)


def test_changing_a_returned_frame_leaves_the_next_read_intact(tmp_path):
    folder = write_metadata_csvs(tmp_path)
    tables = md.read_metadata(folder)
    expected = tables.splits.copy(deep=True)
    tables.splits.loc[0, "frame_id"] = 999
    tables.splits["scene_name"] = "ai_999_999"
    tables.camera_params.loc[:, "settings_output_img_width"] = 1.0
    again = md.read_metadata(folder)
    pd.testing.assert_frame_equal(again.splits, expected)
    assert (again.camera_params["settings_output_img_width"] == 1024.0).all()


def test_only_the_latest_files_are_kept(tmp_path, monkeypatch):
    first = write_metadata_csvs(tmp_path / "0")
    others = [write_metadata_csvs(tmp_path / str(i)) for i in range(1, md.MAX_CACHED_FILES + 1)]
    parses = _count_parses(monkeypatch)
    kept = md.read_split_table(first / SPLIT)
    pd.testing.assert_frame_equal(kept, md.read_split_table(first / SPLIT))
    assert parses[0] == 1
    for folder in others:  # as many other files: the first is dropped
        md.read_split_table(folder / SPLIT)
    assert parses[0] == 1 + md.MAX_CACHED_FILES
    again = md.read_split_table(first / SPLIT)
    assert parses[0] == 2 + md.MAX_CACHED_FILES
    pd.testing.assert_frame_equal(again, kept)
