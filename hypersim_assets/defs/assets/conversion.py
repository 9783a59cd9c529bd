"""Conversion: the ``converted_scene`` spec (every included frame of a scene written in
the reference converter's layout, plus the scene's per-frame facts for the index) and
the pieces of its step (materialised by the scene step in ``scene.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.scene_facts import completeness, summarize_scene_facts, write_scene_facts
from hypersim_assets.common.frame_facts import STATUS_FAILED
from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION, ConversionSettings, FrameFacts
from hypersim_assets.convert.scene_conversion import ConversionTimes, SceneConversion, stream_scene_conversion
from hypersim_assets.defs.assets.raw import RAW_SCENE_KEY
from hypersim_assets.defs.dask_resource import DaskResource
from hypersim_assets.defs.partitions import scene_partitions
from hypersim_assets.defs.policies import failures_of
from hypersim_assets.defs.resources import ConversionResource, DownloadResource, HypersimResource
from hypersim_assets.download.scene_fetch import delete_scene_raw

GROUP = "hypersim_dataset"
MAX_FRAMES_LISTED = 50  # failed frames named in the run log and the metadata; the facts file has them all

CONVERTED_SCENE_KEY = dg.AssetKey("converted_scene")


def converted_scene_spec() -> dg.AssetSpec:
    """``converted_scene``, materialised by the scene step (``scene.py``; see :func:`.raw.raw_scene_spec`)."""
    return dg.AssetSpec(
        CONVERTED_SCENE_KEY,
        group_name=GROUP,
        partitions_def=scene_partitions,
        deps=[RAW_SCENE_KEY],
        kinds={"png", "json"},
        code_version=CONVERTER_VERSION,
        description="One scene's frames as PNG/JSON/TXT in the reference converter's layout, with per-frame facts "
        "for the index.",
    )


@dataclass(frozen=True)
class ScenePlan:
    """What a scene's conversion needs from the metadata."""

    frames: list[Any]  # md.FrameTask
    camera_params: Any  # the scene's camera-parameters row


def plan_scene(scene: str, hypersim: HypersimResource) -> ScenePlan:
    """The scene's included frames and camera parameters; a permanent failure when it has none."""
    with failures_of(f"scene {scene}", permanent=(md.MetadataError,)):
        tables = md.read_metadata(hypersim.raw_root())
        frames = md.scene_frames(tables, scene)
        camera_params = md.camera_parameters_row(tables, scene) if frames else None
    if not frames:
        raise dg.Failure(f"scene {scene} has no included frame in the metadata", allow_retries=False)
    return ScenePlan(frames, camera_params)


@contextlib.contextmanager
def open_conversion(
    context: dg.AssetExecutionContext,
    plan: ScenePlan,
    hypersim: HypersimResource,
    conversion: ConversionResource,
    dask: DaskResource,
) -> Iterator[SceneConversion]:
    """The partition's scene conversion, its pool started (Dask when configured), failures named by scene."""
    scene = context.partition_key
    settings = ConversionSettings(
        tilt_shift=conversion.tilt_shift,
        png_compression=conversion.png_compression,
        skip_existing=not conversion.force,
    )
    with failures_of(f"scene {scene}"), dask.executor() as executor:
        if executor is not None:
            where = dask.dask_config().scheduler_address or "a local cluster"
            context.log.info(f"{scene}: converting {len(plan.frames)} frames on Dask ({where})")
        with stream_scene_conversion(
            hypersim.raw_root() / scene,
            scene,
            plan.frames,
            plan.camera_params,
            hypersim.dataset_root(),
            settings,
            workers=conversion.worker_count(),
            executor=executor,
            holder=f"run {context.run.run_id}",  # named in the error of a second writer that waits in vain
            preview=True,
        ) as stream:
            yield stream


def _timing(times: ConversionTimes, finished: float, download_end: float | None) -> dict[str, float | bool]:
    """Where the step's conversion time went, in seconds (see ``converted_scene``'s metadata)."""
    out: dict[str, float] = {"seconds": finished - times.started}
    if times.pool_ready is not None:
        out["pool_start_seconds"] = times.pool_ready - times.started
    if times.first_submitted is not None:
        out["first_frame_sent_seconds"] = times.first_submitted - times.started
    if times.first_submitted is not None and times.last_done is not None:
        out["conversion_seconds"] = times.last_done - times.first_submitted
    if download_end is not None:
        out["download_seconds"] = download_end - times.started
        if times.first_submitted is not None:
            out["overlap_seconds"] = max(0.0, download_end - times.first_submitted)
    rounded: dict[str, float | bool] = {k: round(v, 3) for k, v in out.items()}
    if times.pool_adopted is not None:
        rounded["pool_adopted"] = times.pool_adopted
    return rounded


