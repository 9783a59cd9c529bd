"""The catalogue assets: the Parquet frame index over every metadata frame, and
the subsample views with the reference's text lists. Both refresh by declarative
automation after scene partitions materialise."""

import time

import dagster as dg

from hypersim_assets import __version__
from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_index import INDEX_FILE, build_frame_index, write_parquet_atomic
from hypersim_assets.catalog.provenance import append_creation_meta
from hypersim_assets.catalog.scene_facts import load_scene_facts
from hypersim_assets.catalog.subsample_views import write_views
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


@dg.asset(
    group_name=GROUP,
    deps=[hypersim_metadata, CONVERTED_SCENE_KEY],
    kinds={"parquet"},
    automation_condition=INDEX_AUTOMATION,
)
def frame_index(context: dg.AssetExecutionContext, hypersim: HypersimResource) -> dg.MaterializeResult:
    """One Parquet row per metadata frame (converted or not): split, class, status and reason, paths, intrinsics, pose and per-frame statistics."""
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
        result = write_views(dataset_root, subsamples)
        append_creation_meta(
            dataset_root,
            package_version=__version__,
            source=str(hypersim.parsed_source()),
            settings={
                "subsamples": list(subsamples),
                "tilt_shift": conversion.tilt_shift,
                "png_compression": conversion.png_compression,
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
