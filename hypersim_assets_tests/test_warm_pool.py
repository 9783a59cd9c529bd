"""The process's warm conversion pool: adopted by one conversion at a time and only with the
worker count it asks for, kept for the next conversion after a clean one, shut down after a
failed one, on a size mismatch and by ``shutdown_warm_pool``; a scene conversion adopts it
(the pool is ready when the conversion starts), with the registry open (the command) a first
conversion's own pool serves the next, and in a process that never opened it a conversion ends
its own pool as before."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator

import pytest

from hypersim_assets.convert.frame_conversion import ConversionSettings
from hypersim_assets.convert.scene_conversion import stream_scene_conversion
from hypersim_assets.convert.warm_pool import (
    adopt_pool,
    keep_pools,
    prestart_pool,
    return_pool,
    shutdown_warm_pool,
    start_pool,
    warm_pool_state,
)
from hypersim_assets_tests.frame_scene import camera_params, write_scene

SCENE = "ai_037_002"
H, W = 48, 64


@pytest.fixture(autouse=True)
def closed_registry() -> Iterator[None]:
    shutdown_warm_pool()
    yield
    shutdown_warm_pool()


def _new_children(before: set[int]) -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.pid not in before]


def _children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def _kept_pool(workers: int) -> None:
    """The registry open with an idle, started pool of ``workers``, as after a command's first scene."""
    keep_pools()
    pool = start_pool(workers)
    _wait_ready(pool)
    return_pool(pool, reusable=True)


def _wait_ready(pool) -> None:
    ready = threading.Event()
    pool.on_ready(lambda _at: ready.set())
    assert ready.wait(60)


def test_adopted_once_kept_after_a_clean_conversion_and_shut_down_at_the_end():
    before = _children()
    _kept_pool(2)
    pool = adopt_pool(2)
    assert pool is not None and pool.workers == 2 and pool.owner_pid == os.getpid()
    assert warm_pool_state() == "lent"
    assert adopt_pool(2) is None  # never lent to two conversions at once
    _wait_ready(pool)
    children = _new_children(before)
    workers = {p.pid for p in children}
    assert len(workers) == 2 and pool.executor.submit(os.getpid).result() in workers

    return_pool(pool, reusable=True)
    assert warm_pool_state() == "idle"
    again = adopt_pool(2)
    assert again is pool and again.executor.submit(os.getpid).result() in workers  # the next scene reuses it
    return_pool(again, reusable=True)
    assert {p.pid for p in _new_children(before)} == workers  # no worker started anew

    shutdown_warm_pool()
    assert warm_pool_state() == "none"
    assert not any(p.is_alive() for p in children)


def test_a_failed_conversion_does_not_hand_its_pool_on():
    before = _children()
    _kept_pool(2)
    pool = adopt_pool(2)
    assert pool is not None
    _wait_ready(pool)
    children = _new_children(before)
    return_pool(pool, reusable=False)
    assert adopt_pool(2) is None
    assert children and not any(p.is_alive() for p in children)


def test_a_pool_of_another_size_is_not_adopted_and_ends():
    before = _children()
    _kept_pool(2)
    assert warm_pool_state() == "idle"
    children = _new_children(before)
    assert adopt_pool(3) is None
    assert warm_pool_state() == "none"
    assert children and not any(p.is_alive() for p in children)


def test_after_the_registry_is_closed_nothing_is_kept():
    _kept_pool(2)
    shutdown_warm_pool()  # the command ended: a pool handed back now is shut down
    assert adopt_pool(2) is None
    before = _children()
    own = start_pool(2)
    _wait_ready(own)
    children = _new_children(before)
    return_pool(own, reusable=True)
    assert warm_pool_state() == "none"
    assert children and not any(p.is_alive() for p in children)


