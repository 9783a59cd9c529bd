"""A small unpacked Hypersim scene written with h5py for the conversion tests: planes and
gradients, NaN depth/normal pixels, -1 void, instance ids above 255, a real tilt-shift
``M_cam_from_uv`` (scene ai_037_002) or a real plain one (ai_001_001), gzip-chunked HDF5
as upstream stores it, and one trajectory whose frame 0 has an invalid rotation matrix.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

# Real rows of metadata_camera_parameters.csv (only the columns the conversion reads).
TILT_SHIFT_M = [
    0.579607251426182,
    0.0,
    -0.06955286861651404,
    0.0,
    0.4346865334657201,
    0.09273312506660672,
    -0.0,
    0.004054126980668954,
    -1.003909173803896,
]
PLAIN_M = [0.5773502886169104, 0.0, 0.0, 0.0, 0.4330127164626828, 0.0, 0.0, 0.0, -1.0]
METERS_PER_ASSET_UNIT = 0.009999999776482582


def camera_params(height: int, width: int, tilt_shift: bool = True) -> dict[str, float]:
    """One camera-parameters row as the conversion receives it."""
    m = TILT_SHIFT_M if tilt_shift else PLAIN_M
    row = {f"M_cam_from_uv_{i}{j}": m[3 * i + j] for i in range(3) for j in range(3)}
    row.update(
        settings_output_img_height=float(height),
        settings_output_img_width=float(width),
        settings_units_info_meters_scale=METERS_PER_ASSET_UNIT,
    )
    return row


def _h5(path: Path, data: np.ndarray, chunks: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        if chunks and data.ndim >= 2:
            c = (min(16, data.shape[0]), min(24, data.shape[1])) + ((1,) if data.ndim == 3 else ())
            f.create_dataset("dataset", data=data, chunks=c, compression="gzip", compression_opts=9)
        else:
            f.create_dataset("dataset", data=data)


def frame_arrays(height: int, width: int, frame_id: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The six per-frame images of one frame (float16/int16 as upstream)."""
    rng = np.random.default_rng(seed + 1000 * frame_id)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    depth = 2.0 + 1.5 * xx / width + 0.8 * yy / height + 0.05 * frame_id  # a tilted plane, metres
    depth[: height // 6, : width // 5] = 70.0  # far away: beyond 65.535 m after projection
    color = np.stack([0.2 + 0.6 * xx / width, 0.1 + 0.5 * yy / height, 0.3 + 0.1 * np.sin(xx / 5)], axis=-1)
    color *= rng.uniform(0.5, 2.0)
    color[height // 2, width // 2] = 40.0  # a bright highlight
    nrm = np.stack([np.sin(xx / width), np.cos(yy / height) - 0.5, -np.ones_like(xx)], axis=-1)
    nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True)
    semantic = np.where(yy > height * 0.7, 2, np.where(xx < width / 2, 1, 5)).astype(np.int16)
    instance = np.where(yy > height * 0.7, 300, np.where(xx < width / 2, -1, 7)).astype(np.int16)
    instance[height // 3 : height // 2, width // 2 : width // 2 + 6] = 260
    render = np.ones((height, width), np.int16) * 3
    # No geometry: the top-right corner (void everywhere, NaN depth and normals).
    void = (yy < height * 0.25) & (xx > width * 0.75)
    depth[void] = np.nan
    nrm[void] = np.nan
    color[void] = 0.0
    semantic[void] = -1
    instance[void] = -1
    render[void] = -1
    depth[height - 2, 3] = np.nan  # a NaN pixel where there is geometry
    return {
        "color": color.astype(np.float16),
        "render_entity_id": render,
        "depth_meters": depth.astype(np.float16),
        "normal_bump_cam": nrm.astype(np.float16),
        "semantic": semantic,
        "semantic_instance": instance,
    }


def write_scene(
    root: Path,
    scene: str = "ai_037_002",
    cameras: tuple[str, ...] = ("cam_00",),
    frames: int = 2,
    height: int = 48,
    width: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``root/<scene>/...`` and return the scene folder."""
    sd = Path(root) / scene
    (sd / "_detail").mkdir(parents=True, exist_ok=True)
    (sd / "_detail" / "metadata_scene.csv").write_text(
        f"parameter_name,parameter_value\nmeters_per_asset_unit,{METERS_PER_ASSET_UNIT!r}\n"
    )
    rng = np.random.default_rng(seed)
    for ci, cam in enumerate(cameras):
        positions = rng.uniform(-300, 300, size=(frames, 3))
        orientations = np.empty((frames, 3, 3))
        for f in range(frames):
            yaw = rng.uniform(-np.pi, np.pi)
            c, s = np.cos(yaw), np.sin(yaw)
            orientations[f] = [[c, 0, s], [s, 0, -c], [0, 1, 0]]  # looking horizontally
        if ci == 0:
            orientations[0] *= 1.02  # invalid rotation (not orthogonal), as upstream issue 103
        _h5(sd / "_detail" / cam / "camera_keyframe_positions.hdf5", positions, chunks=False)
        _h5(sd / "_detail" / cam / "camera_keyframe_orientations.hdf5", orientations, chunks=False)
        for f in range(frames):
            arrays = frame_arrays(height, width, f, seed + ci)
            for kind, data in arrays.items():
                group = "final" if kind == "color" else "geometry"
                _h5(sd / "images" / f"scene_{cam}_{group}_hdf5" / f"frame.{f:04d}.{kind}.hdf5", data)
    n = 320
    extents = rng.uniform(10, 200, size=(n, 3))
    positions = rng.uniform(-500, 500, size=(n, 3))
    orient = np.empty((n, 3, 3))
    for i in range(n):
        a = rng.uniform(-np.pi, np.pi)
        orient[i] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    extents[0] = positions[0] = np.nan
    orient[0] = np.nan
    mesh = sd / "_detail" / "mesh"
    _h5(mesh / "metadata_semantic_instance_bounding_box_object_aligned_2d_extents.hdf5", extents, chunks=False)
    _h5(mesh / "metadata_semantic_instance_bounding_box_object_aligned_2d_orientations.hdf5", orient, chunks=False)
    _h5(mesh / "metadata_semantic_instance_bounding_box_object_aligned_2d_positions.hdf5", positions, chunks=False)
    return sd
