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

Streaming: :func:`stream_scene_conversion` starts (and warms) the pool before the frames'
inputs are all there, and takes frames as their inputs arrive (:meth:`SceneConversion.member_ready`,
fed by a download), so download and conversion overlap; :func:`convert_scene` is the same with
every input already on disk.

Pool workers end when the process that started the pool dies (:mod:`.parent_watch`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypersim_assets.common.atomic_files import temp_writer_gone
from hypersim_assets.common.file_lock import exclusive_lock
from hypersim_assets.common.frame_facts import STATUS_CONVERTED
from hypersim_assets.common.layout import (
    INTRINSICS_MODALITIES,
    JSON_MODALITIES,
    PNG_MODALITIES,
    SCENE_CLASS_MODALITY,
    SPLIT_DIR_NAMES,
)
from hypersim_assets.convert.frame_conversion import (
    STATE_DIR,
    ConversionSettings,
    FrameFacts,
    convert_frame,
)
from hypersim_assets.convert.hdf5_frames import input_members
from hypersim_assets.convert.previews import convert_with_preview, preview_from_files
from hypersim_assets.convert.warm_pool import ConversionPool, adopt_pool, return_pool, start_pool

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
                if name.startswith(".") and name.endswith(".tmp") and temp_writer_gone(name):
                    try:
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
                    except FileNotFoundError:
                        pass
    return removed


def _convert_one(args: tuple) -> FrameFacts:
    return convert_frame(*args)


@dataclass
class ConversionTimes:
    """When things happened in one scene's conversion, in ``time.monotonic()`` seconds of this process."""

    started: float  # the lock was held, the pool being started
    pool_ready: float | None = None  # every worker had imported the conversion code (own pool only)
    pool_adopted: bool | None = None  # own pool only: True when it was this process's warm pool
    first_submitted: float | None = None  # the first frame went to the pool
    last_done: float | None = None  # the last frame's result was in


class SceneConversion:
    """One scene's frames, converted as their inputs become ready (made by :func:`stream_scene_conversion`).

    A frame goes to the pool once every member it reads (:func:`~.hdf5_frames.input_members`) was
    reported by :meth:`member_ready`; :meth:`finish` sends the frames still waiting (an input that
    never came: the frame becomes ``input_missing`` as in a plain conversion) and collects the
    facts. Without a pool (``workers`` <= 1 and no executor) frames are converted in
    :meth:`finish`, in this process, one after the other.
    """

    def __init__(
        self,
        tasks: list[tuple],
        pool: cf.Executor | None,
        progress: Progress | None,
        preview: bool,
        times: ConversionTimes,
    ) -> None:
        self._tasks, self._pool, self._progress, self.times = tasks, pool, progress, times
        self._lock = threading.Lock()
        self._futures: dict[cf.Future, int] = {}
        self._submitted: set[int] = set()
        self._missing: list[int] = []  # per frame, inputs not yet reported
        self._waiting: dict[str, list[int]] = {}  # member name -> frames that still wait for it
        self._seen: set[str] = set()
        for i, task in enumerate(tasks):
            scene, camera, frame_id = task[1], task[2], task[3]
            members = set(input_members(scene, camera, frame_id))
            self._missing.append(len(members))
            for m in members:
                self._waiting.setdefault(m, []).append(i)
        self._want_preview = preview
        self._preview_frame: int | None = None  # the frame whose worker makes the preview
        self._preview_markdown: str | None = None  # what that worker made (None: skipped or not converted)
        self.preview = "no converted frame to preview"

    def member_ready(self, member: str) -> None:
        """Note that ``member`` (a full zip member name) is verified and in place; sends the frames it
        completes to the pool. Thread-safe; quick (never waits for a conversion); a member reported
        twice counts once."""
        with self._lock:
            if member in self._seen:
                return
            self._seen.add(member)
            for i in self._waiting.pop(member, ()):
                self._missing[i] -= 1
                if self._missing[i] == 0:
                    self._submit(i)

    def _submit(self, i: int) -> None:
        # Called with self._lock held.
        if i in self._submitted or self._pool is None:
            return
        self._submitted.add(i)
        if self.times.first_submitted is None:
            self.times.first_submitted = time.monotonic()
        future = self._pool.submit(self._task_function(i), self._tasks[i])
        future.add_done_callback(self._note_done)
        self._futures[future] = i

    def _task_function(self, i: int) -> Callable[[tuple], Any]:
        """The first frame sent also makes the preview, from its arrays in memory (the worker
        converting it holds them), so the preview is ready with that frame at no extra cost."""
        if self._want_preview and self._preview_frame is None:
            self._preview_frame = i
            return convert_with_preview
        return _convert_one

    def _take(self, i: int, value: Any) -> FrameFacts:
        """The facts of frame ``i`` from its task's return value (noting the preview it made)."""
        if i == self._preview_frame:
            value, self._preview_markdown = value
        return value

    def _note_done(self, _future: cf.Future) -> None:
        self.times.last_done = time.monotonic()

    def finish(self) -> list[FrameFacts]:
        """Send every frame not yet sent, wait for all, and return the facts in the frames' order;
        ``progress(done, total, facts)`` is called (in this thread) as results come in."""
        results: list[FrameFacts | None] = [None] * len(self._tasks)
        total = len(self._tasks)
        if self._pool is None:
            self.times.first_submitted = time.monotonic()
            for i, task in enumerate(self._tasks):
                results[i] = self._take(i, self._task_function(i)(task))
                if self._progress:
                    self._progress(i + 1, total, results[i])  # type: ignore[arg-type]
            self.times.last_done = time.monotonic()
            if self._want_preview:
                self.preview = self._collect_preview(results)  # type: ignore[arg-type]
            return results  # type: ignore[return-value]
        with self._lock:
            for i in range(total):
                self._submit(i)
            futures = dict(self._futures)
        done = 0
        for future in cf.as_completed(futures):
            i = futures[future]
            results[i] = self._take(i, future.result())
            done += 1
            if self._progress:
                self._progress(done, total, results[i])  # type: ignore[arg-type]
        if self._want_preview:
            self.preview = self._collect_preview(results)  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def recheck(self, results: list[FrameFacts]) -> list[FrameFacts]:
        """Run every frame once more after a download that started over (the archive changed
        mid-scene): a frame converted from a member that was fetched again has a done-marker whose
        input sizes and times no longer match, so it is converted again; the others are skipped
        and keep their first facts. Returns the facts in the frames' order."""
        settings_of = [task[-1] for task in self._tasks]
        if not all(s.skip_existing for s in settings_of):
            return results  # forced conversion: every frame was converted from the final files anyway
        if self._pool is None:
            again = [_convert_one(task) for task in self._tasks]
        else:
            again = list(self._pool.map(_convert_one, self._tasks))
        return [old if new.skipped else new for old, new in zip(results, again, strict=True)]

    def _collect_preview(self, results: list[FrameFacts]) -> str:
        """The preview the first frame sent made; when it made none (it was skipped, done by an
        earlier run, or not converted), the preview of that frame if done, else of the first
        converted one, decoded from its written PNGs: no frame is converted twice."""
        if self._preview_markdown is not None:
            return self._preview_markdown
        shown = self._preview_frame
        if shown is None or results[shown].status != STATUS_CONVERTED:
            shown = next((i for i, f in enumerate(results) if f.status == STATUS_CONVERTED), None)
        if shown is None:
            return "no converted frame to preview"
        _scene_dir, scene, camera, frame_id, split, _cls, _params, root, _settings = self._tasks[shown]
        return preview_from_files(root, scene, camera, frame_id, split)

    def cancel(self) -> None:
        """Cancel the frames not yet started and wait for the running ones (their files are written
        whole, their done-markers last), so nothing writes after this returns."""
        with self._lock:
            self._pool = None  # member_ready after this sends nothing
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        cf.wait([f for f in futures if not f.cancelled()])


def _start_pool(workers: int, times: ConversionTimes) -> ConversionPool:
    """This process's kept pool when it has one of ``workers`` workers free (:mod:`.warm_pool`: an
    earlier scene of the same command handed it back), else a new warmed forkserver pool.
    ``times.pool_ready`` is set when every worker has started (the conversion's start, at the
    latest, for a pool that was ready before it)."""
    pool = adopt_pool(workers)
    times.pool_adopted = pool is not None
    pool = pool or start_pool(workers)
    pool.on_ready(lambda ready_at: setattr(times, "pool_ready", max(ready_at, times.started)))
    return pool


@contextlib.contextmanager
def stream_scene_conversion(
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
    preview: bool = False,
) -> Iterator[SceneConversion]:
    """Hold the scene's conversion lock, remove stale temp files, start the pool (``workers`` > 1:
    this process's warm pool if free (:mod:`.warm_pool`), else a warmed forkserver pool for this
    call; ``executor``: the caller's, e.g. Dask) and yield a
    :class:`SceneConversion` to feed with :meth:`~SceneConversion.member_ready` and end with
    :meth:`~SceneConversion.finish`.

    Leaving the block by an exception (a failed download, Ctrl-C) cancels the frames not started
    and waits for the running ones: frames already converted stay converted and done-marked,
    nothing is half-written. With ``preview``, :attr:`SceneConversion.preview` is markdown
    previews of the first frame sent (or, if that one was not converted, the first converted).
    """
    lock = conversion_lock_path(dataset_root, scene)
    with exclusive_lock(lock, lock_timeout_s, label=holder, what=f"scene {scene}'s conversion"):
        times = ConversionTimes(started=time.monotonic())
        remove_stale_temp_files(dataset_root, scene)
        params = plain_camera_params(camera_params)
        tasks = [
            (Path(scene_dir), scene, cam, fid, split, scene_class, params, Path(dataset_root), settings)
            for cam, fid, split, scene_class in map(_frame_tuple, frames)
        ]
        own = _start_pool(workers, times) if executor is None and workers > 1 else None
        conversion = SceneConversion(tasks, own.executor if own else executor, progress, preview, times)
        clean = False
        try:
            yield conversion
            clean = True
        except BaseException:
            conversion.cancel()
            raise
        finally:
            if own is not None:
                # Kept for this process's next scene while a command's warm pool registry is open
                # and this conversion ended cleanly; otherwise shut down, as without a registry.
                return_pool(own, reusable=clean)


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
    """Convert ``frames`` (FrameTask-like objects or (camera, frame_id, split, scene_class) tuples) of one scene,
    every input already on disk.

    ``workers`` > 1 starts a process pool (forkserver) for this call; ``executor`` uses the
    caller's instead. Returns the facts in the order of ``frames``; ``progress(done, total,
    facts)`` is called as frames finish. Holds the scene's conversion lock throughout
    (waits up to ``lock_timeout_s`` seconds; ``holder`` labels this writer, e.g. a run id,
    in the error another waiter gets).
    """
    with stream_scene_conversion(
        scene_dir,
        scene,
        frames,
        camera_params,
        dataset_root,
        settings,
        workers,
        executor,
        progress,
        lock_timeout_s,
        holder,
    ) as conversion:
        return conversion.finish()


def frames_of(frames: Sequence[Any]) -> list[tuple[str, int, str, str]]:
    """The frames as (camera, frame_id, split, scene_class) tuples."""
    return [_frame_tuple(f) for f in frames]
