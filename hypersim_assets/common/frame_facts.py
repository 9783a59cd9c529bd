"""The per-frame facts a scene conversion reports and the frame index reads: one
row per included frame of a scene, stored as ``<data root>/facts/<scene>.parquet``.

Units: depth statistics in millimetres (as written to the depth PNG, 0 = invalid);
intrinsics normalised by image width/height as the reference writes them;
extrinsics position in metres, quaternion (x, y, z, w) in the reference's convention.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

FACTS_DIR = "facts"

STATUS_CONVERTED = "converted"
STATUS_INPUT_MISSING = "input_missing"
STATUS_FAILED = "failed"
STATUS_PENDING = "pending"  # used by the index only, for frames with no facts yet
# Used by the index only, for frames outside the public release: they have no split
# and are never converted, so "pending" would count them as work still to do.
STATUS_EXCLUDED = "excluded"
STATUSES: tuple[str, ...] = (STATUS_PENDING, STATUS_CONVERTED, STATUS_INPUT_MISSING, STATUS_FAILED, STATUS_EXCLUDED)

# Intrinsics (fx, fy, cx, cy, normalised) and extrinsics (position in metres, quaternion),
# float64 in both the facts and the frame index.
CAMERA_COLUMNS: tuple[str, ...] = ("fx", "fy", "cx", "cy", "x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w")
CAMERA_FIELDS: list[tuple[str, pa.DataType]] = [(name, pa.float64()) for name in CAMERA_COLUMNS]

FACTS_SCHEMA = pa.schema(
    [
        ("scene", pa.string()),
        ("camera", pa.string()),
        ("frame_id", pa.int16()),
        ("status", pa.string()),
        ("reason", pa.string()),  # null when converted
        ("rotation_valid", pa.bool_()),  # False when the pose matrix is not a rotation (reference patches it)
        ("nan_pixels", pa.int32()),  # NaN depth/normal pixels replaced
        ("depth_inf_pixels", pa.int32()),  # upstream distance +-inf (written as the reference does)
        ("depth_negative_pixels", pa.int32()),  # upstream distance finite and < 0 (written as the reference does)
        ("void_fraction", pa.float32()),  # share of pixels with semantic void after reprojection
        ("depth_min_mm", pa.uint16()),  # over valid (non-zero) depth pixels
        ("depth_max_mm", pa.uint16()),
        ("depth_mean_mm", pa.float32()),
        ("instance_count", pa.int32()),  # distinct non-void instance ids in the instance PNG
        ("classes_present", pa.list_(pa.uint8())),  # semantic classes (1..40) present, sorted
        ("output_bytes", pa.int64()),  # bytes of every file written for the frame
    ]
    + CAMERA_FIELDS
    + [
        ("converter_version", pa.string()),
        # The settings that shaped the frame's bytes (ConversionSettings.output_key); null in facts
        # written before they were recorded.
        ("tilt_shift", pa.bool_()),
        ("png_compression", pa.string()),
    ]
)


def facts_path(data_root: Path, scene: str) -> Path:
    """Where a scene's facts live."""
    return Path(data_root) / FACTS_DIR / f"{scene}.parquet"
