"""Converting the frames of one unpacked scene, one task per frame, in this process or
on a pool of worker processes (or any ``concurrent.futures.Executor``, e.g. a Dask
client's ``get_executor()``). Memory stays flat: a task holds one frame.

One writer per scene: a conversion holds ``<dataset>/.conversion/<scene>/.lock``
(``flock``) for its whole run; a second conversion of the scene waits for it (at most
``lock_timeout_s``, then :class:`~hypersim_assets.common.file_lock.LockTimeout` naming the
holder) and then finds the frames done. Holding the lock, it removes the temp files
(``.<name>.<pid>.<random>.tmp``) that writers which are gone left in the scene's output
folders; temps whose writer pid still runs on this host are left alone. So a re-run
after a crash leaves the same files as a clean run.

Pool workers end when the process that started the pool dies (:mod:`.parent_watch`).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypersim_assets.common.file_lock import exclusive_lock, pid_alive
from hypersim_assets.common.layout import (
    INTRINSICS_MODALITIES,
    JSON_MODALITIES,
    PNG_MODALITIES,
    SCENE_CLASS_MODALITY,
    SPLIT_DIR_NAMES,
)
from hypersim_assets.convert.frame_conversion import STATE_DIR, ConversionSettings, FrameFacts, convert_frame
from hypersim_assets.convert.parent_watch import exit_with_owner, owner_initializer_args

Progress = Callable[[int, int, FrameFacts], None]

LOCK_NAME = ".lock"  # in <dataset>/.conversion/<scene>/
DEFAULT_LOCK_TIMEOUT_S = 6 * 3600.0  # a whole scene's conversion fits in this with room to spare


def _frame_tuple(frame: Any) -> tuple[str, int, str, str]:
    """(camera, frame_id, split, scene_class) of a FrameTask-like object or a 4-tuple."""
    if hasattr(frame, "camera"):
        return frame.camera, int(frame.frame_id), frame.split, frame.scene_class
    camera, frame_id, split, scene_class = frame
    return camera, int(frame_id), split, scene_class


def plain_camera_params(camera_params: Mapping[str, Any]) -> dict[str, Any]:
    """A picklable plain dict of one camera-parameters row (e.g. from a pandas Series)."""
    items = camera_params.items() if hasattr(camera_params, "items") else dict(camera_params).items()
    return {str(k): v for k, v in items}


def temp_writer_pid(name: str) -> int | None:
    """The writer's pid in a temp file name ``.<name>.<pid>.<random>.tmp`` (``atomic_files``), else None."""
    parts = name.split(".")
    if len(parts) >= 5 and parts[-3].isdigit():
        return int(parts[-3])
    return None


def _writer_gone(name: str) -> bool:
    pid = temp_writer_pid(name)
    # A name without a pid was written by an older version: its writer is long gone.
    return pid is None or (pid != os.getpid() and not pid_alive(pid))


def conversion_lock_path(dataset_root: Path, scene: str) -> Path:
    """The scene's conversion lock file."""
    return Path(dataset_root) / STATE_DIR / scene / LOCK_NAME


def remove_stale_temp_files(dataset_root: Path, scene: str) -> int:
    """Delete ``.<name>.<pid>.<random>.tmp`` files below this scene's output folders whose
    writer is gone (its pid no longer runs on this host); returns how many."""
    root = Path(dataset_root)
    removed = 0
    folders = [root / STATE_DIR / scene]
    for split_dir in SPLIT_DIR_NAMES.values():
        for modality in (*PNG_MODALITIES, *JSON_MODALITIES, SCENE_CLASS_MODALITY, *INTRINSICS_MODALITIES):
            folders.append(root / split_dir / modality / scene)
    for folder in folders:
        if not folder.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(folder):
            for name in names:
                if name.startswith(".") and name.endswith(".tmp") and _writer_gone(name):
                    try:
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
                    except FileNotFoundError:
                        pass
    return removed


def _convert_one(args: tuple) -> FrameFacts:
    return convert_frame(*args)


def convert_scene(
    scene_dir: Path,
    scene: str,
    frames: Iterable[Any],
    camera_params: Mapping[str, Any],
    dataset_root: Path,
    settings: ConversionSettings = ConversionSettings(),
    workers: int = 1,
    executor: cf.Executor | None = None,
    progress: Progress | None = None,
    lock_timeout_s: float | None = DEFAULT_LOCK_TIMEOUT_S,
    holder: str = "",
) -> list[FrameFacts]:
    """Convert ``frames`` (FrameTask-like objects or (camera, frame_id, split, scene_class) tuples) of one scene.

    ``workers`` > 1 starts a process pool (forkserver) for this call; ``executor`` uses the
    caller's instead. Returns the facts in the order of ``frames``; ``progress(done, total,
    facts)`` is called as frames finish. Holds the scene's conversion lock throughout
    (waits up to ``lock_timeout_s`` seconds; ``holder`` labels this writer, e.g. a run id,
    in the error another waiter gets).
    """
    lock = conversion_lock_path(dataset_root, scene)
    with exclusive_lock(lock, lock_timeout_s, label=holder, what=f"scene {scene}'s conversion"):
        remove_stale_temp_files(dataset_root, scene)
        return _convert_locked(
            scene_dir, scene, frames, camera_params, dataset_root, settings, workers, executor, progress
        )


def _convert_locked(
    scene_dir: Path,
    scene: str,
    frames: Iterable[Any],
    camera_params: Mapping[str, Any],
    dataset_root: Path,
    settings: ConversionSettings,
    workers: int,
    executor: cf.Executor | None,
    progress: Progress | None,
) -> list[FrameFacts]:
    params = plain_camera_params(camera_params)
    tasks = [
        (Path(scene_dir), scene, cam, fid, split, scene_class, params, Path(dataset_root), settings)
        for cam, fid, split, scene_class in map(_frame_tuple, frames)
    ]
    results: list[FrameFacts | None] = [None] * len(tasks)
    if executor is None and workers <= 1:
        for i, task in enumerate(tasks):
            results[i] = _convert_one(task)
            if progress:
                progress(i + 1, len(tasks), results[i])
        return results  # type: ignore[return-value]
    own = executor is None
    pool = executor or cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("forkserver"),
        initializer=exit_with_owner,
        initargs=owner_initializer_args(),
    )
    try:
        futures = {pool.submit(_convert_one, task): i for i, task in enumerate(tasks)}
        done = 0
        for fut in cf.as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            done += 1
            if progress:
                progress(done, len(tasks), results[i])
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
    return results  # type: ignore[return-value]


def frames_of(frames: Sequence[Any]) -> list[tuple[str, int, str, str]]:
    """The frames as (camera, frame_id, split, scene_class) tuples."""
    return [_frame_tuple(f) for f in frames]
