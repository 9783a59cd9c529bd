"""A backfill of every scene partition launched through the GraphQL API the way the
UI's launch dialog does (``launchPartitionBackfill`` with an asset selection and
all partitions), against a real ``dg dev`` on loopback: every scene
converts, and the ``hypersim_automation`` sensor then rebuilds the frame index
so that it accounts for every frame of the mirror with none left pending.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

from hypersim_assets_tests import dagster_dev as dd

RUN_TIMEOUT_S = 120.0
BACKFILL_TIMEOUT_S = 180.0
# The sensor ticks at most every 30 s, then the index run starts and finishes.
AUTOMATION_TIMEOUT_S = 180.0
FINAL_STATUSES = {"converted", "input_missing", "excluded"}

pytestmark = pytest.mark.e2e  # a real `dg dev`, a backfill and the automation sensor


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    # `dg dev`, as the README starts the UI (the browser test uses `dagster dev -w workspace.yaml`).
    with dd.running_dagster_dev(tmp_path_factory.mktemp("backfill"), cli="dg") as running:
        yield running


def _newest_ms(events: list[dict]) -> int:
    return max((int(e["timestamp"]) for e in events), default=0)


def _index_if_refreshed(dev: dd.DagsterDev, after_ms: int) -> pd.DataFrame | None:
    """The frame index, once a frame_index materialisation newer than ``after_ms`` exists and it has no pending row."""
    if _newest_ms(dd.latest_materializations(dev, "frame_index", limit=1)) <= after_ms:
        return None
    path = dev.data_root / "dataset" / "frame_index.parquet"
    index = pd.read_parquet(path, columns=["scene", "camera", "frame_id", "status"])
    index["status"] = index["status"].astype(str)
    return None if (index["status"] == "pending").any() else index


def test_backfill_of_all_scenes_then_automation_refreshes_the_index(dev):
    scenes = sorted(dev.mirror.scenes)
    started = time.monotonic()
    run_id = dd.launch_asset_run(dev, "hypersim_catalog_job", ["hypersim_metadata"])
    dd.wait_for_run(dev, run_id, RUN_TIMEOUT_S)
    assert dd.dynamic_partitions(dev, "converted_scene") == scenes

    backfill_id = dd.launch_partition_backfill(
        dev, ["raw_scene", "converted_scene"], partitions=None, title="all scenes (test)"
    )
    state = dd.wait_for(
        f"backfill {backfill_id} to complete",
        lambda: (s := dd.backfill_state(dev, backfill_id))["status"] in dd.BACKFILL_DONE and s,
        BACKFILL_TIMEOUT_S,
        interval_s=2.0,
        dev=dev,
    )
    assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state
    assert state["runs"] and all(r["status"] == "SUCCESS" for r in state["runs"]), state
    backfill_done_s = time.monotonic() - started

    for asset in ("raw_scene", "converted_scene"):
        statuses = dd.partition_statuses(dev, asset)
        assert statuses["materialized"] == scenes, (asset, statuses)
        assert statuses["failed"] == [] and statuses["unmaterialized"] == [], (asset, statuses)
    converted = dd.latest_materializations(dev, "converted_scene", limit=len(scenes) * 4)
    assert {e["partition"] for e in converted} == set(scenes)
    last_converted_ms = _newest_ms(converted)

    # Nobody launches frame_index from here on: only the automation sensor can refresh it.
    index = dd.wait_for(
        "the automation sensor to refresh frame_index after the backfill",
        lambda: _index_if_refreshed(dev, last_converted_ms),
        AUTOMATION_TIMEOUT_S,
        interval_s=2.0,
        dev=dev,
    )
    refresh_run = dd.latest_materializations(dev, "frame_index", limit=1)[0]["runId"]
    run = next(r for r in dd.runs(dev) if r["runId"] == refresh_run)
    assert {"key": "dagster/sensor_name", "value": "hypersim_automation"} in run["tags"], run

    # Every frame of the mirror's split table is in the index, each with a final status.
    mirror_frames = pd.read_csv(dev.mirror.root / "metadata_images_split_scene_v1.csv")
    expected = set(zip(mirror_frames["scene_name"], mirror_frames["camera_name"], mirror_frames["frame_id"]))
    got = set(zip(index["scene"].astype(str), index["camera"].astype(str), index["frame_id"].astype(int)))
    assert got == expected
    assert len(index) == len(mirror_frames) == dev.mirror.frames_total
    assert set(index["status"]) <= FINAL_STATUSES, index["status"].value_counts().to_dict()
    assert set(index.loc[index["status"] == "converted", "scene"].astype(str)) == set(scenes)
    print(f"backfill done after {backfill_done_s:.1f} s; index refreshed after {time.monotonic() - started:.1f} s")
