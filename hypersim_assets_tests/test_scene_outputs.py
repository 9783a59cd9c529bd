"""The disk check the schedule runs: a scene's facts against its files (deleted, re-sized,
facts gone, failed frames), and the completeness rule the UI, index and schedule share."""

from __future__ import annotations

from hypersim_assets.catalog.scene_facts import completeness, write_scene_facts
from hypersim_assets.catalog.scene_outputs import scene_disk_state
from hypersim_assets.common.frame_facts import STATUS_CONVERTED, STATUS_FAILED, STATUS_INPUT_MISSING
from hypersim_assets.common.layout import dataset_dir, frame_output_paths

SCENE = "ai_001_001"


def _convert(root, frames):
    """Files and facts as a conversion leaves them: (camera, frame_id, status) per frame."""
    facts = []
    for camera, frame_id, status in frames:
        total = None
        if status == STATUS_CONVERTED:
            total = 0
            for i, rel in enumerate(frame_output_paths("valid", SCENE, camera, frame_id).values()):
                path = dataset_dir(root) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"p" * (10 + i))
                total += 10 + i
        facts.append({"scene": SCENE, "camera": camera, "frame_id": frame_id, "status": status, "output_bytes": total})
    write_scene_facts(root, SCENE, facts)


SPLITS = {("cam_00", f): "valid" for f in range(4)}


def test_intact_scene_has_no_problems(tmp_path):
    _convert(tmp_path, [("cam_00", 0, STATUS_CONVERTED), ("cam_00", 1, STATUS_INPUT_MISSING)])
    state = scene_disk_state(tmp_path, SCENE, SPLITS)
    assert not state.outputs_missing and state.failed_frames == 0 and state.problems == []


def test_deleted_and_resized_files_and_failed_frames_are_seen(tmp_path):
    _convert(tmp_path, [("cam_00", f, STATUS_CONVERTED) for f in range(3)] + [("cam_00", 3, STATUS_FAILED)])
    data = dataset_dir(tmp_path)
    deleted = frame_output_paths("valid", SCENE, "cam_00", 0)["depth"]
    (data / deleted).unlink()
    resized = data / frame_output_paths("valid", SCENE, "cam_00", 2)["boxes_3d"]
    resized.write_bytes(resized.read_bytes()[:-1])
    state = scene_disk_state(tmp_path, SCENE, SPLITS)
    assert state.outputs_missing and state.damaged_frames == 2 and state.failed_frames == 1
    assert state.problems[0] == f"{deleted}: missing"
    assert "cam_00/0002" in state.problems[1] and "the conversion wrote" in state.problems[1]


def test_missing_facts_count_as_outputs_missing(tmp_path):
    state = scene_disk_state(tmp_path, SCENE, SPLITS)
    assert state.outputs_missing and not state.facts_found and "facts missing" in state.problems[0]


def test_completeness_rule():
    assert completeness(0, 0).passed
    warn = completeness(0, 1)
    assert not warn.passed and warn.severity == "WARN"
    error = completeness(2, 1)
    assert not error.passed and error.severity == "ERROR" and "2 frame(s) failed" in error.description
