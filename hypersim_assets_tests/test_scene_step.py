"""The scene step (``defs/assets/scene.py``) in a real Dagster instance over real HTTP: with
both assets selected it converts frames while their scene is still downloading and writes
exactly what download-then-convert writes; either asset alone works as before; a scene whose
zip disappears mid-download fails naming the scene, leaves only whole frames, and a re-run
completes."""

from __future__ import annotations

import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from hypersim_assets.common.frame_facts import STATUS_CONVERTED, STATUS_INPUT_MISSING, facts_path
from hypersim_assets.convert.frame_conversion import STATE_DIR
from hypersim_assets.definitions import defs
from hypersim_assets.synthetic.mirror import MirrorSpec
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import resource_config, write_mirror

RAW, CONVERTED = dg.AssetKey("raw_scene"), dg.AssetKey("converted_scene")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """2 scenes x 2 cameras x 5 frames at 48 x 64 px; one included frame has no files (upstream has such)."""
    return write_mirror(
        tmp_path_factory.mktemp("mirror"), MirrorSpec(scenes=2, cameras=2, frames=5, height=48, width=64)
    )


def _config(url: str, data: Path, **download: object) -> dict:
    # Two pool workers: the pipelined path needs a pool to convert while the download runs.
    return resource_config(url, data, conversion={"workers": 2}, **({"download": download} if download else {}))


def _run(instance, job: str, config: dict, partition: str | None = None, keys=None):
    return defs.resolve_job_def(job).execute_in_process(
        run_config=config,
        instance=instance,
        partition_key=partition,
        asset_selection=keys,
        raise_on_error=False,
    )


def _metadata(instance, url: str, data: Path) -> None:
    assert _run(instance, "hypersim_catalog_job", _config(url, data), keys=[dg.AssetKey("hypersim_metadata")]).success


def _outputs(data: Path) -> dict[str, bytes]:
    """Every converted output file (PNG, JSON, TXT) by its path below the dataset folder; done-markers
    (they record input modification times) and the facts are compared apart."""
    root = data / "dataset"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and STATE_DIR not in p.relative_to(root).parts
    }


def _facts(data: Path, scene: str) -> list[dict]:
    return pq.read_table(facts_path(data, scene)).to_pylist()


def _done_markers(data: Path, scene: str) -> list[Path]:
    return sorted((data / "dataset" / STATE_DIR / scene).rglob("*.json"))


def _materialized(result) -> set[dg.AssetKey]:
    return {e.step_materialization_data.materialization.asset_key for e in result.get_asset_materialization_events()}


def test_pipelined_step_writes_what_download_then_convert_writes(mirror, tmp_path):
    root, summary = mirror
    scene = summary.edge_cases["missing_frame"]["scene"]
    missing = summary.edge_cases["missing_frame"]
    both, apart = tmp_path / "both", tmp_path / "apart"
    with dg.instance_for_test() as instance, MirrorServer(root) as server:
        for data in (both, apart):
            _metadata(instance, server.url, data)
        one = _run(instance, "hypersim_scene_job", _config(server.url, both), scene)
        assert one.success
        assert _materialized(one) == {RAW, CONVERTED}

        # The same scene as two steps: only raw_scene (downloads, converts nothing), then only converted_scene.
        raw_only = _run(instance, "hypersim_scene_job", _config(server.url, apart), scene, [RAW])
        assert raw_only.success and _materialized(raw_only) == {RAW}
        assert (apart / "raw" / scene).is_dir() and not (apart / "dataset").exists()
        conv_only = _run(instance, "hypersim_scene_job", _config(server.url, apart), scene, [CONVERTED])
        assert conv_only.success and _materialized(conv_only) == {CONVERTED}

    got, want = _outputs(both), _outputs(apart)
    assert got.keys() == want.keys() and len(got) > 0
    assert [k for k in got if got[k] != want[k]] == []
    assert _facts(both, scene) == _facts(apart, scene)
    status = {(f["camera"], f["frame_id"]): f["status"] for f in _facts(both, scene)}
    assert status.pop((missing["camera"], missing["frame_id"])) == STATUS_INPUT_MISSING
    assert set(status.values()) == {STATUS_CONVERTED}
    meta = one.asset_materializations_for_node("scene_step")
    converted = next(m for m in meta if m.asset_key == CONVERTED).metadata
    assert converted["preview"].value.startswith("**") or "data:image/png" in converted["preview"].value


def test_frames_are_converted_while_the_scene_still_downloads(mirror, tmp_path):
    """Over a slow link the first frames' done-markers are written before the last member's
    response has gone out (wall clock of this host for both)."""
    root, summary = mirror
    scene = summary.scenes[0]
    data = tmp_path / "data"
    zip_bytes = (root / "scenes" / f"{scene}.zip").stat().st_size
    # A link that needs about 8 s for the whole zip; the fetch takes about a third of it.
    link_mbps = zip_bytes * 8 / 1e6 / 8.0
    with dg.instance_for_test() as instance, MirrorServer(root, rtt_ms=20, link_mbps=link_mbps) as server:
        _metadata(instance, server.url, data)
        server.reset_log()
        result = _run(instance, "hypersim_scene_job", _config(server.url, data), scene)
        assert result.success
        to_wall = time.time() - time.monotonic()
        members = [r for r in server.requests if r.path.endswith(".zip") and r.method == "GET"]
    last_member_done = max(r.done_s for r in members) + to_wall
    first_frame_done = min(p.stat().st_mtime for p in _done_markers(data, scene))
    assert first_frame_done < last_member_done
    meta = next(m for m in result.asset_materializations_for_node("scene_step") if m.asset_key == CONVERTED).metadata
    assert meta["overlap_seconds"].value > 0


