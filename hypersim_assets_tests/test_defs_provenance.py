"""The dataset's provenance record (creation_meta.json) and the frame index say how the frames
were converted, even when the index and views are rebuilt by a run with other settings (the
automation sensor's runs use the resources' defaults)."""

from __future__ import annotations

import dagster as dg

from hypersim_assets.catalog.frame_index import read_frame_index
from hypersim_assets.catalog.provenance import read_creation_meta
from hypersim_assets.common.layout import dataset_dir
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import materialize_metadata, run_job
from hypersim_assets_tests.conftest import resource_config as _config

INDEX_AND_VIEWS = [dg.AssetKey("frame_index"), dg.AssetKey("subsample_views")]


def _run(job_name: str, config: dict, instance, **kwargs) -> None:
    assert run_job(job_name, config, instance, **kwargs).success


def test_an_index_rebuilt_with_defaults_records_the_settings_the_frames_were_written_with(small_mirror, tmp_path):
    mirror, summary = small_mirror
    first, second = summary.scenes[:2]
    data = tmp_path / "data"
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        defaults = _config(server.url, data)
        materialize_metadata(instance, defaults)
        fast = _config(server.url, data, conversion={"workers": 1, "png_compression": "fast", "tilt_shift": False})
        _run("hypersim_scene_job", fast, instance, partition_key=first)
        _run("hypersim_catalog_job", defaults, instance, asset_selection=INDEX_AND_VIEWS)
        record = read_creation_meta(dataset_dir(data))[-1]
        assert record["settings"]["png_compression"] == "fast" and record["settings"]["tilt_shift"] is False
        assert record["additional_meta"]["apply_tilt_shift_conversion"] is False

        index = read_frame_index(dataset_dir(data))
        converted = index[index["status"] == "converted"]
        assert set(converted["scene"]) == {first}
        assert set(converted["png_compression"]) == {"fast"} and not converted["tilt_shift"].any()
        assert index.loc[index["status"] != "converted", "png_compression"].isna().all()

        # A second scene converted with the defaults: the record says the frames differ.
        _run("hypersim_scene_job", defaults, instance, partition_key=second)
        _run("hypersim_catalog_job", defaults, instance, asset_selection=INDEX_AND_VIEWS)
        record = read_creation_meta(dataset_dir(data))[-1]
        assert record["settings"]["png_compression"] == ["default", "fast"]
        assert record["settings"]["tilt_shift"] == [False, True]
        assert "apply_tilt_shift_conversion" not in record["additional_meta"]