def _log_failed_frames(context: dg.AssetExecutionContext, scene: str, failed: list[dict[str, Any]]) -> None:
    """One warning per frame that failed on bad input (``<scene>/<camera>/<frame>: reason``), so the
    run's log says which frames the scene lacks and why, not only how many."""
    for item in failed[:MAX_FRAMES_LISTED]:
        context.log.warning(f"{scene}/{item['frame']} failed: {item['reason']}")
    if len(failed) > MAX_FRAMES_LISTED:
        context.log.warning(f"{scene}: {len(failed) - MAX_FRAMES_LISTED} more failed frames (facts/{scene}.parquet)")


def converted_result(
    context: dg.AssetExecutionContext,
    plan: ScenePlan,
    facts: list[FrameFacts],
    stream: SceneConversion,
    finished: float,
    hypersim: HypersimResource,
    download: DownloadResource,
    download_end: float | None = None,
) -> dg.MaterializeResult:
    """Write the scene's facts, delete its raw files if configured, and report ``converted_scene``.

    ``seconds``: from the conversion's start (lock held, pool starting) to its last result,
    which in the pipelined step spans the download (``download_seconds``, from the same start);
    ``conversion_seconds``: first frame sent to last frame done; ``overlap_seconds``: how much
    of that ran before the download ended; ``pool_start_seconds``: until every worker of an own
    pool had imported the conversion code (0 for a pool ready before the conversion began);
    ``pool_adopted``: the pool was the command's warm pool (started ahead of the runs, or handed
    back by its previous scene), not one the step started; ``first_frame_sent_seconds``: until
    the first frame went to the workers.
    """
    scene = context.partition_key
    frames = plan.frames
    with failures_of(f"scene {scene}: facts"):
        facts_file = write_scene_facts(hypersim.root(), scene, facts)
    summary = summarize_scene_facts(facts, frames, hypersim.dataset_root())
    timing = _timing(stream.times, finished, download_end)
    seconds = timing["seconds"]
    # "converted" counts frames written by this run; unchanged frames kept their outputs.
    written = summary["converted"] - summary["skipped"]
    context.log.info(
        f"{scene}: {written} converted, {summary['skipped']} unchanged, {summary['input_missing']} missing, "
        f"{summary['failed']} failed in {seconds:.1f} s"
    )
    failed = [f for f in summary["not_converted"] if f["status"] == STATUS_FAILED]
    _log_failed_frames(context, scene, failed)
    verdict = completeness(summary["failed"], summary["input_missing"])
    if download.delete_raw_after_conversion and summary["failed"] == 0:
        delete_scene_raw(hypersim.raw_root(), scene)
        context.log.info(f"{scene}: raw files deleted (delete_raw_after_conversion)")
    return dg.MaterializeResult(
        asset_key=CONVERTED_SCENE_KEY,
        metadata={
            "frames": len(frames),
            "frames_converted": summary["converted"],
            "frames_skipped_unchanged": summary["skipped"],
            "frames_input_missing": summary["input_missing"],
            "frames_failed": summary["failed"],
            "failed_frames": dg.MetadataValue.json(failed[:MAX_FRAMES_LISTED]),
            "complete": summary["failed"] == 0,
            "completeness": verdict.description,
            **timing,
            "frames_per_second": round(len(frames) / seconds, 3) if seconds > 0 else 0.0,
            "output_bytes": summary["output_bytes"],
            "mean_void_fraction": summary["mean_void_fraction"],
            "warnings": dg.MetadataValue.json(summary["warnings"]),
            "converter_version": CONVERTER_VERSION,
            "facts": dg.MetadataValue.path(str(facts_file)),
            "frame_counts": dg.MetadataValue.md(summary["preview_markdown"]),
            "preview": dg.MetadataValue.md(stream.preview),
        },
        data_version=dg.DataVersion(summary["fingerprint"]),
    )
