"""The reference's blacklist as facts."""

from __future__ import annotations

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.blacklist import ALL_CAMERAS, BLACKLIST, blacklist_reason, is_blacklisted
from hypersim_assets_tests.catalog_fixtures import real_metadata_dir


def test_camera_entry_covers_only_that_camera():
    assert blacklist_reason("ai_003_001", "cam_00") == "no rgb"
    assert blacklist_reason("ai_003_001", "cam_01") is None
    assert blacklist_reason("ai_023_008", "cam_01") == "hall, only ceiling labelled"
    assert not is_blacklisted("ai_023_008", "cam_00")


def test_scene_entry_covers_every_camera():
    for camera in ("cam_00", "cam_01", "cam_07"):
        assert blacklist_reason("ai_053_005", camera) == "lecture theater (val split), missing textures in rgb"
    assert not is_blacklisted("ai_001_001", "cam_00")


def test_facts_shape():
    assert len(BLACKLIST) == 15
    assert len({e.scene for e in BLACKLIST}) == 15  # one entry per scene, as the reference's dict
    assert sum(e.camera == ALL_CAMERAS for e in BLACKLIST) == 11
    assert all(e.reason for e in BLACKLIST)


def test_no_test_split_frame_is_blacklisted_in_real_metadata():
    splits = md.read_split_table(real_metadata_dir() / "metadata_images_split_scene_v1.csv")
    included = splits[splits["included_in_public_release"]]
    hit = included[[is_blacklisted(s, c) for s, c in zip(included["scene_name"], included["camera_name"])]]
    assert set(hit["split_partition_name"]) == {"train", "val"}
    assert set(hit["scene_name"]) <= {e.scene for e in BLACKLIST}
    assert len(hit) > 0
