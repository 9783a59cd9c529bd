"""The asset checks: each reads what is on disk now (CSVs, manifests, facts, output
files, index, views, text lists), so any of them can be re-run from the UI without
re-materialising its asset. Checks of the scene assets carry the scene partitions,
so each scene's result is its own.

Blocking checks (``blocking=True``) run right after their asset in the same run and
stop its downstream assets there when they fail with ERROR severity.
"""

import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from hypersim_assets.catalog import metadata as md
from hypersim_assets.catalog.frame_index import read_frame_index
from hypersim_assets.catalog.index_checks import (
    INDEX_COLUMNS_FOR_FILES_CHECK,
    INDEX_COLUMNS_FOR_METADATA_CHECK,
    check_converted_files_exist,
    check_index_matches_metadata,
    check_text_lists_on_disk,
    check_views_on_disk,
)
from hypersim_assets.catalog.scene_facts import Completeness, completeness, summarize_scene_facts
from hypersim_assets.common.frame_facts import STATUS_CONVERTED, STATUS_FAILED, STATUS_INPUT_MISSING, facts_path
from hypersim_assets.defs.assets.catalog import frame_index, subsample_views
from hypersim_assets.defs.assets.conversion import CONVERTED_SCENE_KEY
from hypersim_assets.defs.assets.raw import RAW_SCENE_KEY, hypersim_metadata
from hypersim_assets.defs.partitions import scene_partitions
from hypersim_assets.defs.resources import CatalogResource, DownloadResource, HypersimResource
from hypersim_assets.download.manifest import MANIFEST_NAME, verify_scene_members

_EXAMPLES = 50  # offending items listed in a check's metadata


def _json(value: object) -> dg.MetadataValue:
    return dg.MetadataValue.json(value)


# -- raw ---------------------------------------------------------------------------------


@dg.asset_check(
    asset=hypersim_metadata,
    blocking=True,
    description="The three metadata CSVs on disk agree: every included trajectory has a scene class, "
    "every public scene has camera parameters, and a trajectory's frames share one split.",
)
def metadata_consistent(hypersim: HypersimResource) -> dg.AssetCheckResult:
    raw_root = hypersim.raw_root()
    try:
        problems = md.consistency_problems(md.read_metadata(raw_root))
    except (OSError, md.MetadataError) as exc:
        problems = [f"metadata under {raw_root} unreadable: {exc}"]
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"problems": _json(problems[:20]), "problem_count": len(problems)},
    )


def members_on_disk(raw_root: Path, scene: str, mode: str = "crc") -> tuple[bool, dict]:
    """Every member the scene's manifest lists is on disk with its recorded size and (``mode="crc"``) CRC-32.

    The one place that decides what ``members_verified`` means; the comparison itself is
    :func:`hypersim_assets.download.manifest.verify_scene_members`. An empty manifest fails.
    """
    manifest_file = Path(raw_root) / scene / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_file.read_text())
    except FileNotFoundError:
        return False, {
            "error": f"{manifest_file} is missing: the scene was never fetched, or its raw files were deleted"
        }
    except (OSError, ValueError) as exc:
        return False, {"error": f"{manifest_file} unreadable: {exc}"}
    members = manifest.get("members", {}) if manifest.get("scene") == scene else {}
    problems = verify_scene_members(Path(raw_root), scene, mode)
    details = {
        "members": len(members),
        "problems": len(problems),
        "examples": problems[:_EXAMPLES],
        "verified_by": mode,
    }
    return bool(members) and not problems, details


