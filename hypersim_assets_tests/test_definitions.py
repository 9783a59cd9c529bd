"""The code location loads, and its asset graph is the one the README describes."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME


def _asset_graph():
    return defs.resolve_asset_graph()


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_lineage():
    graph = _asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"hypersim_metadata", "raw_scene", "converted_scene", "frame_index", "subsample_views"} <= keys
    parents = {
        "raw_scene": {"hypersim_metadata"},
        "converted_scene": {"raw_scene"},
        "frame_index": {"hypersim_metadata", "converted_scene"},
        "subsample_views": {"frame_index"},
    }
    for child, expected in parents.items():
        got = {k.to_user_string() for k in graph.get(dg.AssetKey(child)).parent_keys}
        assert got == expected, child


def test_scene_assets_share_the_dynamic_scene_partitions():
    graph = _asset_graph()
    for key in ("raw_scene", "converted_scene"):
        pdef = graph.get(dg.AssetKey(key)).partitions_def
        assert isinstance(pdef, dg.DynamicPartitionsDefinition)
        assert pdef.name == SCENES_PARTITIONS_NAME
    for key in ("hypersim_metadata", "frame_index", "subsample_views"):
        assert graph.get(dg.AssetKey(key)).partitions_def is None


def test_conversion_has_code_version_and_catalog_has_automation():
    graph = _asset_graph()
    assert graph.get(dg.AssetKey("converted_scene")).code_version
    for key in ("frame_index", "subsample_views"):
        assert graph.get(dg.AssetKey(key)).automation_condition is not None


def test_automation_sensor_ships_running():
    sensor = defs.resolve_sensor_def("hypersim_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_download_pool_and_retries():
    graph = _asset_graph()
    raw = graph.assets_def_for_key(dg.AssetKey("raw_scene"))
    assert raw.op.pool == "hypersim_download"
    for key in ("raw_scene", "converted_scene", "hypersim_metadata"):
        policy = graph.assets_def_for_key(dg.AssetKey(key)).op.retry_policy
        assert policy is not None and policy.max_retries >= 1 and policy.jitter is not None
