"""What the UI shows of the frame index before anyone opens the file: its columns, with the
units a pandas user needs, matching the Parquet file the asset writes."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq

from hypersim_assets.definitions import defs
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import resource_config as _config


def _column_schema() -> dg.TableSchema:
    node = defs.resolve_asset_graph().get(dg.AssetKey("frame_index"))
    schema = node.metadata.get("dagster/column_schema")
    assert schema is not None, "frame_index declares no column schema"
    return getattr(schema, "value", schema)


def test_frame_index_lists_the_written_columns_with_units(small_mirror, tmp_path):
    mirror, summary = small_mirror
    data = tmp_path / "data"
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, data)
        job = defs.resolve_job_def("hypersim_catalog_job")
        keys = [dg.AssetKey("hypersim_metadata"), dg.AssetKey("frame_index")]
        assert job.execute_in_process(run_config=config, instance=instance, asset_selection=keys).success
    written = pq.read_schema(data / "dataset" / "frame_index.parquet").names
    columns = {c.name: c for c in _column_schema().columns}
    assert list(columns) == written
    described = {name: (c.description or "") for name, c in columns.items()}
    for name in ("depth_min_mm", "depth_max_mm", "depth_mean_mm"):
        assert "millimetres" in described[name], name
    for name in ("x", "y", "z"):
        assert "metres" in described[name], name
    for name in ("fx", "fy", "cx", "cy"):
        assert "normalised" in described[name], name
    assert all("relative to the dataset folder" in described[n] for n in written if n.startswith("path_"))
    assert columns["scene"].type.startswith("category")  # what pd.read_parquet gives
    description = defs.resolve_asset_graph().get(dg.AssetKey("frame_index")).description
    assert "mm" in description and "metres" in description