def test_with_the_registry_open_the_first_conversions_pool_serves_the_next(tmp_path):
    scene_dir = write_scene(tmp_path / "raw", cameras=("cam_00",), frames=2, height=H, width=W)
    frames = [("cam_00", f, "train", "Kitchen") for f in range(2)]
    keep_pools()  # as the command does: no pool started ahead
    assert warm_pool_state() == "none"
    before = _children()
    args = (scene_dir, SCENE, frames, camera_params(H, W), tmp_path / "d")
    with stream_scene_conversion(*args, workers=2) as first:
        first.finish()
    assert warm_pool_state() == "idle"  # handed back, not shut down
    workers = {p.pid for p in _new_children(before)}
    with stream_scene_conversion(*args, ConversionSettings(skip_existing=False), workers=2) as second:
        facts = second.finish()
    assert [f.status for f in facts] == ["converted"] * 2
    assert second.times.pool_ready == second.times.started  # no pool start in the second conversion
    assert {p.pid for p in _new_children(before)} == workers  # the same workers, none started anew


def _frames() -> list[tuple[str, int, str, str]]:
    return [(cam, f, "train", "Kitchen") for cam in ("cam_00", "cam_01") for f in range(2)]


def test_scene_conversion_adopts_the_warm_pool_and_hands_it_back(tmp_path):
    scene_dir = write_scene(tmp_path / "raw", cameras=("cam_00", "cam_01"), frames=2, height=H, width=W)
    _kept_pool(2)
    warm = adopt_pool(2)
    _wait_ready(warm)
    return_pool(warm, reusable=True)  # idle and ready, as when a command reaches its first scene
    args = (scene_dir, SCENE, _frames(), camera_params(H, W), tmp_path / "dataset")
    with stream_scene_conversion(*args, workers=2) as conversion:
        assert warm_pool_state() == "lent"
        facts = conversion.finish()
    assert [f.status for f in facts] == ["converted"] * 4
    # Ready before the conversion started: no pool start inside the conversion.
    assert conversion.times.pool_ready == conversion.times.started
    assert warm_pool_state() == "idle"

    with pytest.raises(RuntimeError, match="download failed"):
        with stream_scene_conversion(*args, workers=2) as conversion:
            raise RuntimeError("download failed")
    assert warm_pool_state() == "none"  # a failed conversion's pool is not handed on


def test_a_pool_started_ahead_only_for_an_open_registry_and_adopted_by_the_first_conversion(tmp_path):
    before = _children()
    assert not prestart_pool(2)  # no command opened the registry: nobody would adopt it
    assert warm_pool_state() == "none" and not _new_children(before)
    keep_pools()
    assert prestart_pool(2)
    assert warm_pool_state() == "idle"
    assert not prestart_pool(2)  # one kept pool at most
    scene_dir = write_scene(tmp_path / "raw", cameras=("cam_00",), frames=2, height=H, width=W)
    frames = [("cam_00", f, "train", "Kitchen") for f in range(2)]
    with stream_scene_conversion(scene_dir, SCENE, frames, camera_params(H, W), tmp_path / "d", workers=2) as conv:
        assert warm_pool_state() == "lent"
        facts = conv.finish()
    assert [f.status for f in facts] == ["converted"] * 2
    assert conv.times.pool_adopted is True
    shutdown_warm_pool()
    assert not any(p.is_alive() for p in _new_children(before))


def test_scene_conversion_without_a_warm_pool_ends_its_own(tmp_path):
    scene_dir = write_scene(tmp_path / "raw", cameras=("cam_00",), frames=2, height=H, width=W)
    frames = [("cam_00", f, "train", "Kitchen") for f in range(2)]
    before = _children()
    with stream_scene_conversion(scene_dir, SCENE, frames, camera_params(H, W), tmp_path / "d", workers=2) as conv:
        facts = conv.finish()
        children = _new_children(before)
    assert [f.status for f in facts] == ["converted"] * 2
    assert conv.times.pool_ready is not None and conv.times.pool_ready >= conv.times.started
    assert conv.times.pool_adopted is False
    assert children and not any(p.is_alive() for p in children)
    assert warm_pool_state() == "none"


def test_a_pool_shut_down_while_its_workers_start_leaves_no_process():
    # start_pool returns at once and starts the workers on a thread of its own (the scene step's
    # download must not wait for the forkserver): a shutdown that comes first must still end all.
    before = _children()
    pool = start_pool(2)
    pool.shutdown()
    for thread in threading.enumerate():
        if thread.name == "conversion-pool-start":
            thread.join(30)
    assert not any(p.is_alive() for p in _new_children(before))
    with pytest.raises(RuntimeError):
        pool.executor.submit(os.getpid)
