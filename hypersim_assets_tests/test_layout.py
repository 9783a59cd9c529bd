"""Upstream member names, the member selection, and the reference's output paths."""

from __future__ import annotations

import fnmatch

import pytest

from hypersim_assets.common.layout import (
    MemberSelection,
    frame_member,
    frame_output_paths,
    member_frame,
    split_dir_name,
)

SCENE = "ai_001_002"


def _names() -> list[str]:
    names = [
        f"{SCENE}/",
        f"{SCENE}/_detail/metadata_scene.csv",
        f"{SCENE}/_detail/metadata_nodes.csv",
        f"{SCENE}/_detail/cam_00/camera_keyframe_positions.hdf5",
        f"{SCENE}/_detail/cam_00/camera_keyframe_look_at_positions.hdf5",
        f"{SCENE}/_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_extents.hdf5",
        f"{SCENE}/_detail/mesh/mesh_objects_si.hdf5",
        f"{SCENE}/images/scene_cam_00_final_preview/frame.0000.color.jpg",
    ]
    for kind in ("color", "diffuse_illumination", "residual"):
        names.append(frame_member(SCENE, "cam_00", 0, "final", kind))
    for kind in (
        "depth_meters",
        "position",
        "normal_bump_cam",
        "normal_cam",
        "semantic",
        "semantic_instance",
        "render_entity_id",
        "tex_coord",
    ):
        names.append(frame_member(SCENE, "cam_00", 0, "geometry", kind))
    return names


def test_conversion_selection_is_exactly_what_the_converter_reads():
    picked = set(MemberSelection().select(SCENE, _names()))
    assert picked == {
        f"{SCENE}/_detail/metadata_scene.csv",
        f"{SCENE}/_detail/cam_00/camera_keyframe_positions.hdf5",
        f"{SCENE}/_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_extents.hdf5",
        f"{SCENE}/images/scene_cam_00_final_hdf5/frame.0000.color.hdf5",
        *(
            f"{SCENE}/images/scene_cam_00_geometry_hdf5/frame.0000.{k}.hdf5"
            for k in ("depth_meters", "normal_bump_cam", "semantic", "semantic_instance", "render_entity_id")
        ),
    }


def test_all_and_glob_selection_and_foreign_members():
    names = _names() + ["ai_009_009/_detail/metadata_scene.csv"]
    assert set(MemberSelection("all").select(SCENE, names)) == {n for n in _names() if not n.endswith("/")}
    globbed = MemberSelection("globs", ("images/*_preview/*",)).select(SCENE, names)
    assert globbed == [f"{SCENE}/images/scene_cam_00_final_preview/frame.0000.color.jpg"]
    with pytest.raises(ValueError):
        MemberSelection("globs")
    with pytest.raises(ValueError):
        MemberSelection("everything")


def test_glob_selection_follows_fnmatch_case_rules_whole_name():
    globs = ("images/*_preview/*", "_detail/cam_0[0-1]/*.csv", "?detail/mesh/*")
    selection = MemberSelection("globs", globs)
    rel = [
        "images/scene_cam_00_final_preview/frame.0000.color.jpg",
        "_detail/cam_01/metadata_camera.csv",
        "_detail/cam_02/metadata_camera.csv",  # outside [0-1]
        "_detail/cam_00/metadata_camera.csv.bak",  # a match must cover the whole name
        "x_detail/cam_00/metadata_camera.csv",  # ... from its start
        "_DETAIL/cam_00/metadata_camera.csv",  # case-sensitive on every platform
        "_detail/mesh/a.hdf5",
        "_detail/mesh/a.hdf5\n",  # '*' also matches a newline, as in fnmatch
    ]
    picked = [r for r in rel if selection.matches(SCENE, f"{SCENE}/{r}")]
    assert picked == [r for r in rel if any(fnmatch.fnmatchcase(r, g) for g in globs)]
    assert picked == rel[:2] + rel[-2:]


def test_reference_output_paths_and_split_names():
    paths = frame_output_paths(split_dir_name("val"), SCENE, "cam_01", 7)
    assert paths["depth"] == f"valid/depth/{SCENE}/cam_01/0007.png"
    assert paths["semantic_40"] == f"valid/semantic_40/{SCENE}/cam_01/0007.png"
    assert paths["boxes_3d"] == f"valid/boxes_3d/{SCENE}/cam_01/0007.json"
    assert paths["scene_class"] == f"valid/scene_class/{SCENE}/cam_01/0007.txt"
    assert len(paths) == 9
    with pytest.raises(ValueError):
        split_dir_name("validation")


def test_member_frame_names_per_frame_members_and_not_scene_wide_ones():
    assert member_frame(SCENE, frame_member(SCENE, "cam_01", 12, "geometry", "depth_meters")) == ("cam_01", 12)
    assert member_frame(SCENE, f"{SCENE}/images/scene_cam_00_final_preview/frame.0003.color.jpg") == ("cam_00", 3)
    assert member_frame(SCENE, f"{SCENE}/_detail/cam_00/camera_keyframe_positions.hdf5") is None
    assert member_frame(SCENE, f"{SCENE}/_detail/mesh/mesh_objects_si.hdf5") is None
    other = "ai_009_009"
    assert member_frame(SCENE, frame_member(other, "cam_00", 0, "final", "color")) is None
