"""The code location loads, and its asset graph is the one the README describes."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.definitions import defs
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.defs.resources import HypersimResource, resources


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


ENV_FIELDS = {
    ("hypersim", "source"): "HYPERSIM_SOURCE",
    ("hypersim", "data_root"): "HYPERSIM_DATA_ROOT",
    ("catalog", "subsamples"): "HYPERSIM_SUBSAMPLES",
    ("dask", "scheduler_address"): "HYPERSIM_DASK_SCHEDULER",
}


def test_environment_fields_are_bound_to_env_vars_only_when_set(monkeypatch):
    for name in ENV_FIELDS.values():
        monkeypatch.delenv(name, raising=False)
    unset = resources().resources
    for (resource, field), _ in ENV_FIELDS.items():
        assert getattr(unset[resource], field) is None, (resource, field)

    values = {"HYPERSIM_SOURCE": "http://127.0.0.1:9/", "HYPERSIM_DATA_ROOT": "/tmp/x"}
    values |= {"HYPERSIM_SUBSAMPLES": "1,5", "HYPERSIM_DASK_SCHEDULER": "tcp://127.0.0.1:8786"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    bound = resources().resources
    for (resource, field), name in ENV_FIELDS.items():
        value = getattr(bound[resource], field)
        assert isinstance(value, dg.EnvVar) and value.env_var_name == name, (resource, field, value)


def test_a_partial_launchpad_block_falls_back_to_the_environment(monkeypatch, tmp_path):
    """Launchpad config replaces the resource's block (EnvVar bindings included); unnamed fields
    still come from the environment when the run starts."""
    monkeypatch.setenv("HYPERSIM_SOURCE", "http://127.0.0.1:9/")
    monkeypatch.setenv("HYPERSIM_DATA_ROOT", str(tmp_path / "from-env"))
    seen = {}

    @dg.asset
    def probe(hypersim: HypersimResource) -> None:
        seen["root"], seen["source"] = hypersim.root(), str(hypersim.parsed_source())

    run_config = {"resources": {"hypersim": {"config": {"source": "http://127.0.0.1:10/"}}}}
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [probe], resources=resources().resources, run_config=run_config, instance=instance
        ).success
    assert seen["root"] == (tmp_path / "from-env").resolve()
    assert "127.0.0.1:10" in seen["source"]