@dg.asset_check(
    asset=RAW_SCENE_KEY,
    partitions_def=scene_partitions,
    blocking=True,
    description="Every member recorded in the scene's download manifest is on disk with the size and CRC-32 the "
    "manifest records (resources.download.config.verify: crc, or size only); an empty or missing manifest fails.",
)
def members_verified(
    context: dg.AssetCheckExecutionContext, hypersim: HypersimResource, download: DownloadResource
) -> dg.AssetCheckResult:
    """Every manifest member on disk with its recorded size and CRC-32.

    When the scene step materialises ``raw_scene`` and ``converted_scene`` together, this check
    runs after the step, so it cannot gate the conversion; the gate holds inside the step: a
    member is CRC-verified before the conversion hears of it, and a frame is converted only once
    every member it reads was. For the same reason, with ``delete_raw_after_conversion`` the raw
    files may be gone by the time it runs: a scene whose raw folder is gone and whose facts exist
    (it was converted) passes, saying so.
    """
    scene = context.partition_key
    raw_gone = not (hypersim.raw_root() / scene).exists()
    if download.delete_raw_after_conversion and raw_gone and facts_path(hypersim.root(), scene).is_file():
        return dg.AssetCheckResult(
            passed=True,
            severity=dg.AssetCheckSeverity.ERROR,
            description="raw files deleted after a successful conversion (delete_raw_after_conversion)",
            metadata={"scene": scene, "members": 0, "details": _json({"deleted_after_conversion": True})},
        )
    passed, details = members_on_disk(hypersim.raw_root(), scene, download.verify)
    description = None
    if not passed:
        problem = details.get("error") or (
            f"{details['problems']} member(s) missing or changed, first {details['examples'][0]}"
            if details.get("examples")
            else "the manifest lists no member"
        )
        description = f"{problem}; materialise raw_scene for {scene} to fetch them again"
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"scene": scene, "members": details.get("members", 0), "details": _json(details)},
    )


# -- conversion ----------------------------------------------------------------------------


def _scene_state(hypersim: HypersimResource, scene: str) -> tuple[list[dict], list, str | None]:
    """The scene's facts rows from ``facts/<scene>.parquet``, its metadata frames, and an error if unreadable."""
    frames = md.scene_frames(md.read_metadata(hypersim.raw_root(), camera_parameters=False), scene)
    path = facts_path(hypersim.root(), scene)
    if not path.is_file():
        return [], frames, f"{path} is missing: the scene was never converted"
    return pq.read_table(path).to_pylist(), frames, None


@dg.asset_check(
    asset=CONVERTED_SCENE_KEY,
    partitions_def=scene_partitions,
    blocking=False,
    description="The completeness rule, from the scene's facts on disk: fails with ERROR when frames failed on bad "
    "input or were never attempted (the scene is incomplete and the schedule requests it again); warns when frames "
    "lack upstream input.",
)
def frames_converted(context: dg.AssetCheckExecutionContext, hypersim: HypersimResource) -> dg.AssetCheckResult:
    scene = context.partition_key
    rows, frames, error = _scene_state(hypersim, scene)
    converted = {(r["camera"], int(r["frame_id"])) for r in rows if r["status"] == STATUS_CONVERTED}
    not_converted = [
        {"frame": f"{r['camera']}/{int(r['frame_id']):04d}", "status": r["status"], "reason": r.get("reason")}
        for r in rows
        if r["status"] != STATUS_CONVERTED
    ]
    seen = {(r["camera"], int(r["frame_id"])) for r in rows}
    never = [f"{f.camera}/{f.frame_id:04d}" for f in frames if (f.camera, f.frame_id) not in seen]
    by_status: dict[str, int] = {}
    for item in not_converted:
        by_status[item["status"]] = by_status.get(item["status"], 0) + 1
    # Never-attempted frames count as failed: the scene is not complete until they are converted.
    verdict = completeness(by_status.get(STATUS_FAILED, 0) + len(never), by_status.get(STATUS_INPUT_MISSING, 0))
    if error is not None:
        verdict = Completeness(False, "ERROR", error)
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity(verdict.severity),
        description=verdict.description,
        metadata={
            "scene": scene,
            "frames": len(frames),
            "converted": len(converted),
            "not_converted_by_status": _json(by_status),
            "not_converted": _json(not_converted[:_EXAMPLES]),
            "never_attempted": _json(never[:_EXAMPLES]),
            **({"error": error} if error else {}),
        },
    )