def test_a_zip_gone_mid_download_fails_naming_the_scene_and_a_rerun_completes(mirror, tmp_path):
    root, summary = mirror
    scene = summary.scenes[0]
    data, clean = tmp_path / "data", tmp_path / "clean"
    zip_file = root / "scenes" / f"{scene}.zip"
    aside = zip_file.with_name(zip_file.name + ".aside")
    markers = data / "dataset" / STATE_DIR / scene
    zip_bytes = zip_file.stat().st_size
    link_mbps = zip_bytes * 8 / 1e6 / 8.0

    def remove_after_first_frame() -> None:
        # Once a frame is converted, the zip disappears: every later request is answered 404.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(markers.rglob("*.json")):
            time.sleep(0.01)
        zip_file.rename(aside)

    with dg.instance_for_test() as instance, MirrorServer(root, rtt_ms=20, link_mbps=link_mbps) as server:
        _metadata(instance, server.url, data)
        _metadata(instance, server.url, clean)
        remover = threading.Thread(target=remove_after_first_frame)
        remover.start()
        try:
            # One connection: requests go one after the other, so those after the first frame find no zip.
            failed = _run(instance, "hypersim_scene_job", _config(server.url, data, workers=1), scene)
        finally:
            remover.join()
            if aside.exists():
                aside.rename(zip_file)
        assert not failed.success
        failure = next(e for e in failed.all_events if e.is_step_failure)
        assert scene in failure.step_failure_data.error.message
        assert _materialized(failed) == set()
        # Only whole frames: no temp file, and every output file belongs to a done-marked frame.
        dataset = data / "dataset"
        assert [p for p in dataset.rglob("*.tmp")] == []
        done = {(p.parent.name, p.stem) for p in _done_markers(data, scene)}
        assert done
        for p in dataset.rglob(f"{scene}/cam_*/*"):
            assert (p.parent.name, p.stem) in done, p

        rerun = _run(instance, "hypersim_scene_job", _config(server.url, data), scene)
        assert rerun.success
        assert _run(instance, "hypersim_scene_job", _config(server.url, clean), scene).success
    got, want = _outputs(data), _outputs(clean)
    assert got.keys() == want.keys() and [k for k in got if got[k] != want[k]] == []


def _swap_members(src: Path, dst: Path, a: str, b: str) -> None:
    """Write ``src`` to ``dst`` with the contents of members ``a`` and ``b`` exchanged (each keeps its
    name and compression): the same listing, other bytes behind two names."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        data = {info.filename: zin.read(info) for info in zin.infolist()}
        data[a], data[b] = data[b], data[a]
        for info in zin.infolist():
            zout.writestr(info, data[info.filename])


def test_an_archive_replaced_mid_download_converts_every_frame_from_the_final_bytes(mirror, tmp_path):
    """The zip is replaced after the first frame was converted: the download starts over, and the
    frame converted from the old bytes is converted again, so the outputs equal a clean run's."""
    root, summary = mirror
    scene = summary.scenes[0]
    served, changed_root = tmp_path / "served", tmp_path / "changed"
    shutil.copytree(root, served)
    shutil.copytree(root, changed_root)
    zip_file = served / "scenes" / f"{scene}.zip"
    with zipfile.ZipFile(zip_file) as zf:
        colors = sorted(n for n in zf.namelist() if n.endswith(".color.hdf5"))
    # The first frame's colour is fetched (and converted) first, the last one's last.
    _swap_members(zip_file, changed_root / "scenes" / f"{scene}.zip", colors[0], colors[-1])
    replacement = zip_file.with_name("replacement.zip")
    shutil.copyfile(changed_root / "scenes" / f"{scene}.zip", replacement)
    data, clean = tmp_path / "data", tmp_path / "clean"
    markers = data / "dataset" / STATE_DIR / scene
    link_mbps = zip_file.stat().st_size * 8 / 1e6 / 8.0  # about 8 s for the whole zip
    swapped_after: list[int] = []

    def replace_after_first_frame() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(markers.rglob("*.json")):
            time.sleep(0.01)
        swapped_after.append(len(list(markers.rglob("*.json"))))
        os.replace(replacement, zip_file)

    with dg.instance_for_test() as instance:
        with MirrorServer(served, rtt_ms=20, link_mbps=link_mbps) as server:
            _metadata(instance, server.url, data)
            replacer = threading.Thread(target=replace_after_first_frame)
            replacer.start()
            try:
                result = _run(instance, "hypersim_scene_job", _config(server.url, data), scene)
            finally:
                replacer.join()
        assert result.success
        raw = next(m for m in result.asset_materializations_for_node("scene_step") if m.asset_key == RAW).metadata
        assert raw["restarts_after_remote_change"].value >= 1
        assert 0 < swapped_after[0] < len(colors)  # the swap came while frames were still converting
        with MirrorServer(changed_root) as server:
            _metadata(instance, server.url, clean)
            assert _run(instance, "hypersim_scene_job", _config(server.url, clean), scene).success
    got, want = _outputs(data), _outputs(clean)
    assert got.keys() == want.keys() and [k for k in got if got[k] != want[k]] == []
    assert _facts(data, scene) == _facts(clean, scene)
