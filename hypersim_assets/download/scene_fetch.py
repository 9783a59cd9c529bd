"""The scene loop: read the zip's central directory, pick the selected members, fetch them
on a thread pool under the scene's lock, and start over from a fresh central directory when
the archive changes mid-scene; plus deleting a scene's raw folder.

Failure policy: a member whose CRC-32 does not match is fetched once more from its first
byte, then :class:`MemberCorrupt`; an archive whose ETag changes mid-scene is started over
(at most ``MAX_RESTARTS`` times; members already verified are kept when their CRC and sizes
did not change); a full disk raises :class:`DiskFull` and removes that member's partial
files. A second process fetching the same scene waits for the lock (up to
``lock_timeout_s``, default 6 h, then :class:`SceneLocked`) and then finds the work done.

Requests start scene-wide members first, then frame by frame (:func:`~.coalesce.order_runs`),
and ``on_member_ready`` hears of each member as soon as it is verified, so a caller can
convert a frame while later frames are still arriving.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.coalesce import DEFAULT_GAP_BYTES, fetch_run, order_runs, plan_runs
from hypersim_assets.download.errors import RemoteChanged, SceneNotFound, SourceNotFound
from hypersim_assets.download.http_client import HttpClient, RetryConfig, TransferStats
from hypersim_assets.download.local_sources import copy_unpacked
from hypersim_assets.download.manifest import (
    PART_SUFFIX,
    SIDECAR_SUFFIX,
    VerifyMode,
    check_archive_members,
    check_scene_name,
    member_path,
    parse_verify_mode,
    saved_manifest,
    scene_lock,
)
from hypersim_assets.download.member_fetch import SceneRun, fetch_member, member_complete, resume_point
from hypersim_assets.download.remote_zip import (
    ByteRangeReader,
    FileRangeReader,
    HttpRangeReader,
    ZipMember,
    read_central_directory,
)
from hypersim_assets.download.report import FetchProgress, FetchReport, finish
from hypersim_assets.download.source import HypersimSource, Location

MAX_RESTARTS = 2  # fresh central-directory reads after the archive changed mid-scene

MemberReady = Callable[[str], None]


def _open_reader(location: Location, scene: str, client: HttpClient) -> ByteRangeReader:
    try:
        if location.is_remote:
            return HttpRangeReader(client, location.url)  # type: ignore[arg-type]
        return FileRangeReader(location.path)  # type: ignore[arg-type]
    except (SourceNotFound, FileNotFoundError) as exc:
        raise SceneNotFound(scene, str(location)) from exc


def _run_members(
    run: SceneRun,
    todo: list[list[ZipMember]],
    workers: int,
    progress: Callable[[FetchProgress], None] | None,
    done_before: int,
    total: int,
    bytes_so_far: Callable[[], int],
    cancel: Callable[[], None],
    on_member_ready: MemberReady | None = None,
) -> None:
    """Fetch ``todo`` (runs of members, see :func:`plan_runs`) on a thread pool, one request per run;
    on the first error stop starting new runs and raise it.

    A ``KeyboardInterrupt`` or ``SystemExit`` in the calling thread (Ctrl-C, or SIGTERM turned
    into an exception) calls ``cancel`` so running members stop at their next chunk or retry
    wait, keeping their ``.part`` files for a later resume, and propagates at once.
    """
    errors: list[BaseException] = []
    done = done_before
    done_lock = threading.Lock()

    def member_done(member: ZipMember) -> None:
        nonlocal done
        with done_lock:
            run.fetched += 1
            done += 1
            n = done
        if on_member_ready is not None:
            on_member_ready(member.name)
        if progress is not None:
            progress(FetchProgress(run.scene, member.name, n, total, bytes_so_far()))

    def task(members: list[ZipMember]) -> None:
        if run.abort.is_set():
            return
        try:
            if len(members) == 1:
                fetch_member(run, members[0])
                member_done(members[0])
            else:
                fetch_run(run, members, member_done)
        except BaseException as exc:
            run.abort.set()
            errors.append(exc)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"fetch-{run.scene}")
    try:
        # In the order given (order_runs); archive order was measured faster than largest-run-first.
        futures = [pool.submit(task, members) for members in todo]
        for future in futures:
            future.result()
    except BaseException:
        run.abort.set()
        cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if errors:
        # A changed archive wins: it explains the other failures and is recoverable.
        changed = [e for e in errors if isinstance(e, RemoteChanged)]
        raise changed[0] if changed else errors[0]


def fetch_scene_members(
    zip_location: Location,
    scene: str,
    raw_root: Path,
    selection: MemberSelection,
    workers: int = 16,
    retry: RetryConfig = RetryConfig(),
    progress: Callable[[FetchProgress], None] | None = None,
    verify: VerifyMode | bool = "crc",
    lock_timeout_s: float | None = 6 * 3600.0,
    on_retry: Callable[[str, BaseException, int], None] | None = None,
    coalesce_gap_bytes: int = DEFAULT_GAP_BYTES,
    on_member_ready: MemberReady | None = None,
    fetch_order: str = "frames",
) -> FetchReport:
    """Fetch the members of ``scene`` that ``selection`` picks into ``raw_root/<member name>``.

    ``zip_location`` is the scene's zip (URL or local path) or a local folder of
    the already unpacked scene (then files are hard-linked or copied and checked
    by size only). Members a previous run completed are checked against the
    manifest (``verify="crc"``, the default: size and CRC-32 of the local file;
    ``"size"``: size only) and fetched again when they no longer match. Waits up to ``lock_timeout_s`` seconds for another
    process fetching the same scene. Members that lie at most ``coalesce_gap_bytes`` apart in
    the zip share one ranged request (see :mod:`~hypersim_assets.download.coalesce`; a negative
    value: one request per member); members with a ``.part`` file to continue get their own.
    Requests start in ``fetch_order`` (:func:`~hypersim_assets.download.coalesce.order_runs`).

    ``on_member_ready(member_name)`` (a full zip member name) is called once per selected
    member as soon as it is verified and in place: for members a previous run left complete,
    in the calling thread before any request; for fetched ones, in the fetching thread that
    verified it, so several threads may call it at once (it must be thread-safe and quick;
    an exception from it fails the scene like a fetch error). After a restart on a changed
    archive, members already reported may be reported again (and a kept member's bytes did
    not change). Not called for an unpacked local source (``zip_location`` a folder): every
    member is in place when this returns.
    """
    check_scene_name(scene)
    check_crc = parse_verify_mode(verify) == "crc"
    raw_root = Path(raw_root)
    if zip_location.path is not None and Path(zip_location.path).is_dir():
        return copy_unpacked(Path(zip_location.path), scene, raw_root, selection, progress, lock_timeout_s)
    started = time.monotonic()
    gap = coalesce_gap_bytes if zip_location.is_remote else -1  # a local file has no round trips to save
    report = FetchReport(scene=scene)
    stats = TransferStats()
    scene_dir = raw_root / scene
    with (
        scene_lock(scene_dir, lock_timeout_s),
        HttpClient(retry, stats, on_retry, pool_size=max(16, workers)) as client,
        saved_manifest(scene_dir, scene) as manifest,
    ):
        file_bytes = 0  # bytes read by local-file readers of finished attempts
        reader: ByteRangeReader | None = None

        def transferred() -> int:
            local = getattr(reader, "bytes_read", 0) if reader is not None else 0
            return stats.bytes_received + file_bytes + local

        try:
            for restart in range(MAX_RESTARTS + 1):
                run: SceneRun | None = None
                try:
                    reader = _open_reader(zip_location, scene, client)
                    directory = read_central_directory(reader)
                    check_archive_members(scene, str(zip_location), directory.members)
                    manifest.set_archive(str(zip_location), directory.size, directory.etag)
                    members = [m for m in directory.members if selection.matches(scene, m.name)]
                    run = SceneRun(scene, raw_root, reader, directory, manifest)
                    # Partial members fetched under another ETag cannot be continued: drop them now.
                    partial: set[str] = set()
                    for m in members:
                        dest = member_path(raw_root, scene, m.name)
                        part, sidecar = (
                            dest.with_name(dest.name + PART_SUFFIX),
                            dest.with_name(dest.name + SIDECAR_SUFFIX),
                        )
                        if (sidecar.exists() or part.exists()) and resume_point(run, m, part, sidecar) is not None:
                            partial.add(m.name)
                    todo = [m for m in members if not member_complete(run, m, check_crc)]
                    if on_member_ready is not None:
                        waiting = {m.name for m in todo}
                        for m in members:
                            if m.name not in waiting:
                                on_member_ready(m.name)
                    runs = [[m] for m in todo if m.name in partial]
                    runs += plan_runs([m for m in todo if m.name not in partial], gap)
                    runs = order_runs(runs, scene, fetch_order)
                    fetched_before = report.members_fetched  # in earlier rounds of this call: fetched, not skipped
                    report.members_selected = len(members)
                    report.bytes_selected = sum(m.compressed_size for m in members)
                    report.zip_bytes = directory.size
                    report.members_skipped = max(0, len(members) - len(todo) - fetched_before)
                    _run_members(
                        run,
                        runs,
                        workers,
                        progress,
                        len(members) - len(todo),
                        len(members),
                        transferred,
                        client.cancel,
                        on_member_ready,
                    )
                except RemoteChanged:
                    if restart == MAX_RESTARTS:
                        raise
                    report.restarts += 1
                    continue
                finally:
                    if run is not None:
                        report.members_fetched += run.fetched
                        report.resumed_members += run.resumed_members
                        report.resumed_bytes += run.resumed_bytes
                    file_bytes += getattr(reader, "bytes_read", 0)
                    reader = None
                break
        finally:
            report.bytes_fetched = transferred()
            report.retries = stats.retries
    return finish(report, started)


def fetch_scene(
    source: HypersimSource,
    scene: str,
    raw_root: Path,
    selection: MemberSelection,
    **kwargs: object,
) -> FetchReport:
    """:func:`fetch_scene_members` from a source: its unpacked scene folder if it has one, else its zip."""
    unpacked = source.unpacked_scene_dir(scene)
    location = Location(path=unpacked) if unpacked is not None else source.scene_zip(scene)
    return fetch_scene_members(location, scene, raw_root, selection, **kwargs)  # type: ignore[arg-type]


def delete_scene_raw(raw_root: Path, scene: str, lock_timeout_s: float | None = 600.0) -> int:
    """Remove ``raw_root/<scene>`` (raw files, manifest, partial downloads); returns the bytes freed.

    Waits for a running download of the scene to finish (its lock), then moves
    the folder aside atomically before deleting it, so nobody sees half of it.
    """
    check_scene_name(scene)
    raw_root = Path(raw_root)
    scene_dir = raw_root / scene
    if scene_dir.is_symlink():
        raise ValueError(f"{scene_dir} is a symlink; refusing to delete through it")
    if not scene_dir.exists():
        return 0
    with scene_lock(scene_dir, lock_timeout_s):
        doomed = raw_root / f".{scene}.deleting-{os.getpid()}-{threading.get_ident()}"
        os.replace(scene_dir, doomed)
    freed = sum(p.lstat().st_size for p in doomed.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(doomed)
    return freed
