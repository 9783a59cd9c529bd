"""The whole graph in a real Dagster instance on a tiny synthetic mirror served
over loopback HTTP: conversion checks and metadata, idempotent re-runs, the
automation that refreshes the index, the catalogue checks, the disk policy, and
output readable by the reference's reader conventions (checked here without
importing the reference)."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION
from hypersim_assets.definitions import defs
from hypersim_assets.materialize import materialize, resource_run_config
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer

# Each test here runs the whole graph through a real instance: the slow end-to-end loop.
pytestmark = pytest.mark.e2e

H, W = 24, 32


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Metadata, every scene and the catalogue materialised once; the instance stays open for the module."""
    tmp = tmp_path_factory.mktemp("pipeline")
    summary = write_synthetic_mirror(tmp / "mirror", MirrorSpec(scenes=3, cameras=2, frames=3, height=H, width=W))
    data = tmp / "data"
    with dg.instance_for_test() as instance, MirrorServer(tmp / "mirror") as server:
        result = materialize(defs, instance, source=server.url, data_root=data, all_scenes=True, echo=lambda _: None)
        yield {"instance": instance, "server": server, "data": data, "mirror": summary, "result": result}


def _latest(instance, key: str, partition: str | None = None):
    if partition is None:
        return instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records
    return records[0].asset_materialization


def _check_evals(instance, asset: str, check: str):
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check), limit=100
    )
    return records


def test_converted_scene_reports_counts_and_warns_on_the_missing_frame(pipeline):
    instance, mirror = pipeline["instance"], pipeline["mirror"]
    missing = mirror.edge_cases["missing_frame"]
    mat = _latest(instance, "converted_scene", missing["scene"])
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["frames_input_missing"] == 1 and meta["frames_failed"] == 0
    assert meta["frames_converted"] == meta["frames"] - 1
    assert meta["output_bytes"] > 0 and meta["frames_per_second"] > 0
    assert 0.0 <= meta["mean_void_fraction"] < 1.0
    assert any("not a valid rotation" in w for w in meta["warnings"])  # frame 0 of that scene, by construction
    assert mat.tags["dagster/code_version"] == CONVERTER_VERSION
    assert meta["preview"].count("data:image/png;base64,") == 3

    warn = _check_evals(instance, "converted_scene", "frames_converted")
    by_partition = {r.partition: r for r in warn if r.event}
    assert set(by_partition) == set(mirror.scenes), by_partition.keys()
    evaluation = by_partition[missing["scene"]].event.dagster_event.event_specific_data
    assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["not_converted_by_status"].value == {"input_missing": 1}
    evaluation = _check_evals(instance, "converted_scene", "outputs_complete")
    assert {r.partition for r in evaluation} == set(mirror.scenes)
    assert all(r.event.dagster_event.event_specific_data.passed for r in evaluation)


def test_rerun_skips_finished_frames_and_keeps_the_data_version(pipeline):
    instance, server, data = pipeline["instance"], pipeline["server"], pipeline["data"]
    scene = pipeline["mirror"].scenes[0]
    before = _latest(instance, "converted_scene", scene)
    rgb = sorted((data / "dataset").glob(f"*/rgb/{scene}/*/*.png"))
    mtimes = {p: p.stat().st_mtime_ns for p in rgb}
    job = defs.resolve_job_def("hypersim_scene_job")
    result = job.execute_in_process(
        run_config=resource_run_config(server.url, data), instance=instance, partition_key=scene
    )
    assert result.success
    after = _latest(instance, "converted_scene", scene)
    meta = {k: v.value for k, v in after.metadata.items()}
    assert meta["frames_skipped_unchanged"] == meta["frames_converted"] > 0
    assert {p: p.stat().st_mtime_ns for p in rgb} == mtimes  # nothing rewritten
    assert after.tags["dagster/data_version"] == before.tags["dagster/data_version"]


def test_index_and_views_checks_pass_and_index_is_complete(pipeline):
    instance, data, mirror = pipeline["instance"], pipeline["data"], pipeline["mirror"]
    for asset, check in (
        ("frame_index", "rows_match_metadata"),
        ("frame_index", "converted_files_exist"),
        ("subsample_views", "views_subset_of_index"),
        ("subsample_views", "text_lists_match_views"),
        ("hypersim_metadata", "metadata_consistent"),
    ):
        history = _check_evals(instance, asset, check)
        assert history and history[0].event.dagster_event.event_specific_data.passed, (asset, check)
    index = pd.read_parquet(data / "dataset" / "frame_index.parquet")
    assert len(index) == mirror.frames_total
    statuses = index["status"].astype(str).value_counts().to_dict()
    assert statuses.get("pending", 0) == 0
    assert statuses["input_missing"] == 1
    assert statuses["converted"] == mirror.frames_included - 1
    train = pd.read_parquet(data / "dataset" / "frame_index.parquet", filters=[("split", "==", "train")])
    assert len(train) > 0 and set(train["split"].astype(str)) == {"train"}
    creation = json.loads((data / "dataset" / "creation_meta.json").read_text())
    assert isinstance(creation, list) and creation


def test_automation_requests_the_index_after_a_scene_update_only(pipeline):
    instance, server, data = pipeline["instance"], pipeline["server"], pipeline["data"]
    selection = dg.AssetSelection.assets("frame_index", "subsample_views")
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    # Everything is fresh: nothing requested (the index was built after the scenes).
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    assert second.total_requested == 0
    scene = pipeline["mirror"].scenes[1]
    job = defs.resolve_job_def("hypersim_scene_job")
    assert job.execute_in_process(
        run_config=resource_run_config(server.url, data), instance=instance, partition_key=scene
    ).success
    third = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=second.cursor
    )
    assert third.get_num_requested(dg.AssetKey("frame_index")) == 1


