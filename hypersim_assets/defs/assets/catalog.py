"""The catalogue assets: the Parquet frame index over every metadata frame, and
the subsample views with the reference's text lists. Both refresh by declarative
automation after scene partitions materialise."""

import time

import dagster as dg
import pyarrow as pa

from hypersim_assets import __version__
from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_index import (
    INDEX_FILE,
    INDEX_SCHEMA,
    build_frame_index,
    read_frame_index,
    write_parquet_atomic,
)
from hypersim_assets.catalog.provenance import CONVERSION_SETTING_COLUMNS, append_creation_meta, converted_with
from hypersim_assets.catalog.scene_facts import load_scene_facts
from hypersim_assets.catalog.subsample_views import INDEX_COLUMNS_FOR_VIEWS, write_views
from hypersim_assets.defs.assets.conversion import CONVERTED_SCENE_KEY
from hypersim_assets.defs.assets.raw import hypersim_metadata
from hypersim_assets.defs.partitions import SCENES_PARTITIONS_NAME
from hypersim_assets.defs.policies import failures_of
from hypersim_assets.defs.resources import CatalogResource, ConversionResource, DownloadResource, HypersimResource
from hypersim_assets.defs.scene_state import scene_failures

GROUP = "hypersim_catalog"

# Refresh once scene partitions (or the metadata) were updated and nothing upstream
# is still running. Unlike eager(), this does not wait for *every* scene
# partition to exist, so a failed or not yet converted scene never blocks it.
INDEX_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("refresh after upstream updates settle")


# The index columns the views asset reads: the views' and the provenance record's.
VIEWS_AND_PROVENANCE_COLUMNS = tuple(dict.fromkeys(INDEX_COLUMNS_FOR_VIEWS + ("status",) + CONVERSION_SETTING_COLUMNS))

# What a reader of dataset/frame_index.parquet needs beyond a column's name: units and conventions
# (catalog.frame_index and common.frame_facts define them).
_INDEX_COLUMN_NOTES = {
    "metadata_row": "0-based data row in the split CSV (the order the reference subsamples in)",
    "split": "train / valid / test; null when excluded",
    "scene_class": "the trajectory's 'Scene type', verbatim",
    "status": "converted, input_missing, failed, pending or excluded",
    "reason": "why the frame is not converted (or why it is excluded)",
    "stem": "<scene>/<camera>/<NNNN>: the line of the reference's text lists",
    "width_px": "image width in pixels (camera-parameters file)",
    "height_px": "image height in pixels (camera-parameters file)",
    "fx": "focal length x, normalised by the image width",
    "fy": "focal length y, normalised by the image height",
    "cx": "principal point x, normalised by the image width",
    "cy": "principal point y, normalised by the image height",
    "x": "camera position x in metres (world frame)",
    "y": "camera position y in metres (world frame)",
    "z": "camera position z in metres (world frame)",
    "quat_x": "camera orientation quaternion (x, y, z, w), the reference's convention",
    "rotation_valid": "false when the pose was not a rotation (patched as the reference does)",
    "nan_pixels": "NaN depth/normal pixels replaced",
    "void_fraction": "share (0-1) of pixels with semantic void after reprojection",
    "depth_min_mm": "millimetres, over valid (non-zero) depth pixels",
    "depth_max_mm": "millimetres, over valid (non-zero) depth pixels",
    "depth_mean_mm": "millimetres, over valid (non-zero) depth pixels",
    "classes_present": "NYU40 semantic classes (1-40) present, sorted",
    "output_bytes": "bytes of every file written for the frame",
    "tilt_shift": "whether the frame was reprojected onto a pinhole camera (conversion.tilt_shift)",
    "png_compression": "the PNG speed/size setting the frame was written with (conversion.png_compression)",
}


