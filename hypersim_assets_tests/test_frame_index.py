"""The frame index: one typed row per metadata frame, joined with facts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_files import frame_files_present, missing_frame_files
from hypersim_assets.catalog.frame_index import (
    INDEX_FILE,
    INDEX_SCHEMA,
    PATH_COLUMNS,
    build_frame_index,
    write_parquet_atomic,
)
from hypersim_assets.catalog.scene_facts import load_scene_facts
from hypersim_assets.common.frame_facts import FACTS_SCHEMA, STATUS_FAILED, STATUS_INPUT_MISSING
from hypersim_assets.common.layout import frame_output_paths, intrinsics_output_paths
from hypersim_assets_tests.catalog_fixtures import (
    facts_frame,
    real_metadata_dir,
    synthetic_tables,
    write_converted_files,
)

FRAME_PATH_COLUMNS = [c for m, c in PATH_COLUMNS.items() if not m.endswith("_intrinsics")]


def test_real_index_rows_status_and_order():
    tables = md.read_metadata(real_metadata_dir())
    table = build_frame_index(tables, None)
    assert table.schema.equals(INDEX_SCHEMA)
    assert table.num_rows == 82_900
    df = table.to_pandas()
    assert df["status"].value_counts().to_dict() == {"pending": 74_619, "excluded": 8_281}
    # The real file is sorted by scene, camera, frame: the sort leaves metadata order intact.
    assert np.array_equal(df["metadata_row"].to_numpy(), np.arange(82_900))
    assert df.loc[df["included_in_public_release"], "path_rgb"].notna().all()
    assert df.loc[~df["included_in_public_release"], "path_rgb"].isna().all()
    assert set(df["split"].dropna().unique()) == {"train", "valid", "test"}
    assert (df["width_px"] == 1024).all() and (df["height_px"] == 768).all()
    assert df.loc[df["scene"] == "ai_053_005", "blacklisted"].all()


def test_schema_types():
    t = {f.name: f.type for f in INDEX_SCHEMA}
    for name in (
        "scene",
        "camera",
        "split",
        "scene_class",
        "status",
        "exclude_reason",
        "blacklist_reason",
        "converter_version",
        "path_rgb_intrinsics",
    ):
        assert pa.types.is_dictionary(t[name]), name
    assert t["frame_id"] == pa.int16()
    assert t["depth_min_mm"] == pa.uint16() and t["instance_count"] == pa.uint16()
    assert t["classes_present"] == pa.list_(pa.uint8())
    assert t["output_bytes"] == pa.uint32()
    assert t["void_fraction"] == pa.float32()
    assert t["path_rgb"] == pa.string()


def test_partial_conversion_status_paths_and_facts(tmp_path):
    tables = synthetic_tables(tmp_path)
    facts = pd.concat(
        [
            facts_frame([("ai_001_001", "cam_00", 0), ("ai_001_001", "cam_00", 1)], instance_count=4166),
            facts_frame([("ai_002_001", "cam_00", 2)], status=STATUS_INPUT_MISSING),
            # facts of an excluded frame and of a frame unknown to the metadata are ignored
            facts_frame([("ai_001_001", "cam_00", 3), ("ai_009_009", "cam_00", 0)]),
        ],
        ignore_index=True,
    )
    table = build_frame_index(tables, facts)
    assert table.schema.metadata[b"unmatched_facts"] == b"1"
    df = table.to_pandas().set_index(["scene", "camera", "frame_id"])
    assert len(df) == len(tables.splits)
    converted = df.loc[("ai_001_001", "cam_00", 1)]
    assert converted["status"] == "converted" and converted["instance_count"] == 4166
    assert converted["fx"] == pytest.approx(0.86) and list(converted["classes_present"]) == [1, 2, 5]
    assert converted["converter_version"] == "test-1"
    missing = df.loc[("ai_002_001", "cam_00", 2)]
    assert missing["status"] == "input_missing" and missing["reason"] == "missing member"
    # Upstream lacks its files: no output will ever exist, so the index names none (the
    # trajectory's intrinsics, shared with its converted frames, keep their path).
    assert missing["split"] == "valid" and all(pd.isna(missing[c]) for c in FRAME_PATH_COLUMNS)
    assert missing["path_depth_intrinsics"] == "valid/depth_intrinsics/ai_002_001/cam_00.json"
    excluded = df.loc[("ai_001_001", "cam_00", 3)]
    assert excluded["status"] == "excluded" and excluded["reason"] == "CONTENT FLAGGED FOR REMOVAL"
    assert pd.isna(excluded["split"]) and pd.isna(excluded["path_depth"]) and pd.isna(excluded["fx"])
    assert df.loc[("ai_001_001", "cam_01", 0), "status"] == "pending"
    bl = df.loc[("ai_013_001", "cam_00", 0)]
    assert bl["blacklisted"] and bl["blacklist_reason"].startswith("outdoor columns")
    assert not df.loc[("ai_003_001", "cam_01", 2), "blacklisted"]
    assert df.loc[("ai_003_001", "cam_00", 2), "blacklisted"]


def test_paths_equal_layout_for_every_included_row(tmp_path):
    df = build_frame_index(synthetic_tables(tmp_path)).to_pandas()
    for row in df[df["included_in_public_release"]].itertuples():
        expected = frame_output_paths(row.split, row.scene, row.camera, row.frame_id)
        expected.update(intrinsics_output_paths(row.split, row.scene, row.camera))
        assert {m: getattr(row, c) for m, c in PATH_COLUMNS.items()} == expected
        assert row.stem == f"{row.scene}/{row.camera}/{row.frame_id:04d}"


def test_unsorted_metadata_is_sorted_and_keeps_metadata_row(tmp_path):
    tables = synthetic_tables(tmp_path)
    shuffled = tables.splits.sample(frac=1.0, random_state=3).reset_index(drop=True)
    df = build_frame_index(md.MetadataTables(shuffled, tables.scene_classes)).to_pandas()
    keys = list(zip(df["scene"].astype(str), df["camera"].astype(str), df["frame_id"]))
    assert keys == sorted(keys)
    back = shuffled.loc[df["metadata_row"].to_numpy()]
    assert list(back["frame_id"]) == list(df["frame_id"])
    assert df["width_px"].isna().all()  # no camera parameters given


def test_bad_facts_raise_naming_frame(tmp_path):
    tables = synthetic_tables(tmp_path)
    dup = facts_frame([("ai_001_001", "cam_00", 0), ("ai_001_001", "cam_00", 0)])
    with pytest.raises(ValueError, match="duplicate frame.*ai_001_001/cam_00/0000"):
        build_frame_index(tables, dup)
    weird = facts_frame([("ai_001_001", "cam_01", 4)], status="done")
    with pytest.raises(ValueError, match="ai_001_001/cam_01/0004 have status 'done'"):
        build_frame_index(tables, weird)
    too_big = facts_frame([("ai_001_001", "cam_01", 4)], depth_max_mm=None, output_bytes=2**33)
    with pytest.raises(ValueError, match="output_bytes"):
        build_frame_index(tables, too_big)


def test_load_scene_facts_reads_all_and_tolerates_none(tmp_path):
    empty = load_scene_facts(tmp_path)
    assert len(empty) == 0 and list(empty.columns) == FACTS_SCHEMA.names
    facts_dir = tmp_path / "facts"
    facts_dir.mkdir()
    for scene, frames in (("ai_001_001", [0, 1]), ("ai_002_001", [0])):
        table = pa.Table.from_pandas(
            facts_frame([(scene, "cam_00", f) for f in frames]), schema=FACTS_SCHEMA, preserve_index=False
        )
        pq.write_table(table, facts_dir / f"{scene}.parquet")
    (facts_dir / ".ai_003_001.parquet.123.tmp").write_bytes(b"half")
    facts = load_scene_facts(tmp_path)
    assert sorted(zip(facts["scene"], facts["frame_id"])) == [("ai_001_001", 0), ("ai_001_001", 1), ("ai_002_001", 0)]
    df = build_frame_index(synthetic_tables(tmp_path), facts).to_pandas()
    assert df.loc[df["status"] == "converted", "stem"].tolist() == [
        "ai_001_001/cam_00/0000",
        "ai_001_001/cam_00/0001",
        "ai_002_001/cam_00/0000",
    ]
    assert df.loc[df["status"] == "converted", "classes_present"].map(list).tolist() == [[1, 2, 5]] * 3
    (facts_dir / "ai_004_001.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="ai_004_001.parquet is not readable Parquet"):
        load_scene_facts(tmp_path)


def test_written_index_reads_back_with_filters(tmp_path):
    table = build_frame_index(synthetic_tables(tmp_path), facts_frame([("ai_001_001", "cam_01", 0)]))
    path = write_parquet_atomic(table, tmp_path / "dataset" / INDEX_FILE)
    assert [p.name for p in path.parent.iterdir()] == [INDEX_FILE]  # no temp file left
    train = pd.read_parquet(path, filters=[("split", "==", "train")])
    assert len(train) == 51 and set(train["split"].astype(str)) == {"train"}
    assert isinstance(train["scene"].dtype, pd.CategoricalDtype)
    back = pq.read_table(path)
    assert back.schema.field("frame_id").type == pa.int16()
    assert back.schema.field("output_bytes").type == pa.uint32()
    assert pa.types.is_dictionary(back.schema.field("status").type)


def test_files_present_and_missing(tmp_path):
    df = build_frame_index(synthetic_tables(tmp_path)).to_pandas()
    root = tmp_path / "dataset"
    write_converted_files(root, [("train", "ai_001_001", "cam_01", 0), ("train", "ai_001_001", "cam_01", 1)])
    (root / "train/depth/ai_001_001/cam_01/0001.png").unlink()
    present = frame_files_present(df, root)
    keys = set(df.loc[present, "stem"])
    assert keys == {"ai_001_001/cam_01/0000"}
    rows = (df["stem"].isin(["ai_001_001/cam_01/0000", "ai_001_001/cam_01/0001"])).to_numpy()
    assert missing_frame_files(df, root, rows) == ["train/depth/ai_001_001/cam_01/0001.png"]


def test_failed_scenes_mark_frames_without_facts_failed_with_reason(tmp_path):
    tables = synthetic_tables(tmp_path)
    facts = facts_frame([("ai_001_001", "cam_00", 0)])
    reason = "raw_scene failed: scene ai_001_001: not found at http://127.0.0.1/scenes/ai_001_001.zip"
    df = build_frame_index(tables, facts, scene_failures={"ai_001_001": reason, "ai_404_404": "no such scene"})
    df = df.to_pandas()
    scene = df[(df["scene"] == "ai_001_001") & df["included_in_public_release"]]
    kept = scene["frame_id"].eq(0) & scene["camera"].eq("cam_00")
    assert (scene.loc[kept, "status"] == "converted").all()  # files an earlier run wrote stay what they are
    assert (scene.loc[~kept, "status"] == STATUS_FAILED).all() and (scene.loc[~kept, "reason"] == reason).all()
    assert (df.loc[df["scene"] == "ai_001_001", "status"] != "pending").all()
    others = df[(df["scene"] != "ai_001_001") & df["included_in_public_release"]]
    assert (others["status"] == "pending").all() and others["reason"].isna().all()


def test_index_reads_back_as_readme_shows_with_integer_and_boolean_dtypes(tmp_path, monkeypatch):
    """Exactly the README's reads: integer and boolean columns stay integers and booleans."""
    monkeypatch.chdir(tmp_path)
    tables = synthetic_tables(tmp_path)
    facts = pd.concat(
        [
            facts_frame([("ai_001_001", "cam_01", 0)], nan_pixels=3, depth_inf_pixels=2, depth_negative_pixels=1),
            facts_frame([("ai_002_001", "cam_00", 2)], status=STATUS_INPUT_MISSING),
        ],
        ignore_index=True,
    )
    root = tmp_path / "hypersim-data" / "dataset"
    write_parquet_atomic(build_frame_index(tables, facts), root / INDEX_FILE)
    index = pd.read_parquet("hypersim-data/dataset/frame_index.parquet")
    train = pd.read_parquet("hypersim-data/dataset/frame_index.parquet", filters=[("split", "==", "train")])
    kitchens = train[(train.scene_class == "Kitchen") & (train.status == "converted") & (train.void_fraction < 0.05)]
    assert len(kitchens) == 0  # the one converted frame is a bathroom with a quarter void
    for df in (index, train):
        for name, field_type in ((f.name, f.type) for f in INDEX_SCHEMA):
            if pa.types.is_integer(field_type):
                assert pd.api.types.is_integer_dtype(df[name].dtype), (name, df[name].dtype)
            elif pa.types.is_boolean(field_type):
                assert pd.api.types.is_bool_dtype(df[name].dtype), (name, df[name].dtype)
    row = index.set_index("stem").loc["ai_001_001/cam_01/0000"]
    assert (row["nan_pixels"], row["depth_inf_pixels"], row["depth_negative_pixels"]) == (3, 2, 1)
    pending = index.set_index("stem").loc["ai_001_001/cam_01/0001"]
    assert pd.isna(pending["nan_pixels"]) and pd.isna(pending["rotation_valid"])
    todo = index[index.status.isin(["pending", "failed", "input_missing"])]
    assert "ai_002_001/cam_00/0002" in set(todo["stem"])
    counts = index.groupby(["split", "status"], observed=True).size().unstack(fill_value=0)
    assert counts.loc["train", "converted"] == 1 and counts.loc["valid", "input_missing"] == 1
    assert (index.loc[index["status"] == "converted", "rotation_valid"] == True).all()  # noqa: E712
