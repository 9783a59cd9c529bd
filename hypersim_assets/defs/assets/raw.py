"""Raw data: the three metadata CSVs (which define the scene partitions), and the
``raw_scene`` spec with its download (materialised by the scene step in ``scene.py``)."""

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

from hypersim_assets.catalog import metadata as md
from hypersim_assets.common.layout import METADATA_FILES
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME, scene_partitions
from hypersim_assets.defs.policies import TRANSIENT_RETRY, failures_of
from hypersim_assets.defs.resources import DownloadResource, HypersimResource
from hypersim_assets.download.file_fetch import fetch_file
from hypersim_assets.download.http_client import RetryConfig
from hypersim_assets.download.manifest import manifest_fingerprint, verify_scene_members
from hypersim_assets.download.report import FetchProgress
from hypersim_assets.download.scene_fetch import MemberReady, fetch_scene
from hypersim_assets.download.source import HypersimSource

GROUP = "hypersim_raw"


@dg.asset(
    group_name=GROUP,
    kinds={"csv"},
    retry_policy=TRANSIENT_RETRY,
)
def hypersim_metadata(context: dg.AssetExecutionContext, hypersim: HypersimResource) -> dg.MaterializeResult:
    """The three Hypersim metadata CSVs (splits, trajectories, camera parameters), fetched from the source and verified; they define one partition per public scene."""
    source = hypersim.parsed_source()
    raw_root = hypersim.raw_root()
    started = time.monotonic()
    with failures_of("metadata"):
        raw_root.mkdir(parents=True, exist_ok=True)
        sizes = _fetch_metadata_files(source, raw_root)
        tables = md.read_metadata(raw_root)
    scenes = md.public_scenes(tables.splits)
    known = set(context.instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME))
    new = [s for s in scenes if s not in known]
    if new:
        context.instance.add_dynamic_partitions(SCENES_PARTITIONS_NAME, new)
    # Partitions the metadata does not know (e.g. added by hand in the UI) are removed, so
    # the schedule never requests an invented scene (issue 11.5).
    stale = sorted(known - set(scenes))
    for key in stale:
        context.instance.delete_dynamic_partition(SCENES_PARTITIONS_NAME, key)
    if stale:
        context.log.warning(f"removed {len(stale)} scene partition(s) the metadata does not know: {stale[:20]}")
    summary = md.metadata_summary(tables)
    context.log.info(f"{len(scenes)} public scenes; {len(new)} new scene partitions")
    return dg.MaterializeResult(
        metadata={
            "source": str(source),
            "rows": summary["rows"],
            "included_frames": summary["included_frames"],
            "scenes": len(scenes),
            "trajectories": summary["trajectories"],
            "frames_per_split": dg.MetadataValue.json(summary["frames_per_split"]),
            "included_frames_per_split": dg.MetadataValue.json(summary["included_frames_per_split"]),
            "new_scene_partitions": len(new),
            "partitions_removed_not_in_metadata": dg.MetadataValue.json(stale[:50]),
            "bytes": sum(sizes.values()),
            "seconds": round(time.monotonic() - started, 3),
            "path": dg.MetadataValue.path(str(raw_root)),
        },
        data_version=dg.DataVersion(md.metadata_fingerprint(raw_root)),
    )


def _fetch_metadata_files(source: HypersimSource, raw_root: Path) -> dict[str, int]:
    """Fetch the three metadata files into ``raw_root`` at once, one connection each (bytes per name).

    Fetched one after the other they cost three round trips (and connection set-ups) in a row:
    340 ms against 120 ms at once over a 50 ms link (``hypersim-assets serve --rtt-ms 50``). Every
    fetch runs to its end; then the first failure in file order is raised, naming its file.
    """

    def fetch(name: str) -> int:
        location = source.metadata(name)
        with failures_of(f"metadata file {name} from {location}"):
            return fetch_file(location, raw_root / name, sha256=location.sha256)

    with ThreadPoolExecutor(max_workers=len(METADATA_FILES), thread_name_prefix="metadata") as pool:
        futures = {name: pool.submit(fetch, name) for name in METADATA_FILES}
    return {name: future.result() for name, future in futures.items()}


RAW_SCENE_KEY = dg.AssetKey("raw_scene")


