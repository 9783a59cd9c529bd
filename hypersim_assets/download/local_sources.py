"""A scene from an unpacked local folder: hard-link (or copy) the selected files into the
raw folder and record them in the manifest, verified by size only (a folder carries no CRC)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.errors import DownloadError
from hypersim_assets.download.files import disk_full_or_none, unlink
from hypersim_assets.download.manifest import PART_SUFFIX, member_path, saved_manifest, scene_lock
from hypersim_assets.download.report import FetchProgress, FetchReport, finish


def copy_unpacked(
    src_dir: Path,
    scene: str,
    raw_root: Path,
    selection: MemberSelection,
    progress: Callable[[FetchProgress], None] | None,
    lock_timeout_s: float | None,
) -> FetchReport:
    """Hard-link (or copy) the selected files of an unpacked scene; verified by size only (no CRC available)."""
    started = time.monotonic()
    report = FetchReport(scene=scene, verified="size")
    files = sorted(p for p in src_dir.rglob("*") if p.is_file() and not p.name.startswith(".hypersim-"))
    chosen = [(p, f"{scene}/{p.relative_to(src_dir).as_posix()}") for p in files]
    chosen = [(p, name) for p, name in chosen if selection.matches(scene, name)]
    report.members_selected = len(chosen)
    report.bytes_selected = sum(p.stat().st_size for p, _ in chosen)
    scene_dir = raw_root / scene
    with scene_lock(scene_dir, lock_timeout_s), saved_manifest(scene_dir, scene) as manifest:
        manifest.set_archive(str(src_dir), 0, None)
        for index, (src, name) in enumerate(chosen, 1):
            dest = member_path(raw_root, scene, name)
            size = src.stat().st_size
            entry = {"size": size, "crc32": None, "compressed_size": size, "verified": "size"}
            if dest.exists() and (
                dest.samefile(src) or (manifest.entry(name) == entry and dest.stat().st_size == size)
            ):
                report.members_skipped += 1
                manifest.record(name, entry, dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + PART_SUFFIX)
            unlink(tmp)
            try:
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
                    report.bytes_fetched += size
                if tmp.stat().st_size != size:
                    raise DownloadError(f"scene {scene}: copy of {src} has {tmp.stat().st_size} bytes, expected {size}")
                os.replace(tmp, dest)
            except OSError as exc:
                unlink(tmp)
                full = disk_full_or_none(exc, tmp, scene)
                if full is not None:
                    raise full from exc
                raise
            manifest.record(name, entry, dest)
            report.members_fetched += 1
            if progress is not None:
                progress(FetchProgress(scene, name, index, len(chosen), report.bytes_fetched))
    return finish(report, started)