def test_output_follows_the_reference_reader_conventions(pipeline):
    """What the reference's Hypersim reader does: np.loadtxt of the split list, then
    <split>/<modality>/<line>.png|json|txt; images read unchanged (16-bit depth),
    instance id = G << 8 | B, semantic R channel of instance = class."""
    data, mirror = pipeline["data"], pipeline["mirror"]
    dataset = data / "dataset"
    tables = pd.read_csv(mirror.root / "metadata_camera_trajectories.csv")
    classes = {a: c for a, c in zip(tables["Animation"], tables["Scene type"])}
    seen = 0
    for split in ("train", "valid", "test"):
        lines = np.atleast_1d(np.loadtxt(dataset / f"{split}.txt", dtype=str)).tolist()
        sub = (dataset / f"{split}_every_10th.txt").read_text().split()
        assert set(sub) <= set(lines)
        for line in lines:
            scene, cam, frame = line.split("/")
            assert len(frame) == 4
            with Image.open(dataset / split / "rgb" / f"{line}.png") as im:
                assert im.mode == "RGB" and im.size == (W, H)
            with Image.open(dataset / split / "depth" / f"{line}.png") as im:
                assert im.mode in ("I;16", "I;16B", "I") and np.asarray(im).max() < 2**16
            with Image.open(dataset / split / "semantic_40" / f"{line}.png") as im:
                semantic = np.asarray(im)
                assert im.mode == "L" and semantic.max() <= 40
            with Image.open(dataset / split / "instance" / f"{line}.png") as im:
                instance = np.asarray(im)
                assert im.mode == "RGB"
            ids = (instance[..., 1].astype(np.uint16) << 8) | instance[..., 2]
            assert np.array_equal(instance[..., 0], semantic)
            assert ids.dtype == np.uint16
            with Image.open(dataset / split / "normal" / f"{line}.png") as im:
                assert im.mode == "RGB"
            extr = json.loads((dataset / split / "extrinsics" / f"{line}.json").read_text())
            assert set(extr) == {"x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w"}
            for kind in ("rgb_intrinsics", "depth_intrinsics"):
                intr = json.loads((dataset / split / kind / scene / f"{cam}.json").read_text())
                assert {"fx", "fy", "cx", "cy"} <= set(intr)
            orientations = json.loads((dataset / split / "orientations" / f"{line}.json").read_text())
            assert all(int(k) > 0 for k in orientations)
            boxes = json.loads((dataset / split / "boxes_3d" / f"{line}.json").read_text())
            assert set(boxes) == set(orientations)
            text = (dataset / split / "scene_class" / f"{line}.txt").read_text()
            assert text.endswith("\n") and text.splitlines()[0] == classes[f"{scene}_{cam}"]
            seen += 1
    assert seen == mirror.frames_included - 1


def test_disk_policy_deletes_raw_files_after_a_successful_conversion(pipeline, tmp_path):
    server = pipeline["server"]
    scene = pipeline["mirror"].scenes[2]
    data = tmp_path / "data"
    config = resource_run_config(server.url, data)
    config["resources"]["download"] = {"config": {"delete_raw_after_conversion": True}}
    with dg.instance_for_test() as instance:
        catalog = defs.resolve_job_def("hypersim_catalog_job")
        assert catalog.execute_in_process(
            run_config=config, instance=instance, asset_selection=[dg.AssetKey("hypersim_metadata")]
        ).success
        job = defs.resolve_job_def("hypersim_scene_job")
        assert job.execute_in_process(run_config=config, instance=instance, partition_key=scene).success
    assert not (data / "raw" / scene).exists()
    assert any((data / "dataset").glob(f"*/rgb/{scene}/*/*.png"))
    assert (data / "raw" / "metadata_images_split_scene_v1.csv").is_file()


def test_changed_converter_code_marks_converted_scenes_stale(pipeline):
    """What the UI shows: with the code version we ran, a scene is fresh; with other
    converter code (another code version on the same asset key), it is stale."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    from hypersim_assets.defs.assets.conversion import converted_scene_spec
    from hypersim_assets.defs.assets.raw import hypersim_metadata, raw_scene_spec
    from hypersim_assets.defs.partitions import scene_partitions

    instance = pipeline["instance"]
    scene = pipeline["mirror"].scenes[0]
    key = dg.AssetKey("converted_scene")

    def status(definitions: dg.Definitions) -> StaleStatus:
        resolver = CachingStaleStatusResolver(
            instance, definitions.resolve_asset_graph(), LoadingContextForTest(instance)
        )
        return resolver.get_status(key, scene)

    assert status(defs) == StaleStatus.FRESH

    @dg.multi_asset(
        specs=[
            raw_scene_spec(),
            converted_scene_spec().replace_attributes(code_version=CONVERTER_VERSION + "-changed"),
        ],
        partitions_def=scene_partitions,
        can_subset=True,
    )
    def changed():  # no return annotation: Dagster would read it as the outputs' types
        """The scene step as it would be with other converter code."""

    changed_defs = dg.Definitions(assets=[hypersim_metadata, changed], resources=defs.resources)
    assert status(changed_defs) == StaleStatus.STALE
