"""Every-N-th views and the reference's text lists."""

from __future__ import annotations

import csv
import re

import pandas as pd
import pyarrow as pa
import pytest

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_index import INDEX_FILE, build_frame_index, write_parquet_atomic
from hypersim_assets.catalog.index_checks import check_text_lists_on_disk, check_views_on_disk
from hypersim_assets.catalog.subsample_views import (
    KIND_SPLIT,
    KIND_TRAJECTORY,
    parse_subsamples,
    read_view,
    select_every_nth_per_trajectory,
    select_every_nth_split,
    text_list_name,
    view_path,
    write_views,
)
from hypersim_assets_tests.catalog_fixtures import (
    REFERENCE,
    facts_frame,
    real_metadata_dir,
    synthetic_tables,
    write_converted_files,
)


def _readme_blacklist() -> dict[tuple[str, str], str]:
    """The blacklist as the shared README's table states it (independent of our module)."""
    text = (REFERENCE / "README.md").read_text()
    rows = re.findall(r"^\| (ai_\d{3}_\d{3}) \| (cam_\d{2}|\*) \| ([^|]+) \|$", text, flags=re.M)
    assert len(rows) == 15
    return {(scene, cam): reason.strip() for scene, cam, reason in rows}


def _expected_split_lists(n: int) -> dict[str, list[str]]:
    """The reference's lists computed with plain loops over csv.reader."""
    blacklist = _readme_blacklist()
    lists: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    with open(real_metadata_dir() / "metadata_images_split_scene_v1.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        for row in reader:
            if row[col["included_in_public_release"]] != "True":
                continue
            scene, cam = row[col["scene_name"]], row[col["camera_name"]]
            if (scene, cam) in blacklist or (scene, "*") in blacklist:
                continue
            split = {"train": "train", "val": "valid", "test": "test"}[row[col["split_partition_name"]]]
            lists[split].append(f"{scene}/{cam}/{int(row[col['frame_id']]):04d}")
    return {s: v[::n] for s, v in lists.items()}


@pytest.fixture(scope="module")
def real_index():
    return build_frame_index(md.read_metadata(real_metadata_dir(), camera_parameters=False)).to_pandas()


@pytest.mark.parametrize("n", [1, 10])
def test_real_every_nth_split_equals_plain_loop(real_index, n):
    expected = _expected_split_lists(n)
    view = select_every_nth_split(real_index, n)
    for split, stems in expected.items():
        assert view.loc[view["split"] == split, "stem"].tolist() == stems
    if n == 10:
        counts = {s: len(v) for s, v in expected.items()}
        assert counts["test"] == 769  # 7,690 test frames, none blacklisted
        assert sum(counts.values()) == len(view)


def test_real_per_trajectory_view_covers_every_eligible_trajectory(real_index):
    view = select_every_nth_per_trajectory(real_index, 10)
    eligible = real_index[real_index["included_in_public_release"] & ~real_index["blacklisted"]]
    per_traj = eligible.groupby(["scene", "camera"], observed=True).size()
    got = view.groupby(["scene", "camera"], observed=True).size()
    assert set(got.index) == set(per_traj.index)
    assert (got.reindex(per_traj.index) == (per_traj + 9) // 10).all()


def _synthetic_index(tmp_path, facts=None):
    return build_frame_index(synthetic_tables(tmp_path), facts).to_pandas()


def test_selection_stable_while_partly_converted(tmp_path):
    before = _synthetic_index(tmp_path)
    frames = [("ai_001_001", "cam_00", f) for f in range(12) if f != 3]
    after = _synthetic_index(tmp_path, facts_frame(frames))
    for select in (select_every_nth_split, select_every_nth_per_trajectory):
        for n in (1, 2, 5):
            a = select(before, n)[["split", "stem"]].astype(str).reset_index(drop=True)
            b = select(after, n)[["split", "stem"]].astype(str).reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b)


def test_every_nth_split_skips_excluded_and_blacklisted_before_counting(tmp_path):
    index = _synthetic_index(tmp_path)
    view = select_every_nth_split(index, 5)
    train = view.loc[view["split"] == "train", "stem"].tolist()
    # eligible train frames in metadata order: ai_001_001 cam_00 (11, without frame 3), cam_01 (12);
    # ai_003_001 cam_01 (10, frames 2..11); ai_003_001/cam_00 and ai_013_001 are blacklisted.
    eligible = (
        [f"ai_001_001/cam_00/{f:04d}" for f in range(12) if f != 3]
        + [f"ai_001_001/cam_01/{f:04d}" for f in range(12)]
        + [f"ai_003_001/cam_01/{f:04d}" for f in range(2, 12)]
    )
    assert train == eligible[::5]
    assert view.loc[view["split"] == "valid", "stem"].tolist() == [
        "ai_002_001/cam_00/0000",
        "ai_002_001/cam_00/0007",
    ]  # 0..4, 7..11


def test_per_trajectory_starts_each_trajectory_at_its_first_eligible_frame(tmp_path):
    view = select_every_nth_per_trajectory(_synthetic_index(tmp_path), 5)
    got = {
        k: g["frame_id"].tolist() for k, g in view.groupby(view["scene"].astype(str) + "/" + view["camera"].astype(str))
    }
    assert got == {
        "ai_001_001/cam_00": [0, 6, 11],  # eligible: 0,1,2,4,5,...,11
        "ai_001_001/cam_01": [0, 5, 10],
        "ai_003_001/cam_01": [2, 7],
        "ai_002_001/cam_00": [0, 7],  # eligible: 0..4, 7..11
        "ai_002_002/cam_00": [0, 5],
    }


def test_write_views_lists_only_present_frames(tmp_path):
    root = tmp_path / "dataset"
    converted = [("ai_001_001", "cam_01", f) for f in range(12)] + [("ai_002_002", "cam_00", f) for f in range(3)]
    write_parquet_atomic(build_frame_index(synthetic_tables(tmp_path), facts_frame(converted)), root / INDEX_FILE)
    write_converted_files(root, [("train", s, c, f) for s, c, f in converted[:12]])
    write_converted_files(root, [("test", s, c, f) for s, c, f in converted[12:]])
    (root / "test/normal/ai_002_002/cam_00/0002.png").unlink()  # one test frame incomplete on disk
    # files on disk without converted facts do not count as present
    write_converted_files(root, [("train", "ai_001_001", "cam_00", 0)])

    result = write_views(root, (10, 2))
    for check in (check_views_on_disk, check_text_lists_on_disk):
        ok, details = check(root, (10, 2))
        assert ok, details
    assert (root / "train.txt").read_text() == "".join(f"ai_001_001/cam_01/{f:04d}\n" for f in range(12))
    assert (root / "test.txt").read_text() == "ai_002_002/cam_00/0000\nai_002_002/cam_00/0001\n"
    assert (root / "valid.txt").read_text() == ""
    # train every 2nd: positions 0,2,4,... of 33 eligible train frames; cam_01 starts at position 11
    assert (root / "train_every_2th.txt").read_text() == "".join(
        f"ai_001_001/cam_01/{f:04d}\n" for f in range(1, 12, 2)
    )
    assert (root / "test_every_2th.txt").read_text() == "ai_002_002/cam_00/0000\n"
    assert result.summary["text_lists"]["train.txt"] == 12
    assert result.summary["views"]["every_nth_split_N1"] == {"train": 33, "valid": 10, "test": 7}
    assert result.summary["present"]["every_nth_split_N1"] == {"train": 12, "valid": 0, "test": 2}
    assert result.summary["views"]["every_nth_per_trajectory_N10"] == {"train": 5, "valid": 1, "test": 1}
    assert sorted(p.name for p in (root / "views").iterdir()) == sorted(
        f"{k}_N{n}.parquet" for k in (KIND_SPLIT, KIND_TRAJECTORY) for n in (1, 2, 10)
    )
    train = pd.read_parquet(view_path(root, KIND_SPLIT, 1), filters=[("split", "==", "train")])
    assert len(train) == 33 and int(train["present"].sum()) == 12
    assert set(train.loc[train["present"], "status"].astype(str)) == {"converted"}
    assert read_view(root, KIND_TRAJECTORY, 10)["split"].astype(str).tolist()[:1] == ["train"]


def test_text_list_names_follow_reference():
    assert text_list_name("train", 1) == "train.txt"
    assert text_list_name("valid", 10) == "valid_every_10th.txt"
    assert text_list_name("test", 2) == "test_every_2th.txt"
    with pytest.raises(ValueError):
        text_list_name("val", 1)


def test_parse_subsamples():
    assert parse_subsamples("1,2,5,10,20") == (1, 2, 5, 10, 20)
    assert parse_subsamples(" 10, 5,10 ") == (5, 10)
    assert parse_subsamples(None) == (1, 10) and parse_subsamples("") == (1, 10)
    with pytest.raises(ValueError, match="HYPERSIM_SUBSAMPLES"):
        parse_subsamples("1,x")
    with pytest.raises(ValueError, match=">= 1"):
        parse_subsamples("0,10")


def test_written_views_hold_the_selections_rows(tmp_path):
    """write_views orders each kind once and picks every N from it: the rows equal the public selections'."""
    root = tmp_path / "dataset"
    index = _synthetic_index(tmp_path)
    write_parquet_atomic(pa.Table.from_pandas(index, preserve_index=False), root / INDEX_FILE)
    write_views(root, (2, 3, 7))
    for kind, select in ((KIND_SPLIT, select_every_nth_split), (KIND_TRAJECTORY, select_every_nth_per_trajectory)):
        for n in (1, 2, 3, 7):
            expected = select(index, n)[["metadata_row", "stem", "split"]].astype(str).reset_index(drop=True)
            got = read_view(root, kind, n)[["metadata_row", "stem", "split"]].astype(str)
            pd.testing.assert_frame_equal(got, expected)
            assert len(got) > 0
