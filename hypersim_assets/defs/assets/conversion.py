"""The per-scene conversion asset: every included frame of a scene written in the
reference converter's layout, plus the scene's per-frame facts for the index."""

import time

import dagster as dg

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.scene_facts import completeness, summarize_scene_facts, write_scene_facts
from hypersim_assets.common.frame_facts import STATUS_CONVERTED
from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION, ConversionSettings, convert_arrays
from hypersim_assets.convert.previews import frame_preview_markdown
from hypersim_assets.convert.scene_conversion import convert_scene
from hypersim_assets.defs.assets.raw import raw_scene
from hypersim_assets.defs.dask_resource import DaskResource
from hypersim_assets.defs.partitions import scene_partitions
from hypersim_assets.defs.policies import TRANSIENT_RETRY, failures_of
from hypersim_assets.defs.resources import ConversionResource, DownloadResource, HypersimResource
from hypersim_assets.download.scene_fetch import delete_scene_raw

GROUP = "hypersim_dataset"


def _preview(scene_dir, scene: str, facts, camera_params, tilt_shift: bool) -> str:
    """Markdown previews of the scene's first converted frame (re-converted in memory from the raw files)."""
    for fact in facts:
        if fact.status == STATUS_CONVERTED:
            try:
                frame = convert_arrays(scene_dir, scene, fact.camera, fact.frame_id, camera_params, tilt_shift)
            except Exception as exc:  # a preview must never fail a materialisation
                return f"no preview: {type(exc).__name__}: {exc}"
            title = f"{scene} {fact.camera} frame {fact.frame_id:04d}"
            return frame_preview_markdown(title, frame.rgb, frame.depth_mm, frame.semantic)
    return "no converted frame to preview"


@dg.asset(
    group_name=GROUP,
    partitions_def=scene_partitions,
    deps=[raw_scene],
    kinds={"png", "json"},
    code_version=CONVERTER_VERSION,
    retry_policy=TRANSIENT_RETRY,
)
def converted_scene(
    context: dg.AssetExecutionContext,
    hypersim: HypersimResource,
    conversion: ConversionResource,
    download: DownloadResource,
    dask: DaskResource,
) -> dg.MaterializeResult:
    """One scene's frames as PNG/JSON/TXT in the reference converter's layout, with per-frame facts for the index."""
    scene = context.partition_key
    raw_root = hypersim.raw_root()
    with failures_of(f"scene {scene}", permanent=(md.MetadataError,)):
        tables = md.read_metadata(raw_root)
        frames = md.scene_frames(tables, scene)
        camera_params = md.camera_parameters_row(tables, scene) if frames else None
    if not frames:
        raise dg.Failure(f"scene {scene} has no included frame in the metadata", allow_retries=False)
    settings = ConversionSettings(
        tilt_shift=conversion.tilt_shift,
        png_compression=conversion.png_compression,
        skip_existing=not conversion.force,
    )
    started = time.monotonic()
    with failures_of(f"scene {scene}"), dask.executor() as executor:
        if executor is not None:
            where = dask.dask_config().scheduler_address or "a local cluster"
            context.log.info(f"{scene}: converting {len(frames)} frames on Dask ({where})")
        facts = convert_scene(
            raw_root / scene,
            scene,
            frames,
            camera_params,
            hypersim.dataset_root(),
            settings,
            workers=conversion.worker_count(),
            executor=executor,
            holder=f"run {context.run.run_id}",  # named in the error of a second writer that waits in vain
        )
    seconds = time.monotonic() - started
    with failures_of(f"scene {scene}: facts"):
        facts_file = write_scene_facts(hypersim.root(), scene, facts)
    summary = summarize_scene_facts(facts, frames, hypersim.dataset_root())
    context.log.info(
        f"{scene}: {summary['converted']} converted, {summary['input_missing']} missing, {summary['failed']} failed "
        f"in {seconds:.1f} s"
    )
    verdict = completeness(summary["failed"], summary["input_missing"])
    preview = _preview(raw_root / scene, scene, facts, camera_params, conversion.tilt_shift)
    if download.delete_raw_after_conversion and summary["failed"] == 0:
        delete_scene_raw(raw_root, scene)
        context.log.info(f"{scene}: raw files deleted (delete_raw_after_conversion)")
    return dg.MaterializeResult(
        metadata={
            "frames": len(frames),
            "frames_converted": summary["converted"],
            "frames_skipped_unchanged": summary["skipped"],
            "frames_input_missing": summary["input_missing"],
            "frames_failed": summary["failed"],
            "complete": summary["failed"] == 0,
            "completeness": verdict.description,
            "seconds": round(seconds, 3),
            "frames_per_second": round(len(frames) / seconds, 3) if seconds > 0 else 0.0,
            "output_bytes": summary["output_bytes"],
            "mean_void_fraction": summary["mean_void_fraction"],
            "warnings": dg.MetadataValue.json(summary["warnings"]),
            "converter_version": CONVERTER_VERSION,
            "facts": dg.MetadataValue.path(str(facts_file)),
            "frame_counts": dg.MetadataValue.md(summary["preview_markdown"]),
            "preview": dg.MetadataValue.md(preview),
        },
        data_version=dg.DataVersion(summary["fingerprint"]),
    )