def raw_scene_spec() -> dg.AssetSpec:
    """``raw_scene``, materialised by the scene step (``scene.py``). A function, not a module-level
    spec: the defs loader would take a module-level spec for a second definition of the key."""
    return dg.AssetSpec(
        RAW_SCENE_KEY,
        group_name=GROUP,
        partitions_def=scene_partitions,
        deps=[hypersim_metadata],
        kinds={"zip"},
        description="The members of one scene's zip that a conversion reads, fetched by HTTP Range, resumed, and "
        "verified by size and CRC-32.",
    )


def check_public_scene(scene: str, raw_root: Path) -> None:
    """A permanent failure unless ``scene`` has a frame in the public release of the metadata."""
    with failures_of(f"scene {scene}"):
        tables = md.read_metadata(raw_root)
    if scene not in set(md.public_scenes(tables.splits)):
        raise dg.Failure(
            f"scene {scene} has no frame in the public release of the metadata at {raw_root}", allow_retries=False
        )


def require_raw_scene(scene: str, raw_root: Path) -> None:
    """A permanent failure unless every member in ``scene``'s download manifest is on disk with its
    recorded size (a stat per member; the CRC-32 is the ``members_verified`` check's business).

    Converting without them would record the frames as lacking upstream input, which the index
    reads as "never will be converted"; so a conversion alone asks for ``raw_scene``.
    """
    problems = verify_scene_members(raw_root, scene, "size")
    if problems:
        listed = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise dg.Failure(
            f"scene {scene}: its raw files are not all on disk under {raw_root / scene} ({listed}): never fetched, "
            "or deleted (e.g. by delete_raw_after_conversion); materialise raw_scene together with converted_scene",
            allow_retries=False,
        )


def download_scene(
    context: dg.AssetExecutionContext,
    hypersim: HypersimResource,
    download: DownloadResource,
    on_member_ready: MemberReady | None = None,
) -> dg.MaterializeResult:
    """Fetch the partition's scene (telling ``on_member_ready`` of each verified member, see
    :func:`~hypersim_assets.download.scene_fetch.fetch_scene_members`) and report ``raw_scene``.
    The caller has checked the scene with :func:`check_public_scene`."""
    scene = context.partition_key
    source = hypersim.parsed_source()
    raw_root = hypersim.raw_root()
    location = source.unpacked_scene_dir(scene) or source.scene_zip(scene)
    download = download.checked()
    retry = RetryConfig(max_attempts=download.max_attempts, timeout_s=download.timeout_s)

    def progress(p: FetchProgress) -> None:
        if p.members_done == p.members_total or p.members_done % 50 == 0:
            context.log.info(f"{scene}: {p.members_done}/{p.members_total} members, {p.bytes_fetched} bytes")

    with failures_of(f"scene {scene} from {location}"):
        report = fetch_scene(
            source,
            scene,
            raw_root,
            download.selection(),
            workers=download.workers,
            coalesce_gap_bytes=download.coalesce_gap_bytes,
            retry=retry,
            progress=progress,
            verify=download.verify,
            on_member_ready=on_member_ready,
        )
    saving = 1.0 - report.bytes_selected / report.zip_bytes if report.zip_bytes else 0.0
    context.log.info(
        f"{scene}: fetched {report.members_fetched}, skipped {report.members_skipped} members; "
        f"{report.bytes_fetched} bytes of a {report.zip_bytes}-byte zip"
    )
    return dg.MaterializeResult(
        asset_key=RAW_SCENE_KEY,
        metadata={
            "source": str(location),
            "members_selected": report.members_selected,
            "members_fetched": report.members_fetched,
            "members_skipped": report.members_skipped,
            "members_resumed": report.resumed_members,
            "bytes_fetched": report.bytes_fetched,
            "bytes_selected": report.bytes_selected,
            "zip_bytes": report.zip_bytes,
            "saving_vs_full_zip": round(saving, 4),
            "seconds": round(report.seconds, 3),
            "throughput_mib_s": round(report.throughput / 2**20, 2),
            "retries": report.retries,
            "restarts_after_remote_change": report.restarts,
            "path": dg.MetadataValue.path(str(raw_root / scene)),
        },
        data_version=dg.DataVersion(manifest_fingerprint(raw_root, scene)),
    )