def _index_column_schema() -> dg.TableSchema:
    """The frame index's columns as the UI lists them: name, Arrow type (pandas reads dictionaries as
    categories) and, where it matters, unit or convention; paths are relative to the dataset folder."""

    def kind(t: pa.DataType) -> str:
        return f"category<{t.value_type}>" if pa.types.is_dictionary(t) else str(t)

    def note(name: str) -> str | None:
        if name.startswith("path_"):
            return "relative to the dataset folder; null when the frame has no outputs"
        return _INDEX_COLUMN_NOTES.get(name) or (_INDEX_COLUMN_NOTES["quat_x"] if name.startswith("quat_") else None)

    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, kind(f.type), description=note(f.name)) for f in INDEX_SCHEMA]
    )


@dg.asset(
    group_name=GROUP,
    deps=[hypersim_metadata, CONVERTED_SCENE_KEY],
    kinds={"parquet"},
    automation_condition=INDEX_AUTOMATION,
    metadata={"dagster/column_schema": _index_column_schema()},
)
def frame_index(context: dg.AssetExecutionContext, hypersim: HypersimResource) -> dg.MaterializeResult:
    """One Parquet row per metadata frame (converted or not) at dataset/frame_index.parquet: split, class, status and reason, paths, intrinsics (normalised), pose (metres), depth statistics (mm); the columns are listed with their units."""
    started = time.monotonic()
    dataset_root = hypersim.dataset_root()
    # Scenes whose latest download or conversion failed, with the run's reason.
    failures = scene_failures(context.instance, context.instance.get_dynamic_partitions(SCENES_PARTITIONS_NAME))
    path = dataset_root / INDEX_FILE
    with failures_of("frame index"):
        tables = md.read_metadata(hypersim.raw_root())
        facts = load_scene_facts(hypersim.root())
        table = build_frame_index(tables, facts, failures)
        write_parquet_atomic(table, path)
    df = table.select(["split", "status"]).to_pandas()  # all the summary needs
    counts = df.groupby(["split", "status"], observed=True).size().unstack(fill_value=0)
    context.log.info(f"frame index: {len(df)} rows, {dict(df['status'].value_counts())}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "rows": len(df),
            "dagster/row_count": len(df),
            "counts_by_split_and_status": dg.MetadataValue.md(counts.to_markdown()),
            "status_counts": dg.MetadataValue.json({k: int(v) for k, v in df["status"].value_counts().items()}),
            "failed_scenes": dg.MetadataValue.json(dict(list(failures.items())[:50])),
            "seconds": round(time.monotonic() - started, 3),
        },
    )


@dg.asset(
    group_name=GROUP,
    deps=[frame_index],
    kinds={"parquet", "txt"},
    automation_condition=dg.AutomationCondition.eager(),
)
def subsample_views(
    context: dg.AssetExecutionContext,
    hypersim: HypersimResource,
    catalog: CatalogResource,
    conversion: ConversionResource,
    download: DownloadResource,
) -> dg.MaterializeResult:
    """Every-N-th-frame views (per split as the reference, and per trajectory) as Parquet, plus the reference's split text lists of frames on disk."""
    dataset_root = hypersim.dataset_root()
    with failures_of("subsample views: setting subsamples", permanent=(ValueError,)):
        subsamples = catalog.subsample_values()
    with failures_of("subsample views"):
        index = read_frame_index(dataset_root, columns=list(VIEWS_AND_PROVENANCE_COLUMNS))
        result = write_views(dataset_root, subsamples, index=index)
        # The conversion settings are the ones the frames were written with (this run's resources
        # may differ: e.g. an automation run with defaults after a launchpad run with others).
        written_with = converted_with(index)
        append_creation_meta(
            dataset_root,
            package_version=__version__,
            source=str(hypersim.parsed_source()),
            settings={
                "subsamples": list(subsamples),
                "tilt_shift": written_with.get("tilt_shift", conversion.tilt_shift),
                "png_compression": written_with.get("png_compression", conversion.png_compression),
                "n_processes": conversion.workers,
                "members": download.members,
            },
        )
    return dg.MaterializeResult(
        metadata={
            "subsamples": dg.MetadataValue.json(list(subsamples)),
            "views": dg.MetadataValue.json(result.summary),
            "path": dg.MetadataValue.path(str(dataset_root / "views")),
        },
    )