@dg.asset_check(
    asset=CONVERTED_SCENE_KEY,
    partitions_def=scene_partitions,
    blocking=True,
    description="Every frame the scene's facts record as converted has all of its output files on disk.",
)
def outputs_complete(context: dg.AssetCheckExecutionContext, hypersim: HypersimResource) -> dg.AssetCheckResult:
    scene = context.partition_key
    rows, frames, error = _scene_state(hypersim, scene)
    incomplete = summarize_scene_facts(rows, frames, hypersim.dataset_root())["incomplete_outputs"] if rows else []
    description = None
    if error is not None or incomplete:
        problem = error or f"{len(incomplete)} output file(s) of converted frames missing, first {incomplete[0]}"
        description = f"{problem}; materialise raw_scene and converted_scene for {scene} to write them again"
    return dg.AssetCheckResult(
        passed=error is None and not incomplete,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "scene": scene,
            "incomplete_count": len(incomplete),
            "incomplete": _json(incomplete[:_EXAMPLES]),
            **({"error": error} if error else {}),
        },
    )


# -- catalogue -----------------------------------------------------------------------------


@dg.asset_check(
    asset=frame_index,
    blocking=True,
    description="dataset/frame_index.parquet has exactly one row per frame of the split metadata, with the "
    "metadata's inclusion flag and split.",
)
def rows_match_metadata(hypersim: HypersimResource) -> dg.AssetCheckResult:
    try:
        index = read_frame_index(hypersim.dataset_root(), columns=list(INDEX_COLUMNS_FOR_METADATA_CHECK))
    except FileNotFoundError as exc:
        return dg.AssetCheckResult(passed=False, metadata={"error": str(exc)})
    tables = md.read_metadata(hypersim.raw_root(), camera_parameters=False)
    passed, details = check_index_matches_metadata(index, tables.splits)
    return dg.AssetCheckResult(passed=passed, metadata={"details": _json(details)})


@dg.asset_check(
    asset=frame_index,
    blocking=True,
    description="Every output file of every frame the index marks converted exists under dataset/.",
)
def converted_files_exist(hypersim: HypersimResource) -> dg.AssetCheckResult:
    dataset_root = hypersim.dataset_root()
    try:
        index = read_frame_index(dataset_root, columns=[*INDEX_COLUMNS_FOR_FILES_CHECK, "scene"])
    except FileNotFoundError as exc:
        return dg.AssetCheckResult(passed=False, metadata={"error": str(exc)})
    passed, details = check_converted_files_exist(index, dataset_root)
    description = None
    if not passed:
        # Which scene partitions to re-run: the scene folders the missing paths run through.
        scenes = set(index["scene"].astype(str))
        missing_in = sorted({part for rel in details["examples"] for part in Path(rel).parts if part in scenes})
        description = (
            f"{details['missing_files']} file(s) of converted frames missing, first {details['examples'][0]}; "
            f"materialise the scene partitions {', '.join(missing_in)} (raw_scene and converted_scene), "
            "then frame_index"
        )
    return dg.AssetCheckResult(passed=passed, description=description, metadata={"details": _json(details)})


@dg.asset_check(
    asset=subsample_views,
    blocking=True,
    description="Every row of every view on disk is an eligible frame of the index (included, not "
    "blacklisted) with the same split, listed once.",
)
def views_subset_of_index(hypersim: HypersimResource, catalog: CatalogResource) -> dg.AssetCheckResult:
    passed, details = check_views_on_disk(hypersim.dataset_root(), catalog.subsample_values())
    return dg.AssetCheckResult(passed=passed, metadata={"details": _json(details)})


@dg.asset_check(
    asset=subsample_views,
    blocking=True,
    description="Each split text list on disk (train.txt, train_every_10th.txt, ...) holds exactly the present "
    "frames of its every_nth_split view, in view order.",
)
def text_lists_match_views(hypersim: HypersimResource, catalog: CatalogResource) -> dg.AssetCheckResult:
    passed, details = check_text_lists_on_disk(hypersim.dataset_root(), catalog.subsample_values())
    return dg.AssetCheckResult(passed=passed, metadata={"details": _json(details)})
