"""A frame that fails on bad input, seen as a UI user sees it: the run's log names the
scene, camera, frame and why (not only a count), and so does the materialisation."""

from __future__ import annotations

import logging

import dagster as dg

from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import materialize_metadata
from hypersim_assets_tests.conftest import resource_config as _config
from hypersim_assets_tests.conftest import run_job as _run


def test_a_failed_frame_is_named_with_its_reason_in_the_run_log(small_mirror, tmp_path):
    mirror, summary = small_mirror
    scene = summary.scenes[0]
    data = tmp_path / "data"
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, data)
        materialize_metadata(instance, config)
        assert _run("hypersim_scene_job", config, instance, partition_key=scene).success
        # Damage one raw input after download (its CRC no longer matches, but only the
        # conversion runs), then convert again from scratch.
        depth = sorted((data / "raw" / scene / "images").glob("scene_cam_00_geometry_hdf5/frame.*.depth_meters.hdf5"))
        victim = depth[0]
        frame = int(victim.name.split(".")[1])
        blob = bytearray(victim.read_bytes())
        blob[8:] = bytes(len(blob) - 8)
        victim.write_bytes(bytes(blob))
        force = _config(server.url, data, conversion={"workers": 1, "force": True})
        result = _run(
            "hypersim_scene_job",
            force,
            instance,
            partition_key=scene,
            asset_selection=[dg.AssetKey("converted_scene")],
        )
        assert result.success  # a failed frame leaves the scene incomplete (a check), not the run failed
        warnings = [
            e.user_message
            for e in instance.all_logs(result.run_id)
            if e.level >= logging.WARNING and e.dagster_event is None
        ]
        mat = result.asset_materializations_for_node("scene_step")[0]
    named = f"{scene}/cam_00/{frame:04d}"
    assert any(named in w and victim.name in w for w in warnings), warnings
    failed = mat.metadata["failed_frames"].value
    assert [f["frame"] for f in failed] == [f"cam_00/{frame:04d}"]
    assert victim.name in failed[0]["reason"]


def test_a_rerun_of_an_unchanged_scene_logs_no_frame_as_converted(small_mirror, tmp_path):
    # Was: "<scene>: 2 converted, ..." for a re-run that rewrote nothing.
    mirror, summary = small_mirror
    scene = summary.scenes[1]
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, tmp_path / "data")
        materialize_metadata(instance, config)
        assert _run("hypersim_scene_job", config, instance, partition_key=scene).success
        result = _run("hypersim_scene_job", config, instance, partition_key=scene)
        assert result.success
        mat = result.asset_materializations_for_node("scene_step")
        meta = next(m for m in mat if m.asset_key == dg.AssetKey("converted_scene")).metadata
        unchanged = meta["frames_skipped_unchanged"].value
        assert unchanged == meta["frames_converted"].value > 0
        lines = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message.startswith(f"{scene}: ")]
    assert any(f"{scene}: 0 converted, {unchanged} unchanged" in line for line in lines), lines
