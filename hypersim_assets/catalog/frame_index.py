"""The frame index: one typed Parquet row per frame of the split metadata
(converted or not) at ``<dataset>/frame_index.parquet``, joining the metadata,
the reference's blacklist and the per-scene facts that conversions wrote.

Row order: stable sort by (scene, camera, frame_id); on the real metadata this is
the file's own order (it is sorted that way). ``metadata_row`` keeps the position
in the split CSV, which is the order the reference subsamples in.

Status: ``excluded`` (not in the public release: no split, never converted, no
paths), else the facts' status (``converted``/``input_missing``/``failed``), else
``failed`` with the failure's reason when the scene's latest download or conversion
failed (``scene_failures``), else ``pending``. ``split`` uses the reference's names
(``train``/``valid``/``test``). Paths are relative to the dataset folder, as
:mod:`hypersim_assets.common.layout` names them, for every included frame that has or
may get outputs: null for excluded frames and for ``input_missing`` ones (upstream lacks
their files, so they never will).
Units: as in :mod:`hypersim_assets.common.frame_facts` (depth in mm, intrinsics
normalised by image size, position in metres); ``width_px``/``height_px`` from the
camera-parameters file.

Dtypes as read back by ``pd.read_parquet`` with default arguments: integer and boolean
columns that are null for frames without facts (``rotation_valid``, ``nan_pixels``,
``depth_*``, ``instance_count``, ``output_bytes``, ``width_px``, ``height_px``) come back
as pandas' nullable ``UInt16``/``UInt32``/``boolean`` (``<NA>`` where unknown), because the
file carries pandas metadata naming those dtypes; the other integer and boolean columns
never hold nulls and come back as numpy integers and booleans.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hypersim_assets.catalog.blacklist import blacklist_reason
from hypersim_assets.catalog.metadata import MetadataTables
from hypersim_assets.catalog.scene_facts import conform_facts_table
from hypersim_assets.common.atomic_files import write_parquet_atomic
from hypersim_assets.common.frame_facts import (
    CAMERA_FIELDS,
    FACTS_SCHEMA,
    STATUS_EXCLUDED,
    STATUS_FAILED,
    STATUS_INPUT_MISSING,
    STATUS_PENDING,
    STATUSES,
)
from hypersim_assets.common.layout import (
    INTRINSICS_MODALITIES,
    SPLIT_DIR_NAMES,
    frame_output_paths,
    frame_stem,
    intrinsics_output_paths,
)

__all__ = [
    "INDEX_FILE",
    "INDEX_SCHEMA",
    "PATH_COLUMNS",
    "build_frame_index",
    "read_frame_index",
    "write_parquet_atomic",
]

INDEX_FILE = "frame_index.parquet"  # relative to the dataset folder

_FRAME_MODALITIES: tuple[str, ...] = tuple(frame_output_paths("train", "ai_000_000", "cam_00", 0))
# Column holding each modality's relative path.
PATH_COLUMNS: dict[str, str] = {m: f"path_{m}" for m in _FRAME_MODALITIES + INTRINSICS_MODALITIES}
_FACT_STATUSES = frozenset(STATUSES) - {STATUS_PENDING, STATUS_EXCLUDED}


def _dict(index_type: pa.DataType) -> pa.DataType:
    return pa.dictionary(index_type, pa.string())


INDEX_SCHEMA = pa.schema(
    [
        ("metadata_row", pa.uint32()),  # 0-based row in the split CSV (its data rows)
        ("scene", _dict(pa.int16())),
        ("camera", _dict(pa.int8())),
        ("frame_id", pa.int16()),
        ("split", _dict(pa.int8())),  # train / valid / test; null when excluded
        ("scene_class", _dict(pa.int8())),  # the trajectory's `Scene type`, verbatim
        ("included_in_public_release", pa.bool_()),
        ("exclude_reason", _dict(pa.int8())),
        ("blacklisted", pa.bool_()),
        ("blacklist_reason", _dict(pa.int8())),
        ("status", _dict(pa.int8())),
        ("reason", _dict(pa.int32())),  # why not converted (or the exclude reason)
        ("stem", pa.string()),  # <scene>/<cam>/<NNNN>: the reference's text-list line
    ]
    + [(PATH_COLUMNS[m], pa.string()) for m in _FRAME_MODALITIES]
    + [(PATH_COLUMNS[m], _dict(pa.int16())) for m in INTRINSICS_MODALITIES]
    + [
        ("width_px", pa.uint16()),
        ("height_px", pa.uint16()),
    ]
    + CAMERA_FIELDS
    + [
        ("rotation_valid", pa.bool_()),
        ("nan_pixels", pa.uint32()),
        ("depth_inf_pixels", pa.uint32()),  # upstream distance +-inf; pixels written as the reference does
        ("depth_negative_pixels", pa.uint32()),  # upstream distance finite and < 0; likewise
        ("void_fraction", pa.float32()),
        ("depth_min_mm", pa.uint16()),
        ("depth_max_mm", pa.uint16()),
        ("depth_mean_mm", pa.float32()),
        ("instance_count", pa.uint16()),
        ("classes_present", pa.list_(pa.uint8())),
        ("output_bytes", pa.uint32()),
        ("converter_version", _dict(pa.int8())),
        ("tilt_shift", pa.bool_()),  # the settings the frame's files were written with; null if not converted
        ("png_compression", _dict(pa.int8())),
    ]
)

# Integer/boolean columns that are null where a frame has no facts (or no camera parameters):
# read back as pandas' nullable dtypes, named in the file's pandas metadata.
NULLABLE_COLUMNS: tuple[str, ...] = (
    "width_px",
    "height_px",
    "rotation_valid",
    "nan_pixels",
    "depth_inf_pixels",
    "depth_negative_pixels",
    "depth_min_mm",
    "depth_max_mm",
    "instance_count",
    "output_bytes",
    "tilt_shift",
)


def _pandas_metadata() -> dict[bytes, bytes]:
    """Schema metadata telling ``pd.read_parquet`` to read NULLABLE_COLUMNS as nullable integers/booleans."""
    nullable = {pa.uint16(): pd.UInt16Dtype(), pa.uint32(): pd.UInt32Dtype(), pa.bool_(): pd.BooleanDtype()}
    empty = pd.DataFrame(
        {name: pd.array([], dtype=nullable[INDEX_SCHEMA.field(name).type]) for name in NULLABLE_COLUMNS}
    )
    return dict(pa.Schema.from_pandas(empty, preserve_index=False).metadata)


_FACT_VALUE_COLUMNS: tuple[str, ...] = tuple(
    n
    for n in FACTS_SCHEMA.names
    if n not in ("scene", "camera", "frame_id", "status", "reason") and n in INDEX_SCHEMA.names
)


# -- building -----------------------------------------------------------------------------


def _dictionary_array(values: pa.Array | pa.ChunkedArray | np.ndarray, type_: pa.DataType, column: str) -> pa.Array:
    """A dictionary array of ``type_`` from strings (None/NaN = null), dictionary in first-seen order.

    Raises ValueError naming the column when there are more distinct values than the index type holds.
    """
    if isinstance(values, np.ndarray):
        values = pa.array(values, pa.string(), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    limit = np.iinfo(type_.index_type.to_pandas_dtype()).max + 1
    if len(encoded.dictionary) > limit:
        raise ValueError(f"frame index column {column}: {len(encoded.dictionary)} distinct values do not fit {type_}")
    return pa.DictionaryArray.from_arrays(encoded.indices.cast(type_.index_type), encoded.dictionary)


def _cast(array: pa.Array | pa.ChunkedArray, type_: pa.DataType, column: str) -> pa.Array:
    try:
        return array.cast(type_, safe=True)
    except pa.ArrowInvalid as exc:
        raise ValueError(f"frame index column {column}: values do not fit {type_}: {exc}") from exc


def _path_templates() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """(modality folder, extension) per frame modality and folder per intrinsics modality, read off the layout."""
    probe = frame_output_paths("S", "A", "C", 0)
    stem = frame_stem("A", "C", 0)
    frames = {}
    for modality, rel in probe.items():
        head, _, tail = rel.partition("/" + stem)
        if not head.startswith("S/") or not tail.startswith(".") or "/" in tail:
            raise RuntimeError(f"layout path {rel!r} of {modality} is not <split>/<folder>/<stem>.<ext>")
        frames[modality] = (head[2:], tail)
    intrinsics = {}
    for modality, rel in intrinsics_output_paths("S", "A", "C").items():
        if not (rel.startswith("S/") and rel.endswith("/A/C.json")):
            raise RuntimeError(f"layout path {rel!r} of {modality} is not <split>/<folder>/<scene>/<cam>.json")
        intrinsics[modality] = rel[2 : -len("/A/C.json")]
    return frames, intrinsics


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def build_frame_index(
    tables: MetadataTables,
    facts: pd.DataFrame | pa.Table | None = None,
    scene_failures: Mapping[str, str] | None = None,
) -> pa.Table:
    """The frame index in INDEX_SCHEMA: one row per row of ``tables.splits``.

    ``facts``: per-frame facts in FACTS_SCHEMA (DataFrame or Arrow table, may be
    empty or None). Facts of excluded frames and of frames absent from the metadata
    are ignored (the latter counted in the schema metadata ``unmatched_facts``);
    two facts rows for one frame, or an unknown status, raise ValueError.
    ``scene_failures``: scene -> reason for scenes whose latest download or conversion
    failed; their included frames without facts become ``failed`` with that reason
    (frames with facts keep them: their files are what an earlier run wrote).
    ``tables.camera_params`` (optional) gives ``width_px``/``height_px``.
    Vectorised: about a second for the real 82,900 rows.
    """
    splits = tables.splits
    n = len(splits)
    scene = splits["scene_name"].to_numpy(dtype=object)
    camera = splits["camera_name"].to_numpy(dtype=object)
    frame_id = splits["frame_id"].to_numpy(dtype=np.int16)
    included = splits["included_in_public_release"].to_numpy(dtype=bool)
    split = splits["split_partition_name"].map(SPLIT_DIR_NAMES).where(included)

    # Trajectory-level facts (class, blacklist), computed once per trajectory.
    trajectory = pd.MultiIndex.from_arrays([scene, camera])
    codes, uniques = pd.factorize(trajectory)
    classes = tables.scene_classes.set_index(["scene_name", "camera_name"])["scene_class"]
    traj_class = classes.reindex(uniques).to_numpy(dtype=object)
    traj_blacklist = np.array([blacklist_reason(s, c) for s, c in uniques], dtype=object)
    scene_class = traj_class[codes]
    bl_reason = traj_blacklist[codes]

    # Facts joined by key; excluded frames never take facts.
    facts_tbl = conform_facts_table(facts)
    keys = pd.DataFrame({"scene": scene, "camera": camera, "frame_id": frame_id})
    fkeys = pd.DataFrame(
        {
            "scene": facts_tbl.column("scene").to_numpy(zero_copy_only=False).astype(object),
            "camera": facts_tbl.column("camera").to_numpy(zero_copy_only=False).astype(object),
            "frame_id": facts_tbl.column("frame_id").to_numpy(zero_copy_only=False).astype(np.int16),
            "_fpos": np.arange(facts_tbl.num_rows, dtype=np.int64),
        }
    )
    dup = fkeys.duplicated(["scene", "camera", "frame_id"])
    if dup.any():
        first = fkeys[dup].iloc[0]
        raise ValueError(
            f"facts hold {int(dup.sum())} duplicate frame(s), e.g. {first.scene}/{first.camera}/{int(first.frame_id):04d}"
        )
    joined = keys.merge(fkeys, on=["scene", "camera", "frame_id"], how="left", sort=False, validate="one_to_one")
    fpos = joined["_fpos"].to_numpy(dtype=float, copy=True)
    unmatched = facts_tbl.num_rows - int(np.isfinite(fpos).sum())
    fpos[~included] = np.nan
    has_facts = np.isfinite(fpos)
    take = pa.array(np.where(has_facts, fpos, 0).astype(np.int64), mask=~has_facts)
    fact = {name: facts_tbl.column(name).take(take) for name in facts_tbl.column_names}

    fact_status = fact["status"].to_numpy(zero_copy_only=False).astype(object)
    bad = has_facts & ~pd.Series(fact_status).isin(_FACT_STATUSES).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"facts of {scene[i]}/{camera[i]}/{int(frame_id[i]):04d} have status {fact_status[i]!r}, "
            f"not one of {sorted(_FACT_STATUSES)}"
        )
    failures = dict(scene_failures or {})
    failure_reason = pd.Series(scene).map(failures).to_numpy(dtype=object)
    scene_failed = pd.notna(failure_reason)
    status = np.where(
        ~included,
        STATUS_EXCLUDED,
        np.where(has_facts, fact_status, np.where(scene_failed, STATUS_FAILED, STATUS_PENDING)),
    )
    exclude_reason = splits["exclude_reason"].to_numpy(dtype=object)
    fact_reason = fact["reason"].to_numpy(zero_copy_only=False).astype(object)
    reason = np.where(~included, exclude_reason, np.where(has_facts, fact_reason, failure_reason))

    # Paths, vectorised in Arrow; null for excluded frames (no split) and for frames whose
    # input upstream lacks (no outputs will ever exist). Intrinsics are per trajectory: kept.
    scene_a = pa.array(scene, pa.string())
    camera_a = pa.array(camera, pa.string())
    frame_a = pc.utf8_lpad(pc.cast(pa.array(frame_id), pa.string()), 4, "0")
    stem = _join(scene_a, "/", camera_a, "/", frame_a)
    split_a = pa.array(split.to_numpy(dtype=object), pa.string(), from_pandas=True)
    frame_split_a = pa.array(
        split.where(status != STATUS_INPUT_MISSING).to_numpy(dtype=object), pa.string(), from_pandas=True
    )
    frame_templates, intrinsics_templates = _path_templates()
    paths = {m: _join(frame_split_a, f"/{folder}/", stem, ext) for m, (folder, ext) in frame_templates.items()}
    traj_rel = _join(scene_a, "/", camera_a, ".json")
    paths.update({m: _join(split_a, f"/{folder}/", traj_rel) for m, folder in intrinsics_templates.items()})

    if tables.camera_params is not None:
        size_columns = ["settings_output_img_width", "settings_output_img_height"]
        params = tables.camera_params[size_columns].reindex(pd.Index(scene))
        width = pa.array(params["settings_output_img_width"].to_numpy(dtype=float), from_pandas=True)
        height = pa.array(params["settings_output_img_height"].to_numpy(dtype=float), from_pandas=True)
    else:
        width = height = pa.nulls(n, pa.float64())

    columns: dict[str, pa.Array] = {
        "metadata_row": pa.array(np.arange(n, dtype=np.uint32)),
        "scene": scene_a,
        "camera": camera_a,
        "frame_id": pa.array(frame_id),
        "split": split_a,
        "scene_class": scene_class,
        "included_in_public_release": pa.array(included),
        "exclude_reason": exclude_reason,
        "blacklisted": pa.array(pd.notna(bl_reason)),
        "blacklist_reason": bl_reason,
        "status": status,
        "reason": reason,
        "stem": stem,
        **{PATH_COLUMNS[m]: p for m, p in paths.items()},
        "width_px": width,
        "height_px": height,
        **{name: fact[name] for name in _FACT_VALUE_COLUMNS},
    }
    arrays = []
    for field in INDEX_SCHEMA:
        value = columns[field.name]
        if pa.types.is_dictionary(field.type):
            arrays.append(_dictionary_array(value, field.type, field.name))
        else:
            arrays.append(_cast(value, field.type, field.name))
    table = pa.Table.from_arrays(arrays, schema=INDEX_SCHEMA)
    table = table.replace_schema_metadata({**_pandas_metadata(), b"unmatched_facts": str(unmatched).encode()})

    _check_paths_against_layout(table)
    order = pa.Table.from_arrays(
        [
            table.column("scene").cast(pa.string()),
            table.column("camera").cast(pa.string()),
            table.column("frame_id"),
            table.column("metadata_row"),
        ],
        names=["scene", "camera", "frame_id", "metadata_row"],
    )
    sort_idx = pc.sort_indices(order, sort_keys=[(k, "ascending") for k in order.column_names])
    if not np.array_equal(sort_idx.to_numpy(), np.arange(n)):
        table = table.take(sort_idx)
    return table


def _check_paths_against_layout(table: pa.Table) -> None:
    """Guard: the vectorised paths of the first and last included rows that have paths (frames with
    missing input have none) equal layout's functions."""
    with_paths = table.column(PATH_COLUMNS["rgb"]).is_valid().to_numpy(zero_copy_only=False)
    included = np.flatnonzero(table.column("included_in_public_release").to_numpy(zero_copy_only=False) & with_paths)
    for i in included[:1].tolist() + included[-1:].tolist():
        row = {name: table.column(name)[i].as_py() for name in ("split", "scene", "camera", "frame_id")}
        expected = frame_output_paths(row["split"], row["scene"], row["camera"], row["frame_id"])
        expected.update(intrinsics_output_paths(row["split"], row["scene"], row["camera"]))
        got = {m: table.column(PATH_COLUMNS[m])[i].as_py() for m in expected}
        if got != expected:
            raise RuntimeError(f"frame index paths {got} differ from the layout's {expected}")


def read_frame_index(dataset_root: Path, **read_kwargs) -> pd.DataFrame:
    """The frame index at ``<dataset>/frame_index.parquet`` as a DataFrame (kwargs go to ``pd.read_parquet``)."""
    path = Path(dataset_root) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"frame index {path} does not exist; materialise frame_index first")
    return pd.read_parquet(path, **read_kwargs)
