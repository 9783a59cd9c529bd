"""A synthetic Hypersim *source*: the three metadata CSVs and one upstream-shaped zip per
scene, rendered from procedural rooms, for tests and demos without the 1.9 TB download.

Owns the member names, dtypes, compression and CSV columns of the mirror and the real-data
edge cases it plants (tilt-shift cameras, excluded and missing frames, NaN depth at valid
pixels, a non-rotation frame-0 orientation, instance ids above 255, classes without
instances). Geometry and shading live in ``synthetic_scene``; image encoders in
``synthetic_previews``.

Upstream facts mirrored here: every HDF5 file holds one dataset ``dataset``; frame images use
upstream's settings (deflate level 9, h5py's automatic chunk shape, which gives the real
(96, 128) chunks at 768x1024, no shuffle); ``_detail`` HDF5 files are uncompressed, contiguous.
Zip members: already-compressed files (frame HDF5, JPEG, PNG) are STORED, the rest (CSV, logs,
small uncompressed HDF5) DEFLATED, so a reader must handle both methods.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from zlib_ng import zlib_ng

from hypersim_assets.common import layout
from hypersim_assets.common.atomic_files import write_bytes_atomic
from hypersim_assets.synthetic.previews import encode_jpeg, encode_png
from hypersim_assets.synthetic.room import (
    Room,
    bounding_boxes,
    build_room,
    look_at_orientation,
    render_frame,
)

# Column names of the three upstream metadata files (facts; the project never reads the real files at run time).
SPLIT_COLUMNS: tuple[str, ...] = (
    "scene_name",
    "camera_name",
    "frame_id",
    "included_in_public_release",
    "exclude_reason",
    "split_partition_name",
)
TRAJECTORY_COLUMNS: tuple[str, ...] = (
    "Animation",
    "Rendering job (geometry)",
    "Instance type (geometry)",
    "Rendering job (pre)",
    "Instance type (pre)",
    "Rendering job (final)",
    "Instance type (final)",
    "Scene type",
    "Notes",
    "Any good views of scene?",
)
CAMERA_PARAMETER_COLUMNS: tuple[str, ...] = (
    "scene_name",
    "settings_output_img_height",
    "settings_output_img_width",
    "settings_units_info_meters_scale",
    "use_camera_physical",
    "camera_physical_anisotropy",
    "camera_physical_blades_enable",
    "camera_physical_blades_num",
    "camera_physical_blades_rotation",
    "camera_physical_bmpaperture_affects_exposure",
    "camera_physical_bmpaperture_enable",
    "camera_physical_bmpaperture_resolution",
    "camera_physical_bmpaperture_tex",
    "camera_physical_center_bias",
    "camera_physical_distortion",
    "camera_physical_distortion_tex",
    "camera_physical_distortion_type",
    "camera_physical_dof_display_threshold",
    "camera_physical_dont_affect_settings",
    "camera_physical_enable_thin_lens_equation",
    "camera_physical_exposure",
    "camera_physical_f_number",
    "camera_physical_film_width",
    "camera_physical_focal_length",
    "camera_physical_focus_distance",
    "camera_physical_fov",
    "camera_physical_horizontal_offset",
    "camera_physical_horizontal_shift",
    "camera_physical_ISO",
    "camera_physical_latency",
    "camera_physical_lens_file",
    "camera_physical_lens_shift",
    "camera_physical_optical_vignetting",
    "camera_physical_rolling_shutter_duration",
    "camera_physical_rolling_shutter_mode",
    "camera_physical_shutter_angle",
    "camera_physical_shutter_offset",
    "camera_physical_shutter_speed",
    "camera_physical_specify_focus",
    "camera_physical_specify_fov",
    "camera_physical_subdivs",
    "camera_physical_target_distance",
    "camera_physical_targeted",
    "camera_physical_type",
    "camera_physical_use_dof",
    "camera_physical_use_moblur",
    "camera_physical_vertical_offset",
    "camera_physical_vignetting",
    "camera_physical_white_balance",
    "camera_physical_zoom_factor",
    "settings_camera_auto_corrections_mode",
    "settings_camera_auto_exposure",
    "settings_camera_auto_exposure_compensation",
    "settings_camera_auto_fit",
    "settings_camera_auto_white_balance",
    "settings_camera_curve",
    "settings_camera_dist",
    "settings_camera_dont_affect_settings",
    "settings_camera_fov",
    "settings_camera_height",
    "settings_camera_image_planes",
    "settings_camera_type",
    "M_cam_from_uv_00",
    "M_cam_from_uv_01",
    "M_cam_from_uv_02",
    "M_cam_from_uv_10",
    "M_cam_from_uv_11",
    "M_cam_from_uv_12",
    "M_cam_from_uv_20",
    "M_cam_from_uv_21",
    "M_cam_from_uv_22",
    "M_proj_00",
    "M_proj_01",
    "M_proj_02",
    "M_proj_03",
    "M_proj_10",
    "M_proj_11",
    "M_proj_12",
    "M_proj_13",
    "M_proj_20",
    "M_proj_21",
    "M_proj_22",
    "M_proj_23",
    "M_proj_30",
    "M_proj_31",
    "M_proj_32",
    "M_proj_33",
)

# Real rows of metadata_camera_parameters.csv (upstream facts), keyed by scene: five tilt-shift cameras
# (M_cam_from_uv_02 or _12 non-zero) and one plain pinhole camera (ai_001_001).
_REAL_CAMERA_ROWS: dict[str, str] = {
    "ai_001_001": (
        "ai_001_001,768.0,1024.0,0.02539999969303608,False,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,1.0,0"
        ".0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,400.0,,0.0,0.5773502886169104,0.0,0.0,0.0,0.43301271"
        "64626828,0.0,0.0,0.0,-1.0,1.7320507492870254,0.0,0.0,0.0,0.0,2.309400999049367,0.0,0.0,0.0,0.0,-1.00"
        "2002002002002,-2.002002002002002,0.0,0.0,-1.0,0.0"
    ),
    "ai_021_002": (
        'ai_021_002,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,8.15835189819336,36.3498382568'
        "3594,24.0506591796875,200.0,1.0471975803375244,0.029999999329447746,0.0,100.0,0.0,,-0.07169818878173"
        "828,0.0,200.0,0.0,180.0,0.0,100.0,0.0,1.0,6.0,656.152099609375,1.0,0.0,0.0,0.0,-0.3000001013278961,0"
        '.800000011920929,"Color(0.854902, 0.862745, 1)",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.047197580337'
        "5244,400.0,,0.0,0.5921100334279958,0.0,-0.03552660121159832,0.0,0.44294547502683684,0.35435649970875"
        "766,-0.0,0.03175838828849088,-1.0255646263489975,1.6888752825391975,0.004093252636162593,-0.05709004"
        "2380612493,0.0,0.0,2.203037491520368,0.761200839191837,0.0,0.0,0.06835745713015638,-0.95340563397282"
        "4,-2.002002002002002,0.0,0.068220878794232,-0.9515007276112399,0.0"
    ),
    "ai_023_002": (
        'ai_023_002,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,2.799999952316284,35.0,9.85734'
        "6534729004,200.0,1.0471975803375244,0.03999999165534973,0.0,100.0,0.0,,0.0,0.0,200.0,0.0,180.0,0.0,1"
        '0.0,0.0,1.0,6.0,386.3528137207031,1.0,0.0,0.0,0.0,-0.03999999910593033,1.0,"Color(1, 1, 1)",2.807800'
        "054550171,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,400.0,,0.0,0.5781714089953494,0.0,-0."
        "046253703070351544,0.0,0.433628556746512,0.04625371168577691,-0.0,-0.0,-1.0014222216378865,1.7295908"
        "867884606,0.0,-0.07988636719070868,0.0,0.0,2.3061211823846137,0.10651517609427631,0.0,0.0,0.0,-1.000"
        "578956959001,-2.002002002002002,0.0,0.0,-0.9985797982038381,0.0"
    ),
    "ai_031_003": (
        'ai_031_003,768.0,1024.0,0.0010000000474974513,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)"'
        ',0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,3.0,36.0,19.0,200.0,1.0471975'
        "803375244,0.009999999776482582,-0.009999999776482582,220.0,0.0,,0.045276109129190445,0.0,200.0,0.0,1"
        '80.0,0.0,40.0,0.0,1.0,6.0,1227.552001953125,1.0,0.0,0.0,0.0,0.029999999329447746,0.0,"Color(1, 1, 1)'
        '",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,400.0,,0.0,0.5776646382069178,0.0,-0.0115'
        "53292505902141,0.0,0.43282673625418516,-0.034626138126380296,0.0057766462529510705,-0.01959671054467"
        "582,-1.000462281817734,1.7313078315878465,-0.0009037918657376548,-0.01996178300478036,0.0,0.00079847"
        "13023439895,2.3067781521695316,-0.07984713201912141,0.0,0.01000087326715973,-0.04528006395520103,-1."
        "000087349069667,-2.002002002002002,0.00998089150239018,-0.04518959429694888,-0.9980891725480493,0.0"
    ),
    "ai_036_008": (
        'ai_036_008,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,8.0,36.0,29.623310089111328,20'
        "0.0,1.0471975803375244,-0.17299999296665192,0.0,220.0,0.0,,0.0,0.0,200.0,0.0,180.0,0.0,100.0,0.0,1.0"
        ',1.0,386.43121337890625,0.0,0.0,0.0,0.0,0.0,0.0,"Color(1, 1, 1)",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,Fal'
        "se,1.0471975803375244,90.0,,0.0,0.5850300735540572,0.0,0.20242039722026353,0.0,0.4387725551655429,-0"
        ".0,-0.0,-0.0,-1.013301778214287,1.709313837363951,0.0,0.3414579875138972,0.0,0.0,2.2790851164852675,"
        "0.0,0.0,0.0,0.0,-0.9888485577986469,-2.002002002002002,0.0,0.0,-0.9868728364044438,0.0"
    ),
    "ai_037_002": (
        'ai_037_002,768.0,1024.0,0.009999999776482582,True,0.0,0.0,5.0,0.0,True,0.0,512,"AColor(0, 0, 0, 0)",'
        '0.0,0.0,"AColor(0, 0, 0, 0)",0.0,0.0010000000474974513,False,True,1.0,2.5,36.0,32.0,490.0,1.04719758'
        "03375244,0.05999999865889549,0.0,100.0,0.0,,-0.009326552972197533,0.0,200.0,0.0,180.0,0.0,200.0,1.0,"
        '1.0,1.0,443.59698486328125,1.0,0.0,0.0,0.0,-0.07999999821186066,0.6000000238418579,"Color(0.941176, '
        '1, 0.945098)",1.0,1.0,0.0,0.0,0.0,0.0,1.0,2.0,False,1.0471975803375244,90.0,,0.0,0.579607251426182,0'
        ".0,-0.06955286861651404,0.0,0.4346865334657201,0.09273312506660672,-0.0,0.004054126980668954,-1.0039"
        "09173803896,1.7253062268275619,0.001113868662274642,-0.11942983282195321,0.0,0.0,2.2985281393428907,"
        "0.21231970279458348,0.0,0.0,0.009300822120943601,-0.9972411188430887,-2.002002002002002,0.0,0.009282"
        "239059762895,-0.9952486290951505,0.0"
    ),
}

# Values seen in the real files.
_SCENE_TYPES: tuple[str, ...] = (
    "Living room",
    "Kitchen",
    "Bedroom",
    "Bathroom",
    "Office",
    "Dining room",
    "Restaurant",
    "Hotel lobby",
)
REASON_CONTENT_FLAGGED = "CONTENT FLAGGED FOR REMOVAL"
REASON_BAD_TRAJECTORY = "OUTSIDE VIEWING AREA (BAD TRAJECTORY)"
_SPLITS: tuple[str, ...] = ("train", "val", "test")
_ZIP_DATE = (2020, 6, 1, 0, 0, 0)  # fixed member timestamps keep the bytes a function of the seed
PREVIEW_STEP = 4  # previews are subsampled by this step in both axes (upstream writes them full size)
FINAL_PREVIEWS: tuple[str, ...] = (
    "color",
    "gamma",
    "diffuse_reflectance",
    "diffuse_illumination",
    "residual",
    "lambertian",
    "non_lambertian",
    "diff",
    "tonemap",
)
GEOMETRY_PREVIEWS_JPG: tuple[str, ...] = ("color", "gamma")
GEOMETRY_PREVIEWS_PNG: tuple[str, ...] = (
    "render_entity_id",
    "depth_meters",
    "normal_world",
    "normal_cam",
    "normal_bump_world",
    "normal_bump_cam",
    "tex_coord",
    "semantic",
    "semantic_instance",
)
_FRAME_DTYPES: dict[str, type] = {
    **{k: np.float16 for k in layout.FINAL_KINDS},
    **{
        k: np.float16
        for k in (
            "depth_meters",
            "position",
            "normal_cam",
            "normal_world",
            "normal_bump_cam",
            "normal_bump_world",
            "tex_coord",
        )
    },
    **{k: np.int16 for k in ("render_entity_id", "semantic", "semantic_instance")},
}
_NAN_PIXELS = 5  # valid pixels whose depth (and position) is NaN in the planted frame


@dataclass(frozen=True)
class MirrorSpec:
    """Size of a synthetic mirror: scenes x cameras x frames, image height/width in pixels, and the seed."""

    scenes: int = 3
    cameras: int = 2
    frames: int = 4
    height: int = 768
    width: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("scenes", "cameras", "frames", "height", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"MirrorSpec.{name} must be at least 1, got {getattr(self, name)}")
        if self.scenes > 999 or self.cameras > 100 or self.frames > 10000:
            raise ValueError("MirrorSpec: at most 999 scenes, 100 cameras and 10000 frames (upstream name widths)")


@dataclass
class MirrorSummary:
    """What ``write_synthetic_mirror`` wrote.

    ``frames_included`` counts split rows with ``included_in_public_release`` (the planted missing
    frame among them). ``edge_cases`` keys: ``tilt_shift_scenes``, ``camera_parameter_source_rows``
    (real row each scene's camera came from), ``excluded_frames`` and ``excluded_trajectory`` (files
    absent), ``missing_frame`` (included, files absent), ``nan_depth_at_valid_pixels`` (with
    ``pixels`` as [row, col]), ``invalid_rotation_frame_0``, ``instance_ids_above_255``,
    ``semantic_without_instance`` (NYU40 classes), ``unlabelled_objects`` (rendered, semantic -1),
    ``void_frames`` (frames with "no geometry" pixels). A case is ``None`` when the spec is too
    small to hold it.
    """

    root: Path
    scenes: list[str]
    frames_total: int
    frames_included: int
    zip_bytes: int
    edge_cases: dict[str, object]


@dataclass(frozen=True)
class _ScenePlan:
    """Everything one worker needs to write one scene zip (picklable)."""

    name: str
    meters_per_asset_unit: float
    M_cam_from_uv: tuple[tuple[float, ...], ...]
    cameras: tuple[str, ...]
    frames: int
    height: int
    width: int
    room_seed: int
    absent: frozenset[tuple[str, int]]  # (camera, frame) whose files are not in the zip
    bad_rotation_camera: str | None
    nan_frame: tuple[str, int] | None
    zip_path: str


def _camera_row_fields(row: str) -> dict[str, str]:
    values = next(csv.reader([row]))
    if len(values) != len(CAMERA_PARAMETER_COLUMNS):
        raise ValueError(f"embedded camera row has {len(values)} fields, expected {len(CAMERA_PARAMETER_COLUMNS)}")
    return dict(zip(CAMERA_PARAMETER_COLUMNS, values))


def is_tilt_shift(fields: dict[str, str]) -> bool:
    """True if a camera-parameters row has an off-centre projection (M_cam_from_uv_02 or _12 non-zero)."""
    return float(fields["M_cam_from_uv_02"]) != 0.0 or float(fields["M_cam_from_uv_12"]) != 0.0


def _m_cam_from_uv(fields: dict[str, str]) -> np.ndarray:
    return np.array([[float(fields[f"M_cam_from_uv_{r}{c}"]) for c in range(3)] for r in range(3)])


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    write_bytes_atomic(data, path)


def _csv_bytes(columns: tuple[str, ...] | list[str], rows: list[list[object]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue().encode()


def hdf5_bytes(array: np.ndarray, compressed: bool) -> bytes:
    """An upstream-style HDF5 file holding ``array`` as ``dataset``.

    ``compressed``: the deflate (gzip) filter at level 9 with h5py's automatic chunk shape, which
    is what upstream's ``create_dataset(..., compression="gzip", compression_opts=9)`` produced
    ((96, 128) for 768x1024 depth); the chunks are deflated here with zlib-ng (a valid zlib stream,
    about a fifth faster than HDF5's own zlib) and written directly. Otherwise contiguous and
    unfiltered, as upstream wrote ``_detail`` arrays.
    """
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        if not compressed:
            f.create_dataset("dataset", data=array)
        else:
            a = np.ascontiguousarray(array)
            ds = f.create_dataset(
                "dataset", shape=a.shape, dtype=a.dtype, chunks=True, compression="gzip", compression_opts=9
            )
            chunks = ds.chunks
            for offset in itertools.product(*(range(0, n, c) for n, c in zip(a.shape, chunks))):
                block = a[tuple(slice(o, o + c) for o, c in zip(offset, chunks))]
                if block.shape != chunks:  # edge chunks are stored full size, padded with the fill value 0
                    padded = np.zeros(chunks, dtype=a.dtype)
                    padded[tuple(slice(0, n) for n in block.shape)] = block
                    block = padded
                ds.id.write_direct_chunk(offset, zlib_ng.compress(np.ascontiguousarray(block).tobytes(), 9))
    return buf.getvalue()


def _to_u8(a: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _palette(ids: np.ndarray, salt: int) -> np.ndarray:
    """Stable pseudo-random RGB per integer id; black for -1."""
    k = (ids.astype(np.int64) + 7) * (2654435761 + salt) & 0xFFFFFF
    rgb = np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=-1).astype(np.uint8)
    rgb[ids < 0] = 0
    return rgb


def _preview_members(prefix: str, frame: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The frame's preview JPEGs/PNGs (upstream names), subsampled by PREVIEW_STEP."""
    s = PREVIEW_STEP
    img = {k: v[::s, ::s] for k, v in frame.items()}
    color = img["color"].astype(np.float32)
    lam = img["diffuse_reflectance"] * img["diffuse_illumination"]
    valid = img["render_entity_id"] != -1
    bright = 0.3 * color[..., 0] + 0.59 * color[..., 1] + 0.11 * color[..., 2]
    p90 = float(np.percentile(bright[valid], 90)) if valid.any() else 1.0
    scale = 0.8**2.2 / p90 if p90 > 1e-4 else 0.0
    finals = {
        "color": color,
        "gamma": np.power(np.maximum(color, 0), 1 / 2.2),
        "diffuse_reflectance": img["diffuse_reflectance"],
        "diffuse_illumination": img["diffuse_illumination"],
        "residual": img["residual"],
        "lambertian": lam,
        "non_lambertian": img["residual"],
        "diff": np.abs(color - (lam + img["residual"])),
        "tonemap": np.power(np.maximum(color * scale, 0), 1 / 2.2),
    }
    out: dict[str, bytes] = {}
    fp, gp = prefix.format(group="final_preview"), prefix.format(group="geometry_preview")
    for k in FINAL_PREVIEWS:
        out[f"{fp}.{k}.jpg"] = encode_jpeg(_to_u8(finals[k]))
    for k in GEOMETRY_PREVIEWS_JPG:
        out[f"{gp}.{k}.jpg"] = encode_jpeg(_to_u8(finals[k]))
    depth = img["depth_meters"].astype(np.float32)
    dmax = float(np.nanmax(depth)) if np.isfinite(depth).any() else 1.0
    dn = np.nan_to_num(depth / max(dmax, 1e-6), nan=0.0)
    depth_rgb = np.stack([dn, 1.0 - np.abs(2 * dn - 1), 1.0 - dn], axis=-1)  # blue near, red far
    pngs = {
        "render_entity_id": _palette(img["render_entity_id"], 1),
        "depth_meters": _to_u8(depth_rgb),
        "tex_coord": _to_u8(img["tex_coord"].astype(np.float32)),
        "semantic": _palette(img["semantic"], 2),
        "semantic_instance": _palette(img["semantic_instance"], 3),
    }
    for k in ("normal_world", "normal_cam", "normal_bump_world", "normal_bump_cam"):
        pngs[k] = _to_u8((img[k].astype(np.float32) + 1.0) / 2.0)
    for k in GEOMETRY_PREVIEWS_PNG:
        out[f"{gp}.{k}.png"] = encode_png(pngs[k])
    return out


def _inside_any_box(room: Room, point: np.ndarray, margin: float) -> bool:
    """True if ``point`` (asset units) lies within ``margin`` (asset units) of a furniture box."""
    for b in room.boxes:
        local = (point - b.center) @ b.rotation()
        if np.all(np.abs(local) <= b.half + margin):
            return True
    return False


def _trajectory(
    room: Room, camera_index: int, frames: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keyframe positions (F,3), look-at positions (F,3) and orientations (F,3,3) in asset units.

    Cameras stand at eye height clear of the furniture. ``cam_00`` stands near the -y wall and
    looks across the room towards the window (so its frames show "no geometry" pixels); the
    others stand mid-room and look down at a random wall.
    """
    to_m = room.meters_per_asset_unit
    lo, hi = room.lo * to_m, room.hi * to_m
    size = hi - lo
    for _attempt in range(100):
        if camera_index == 0:
            start = lo + np.array([rng.uniform(0.35, 0.65) * size[0], rng.uniform(1.1, 1.5), rng.uniform(1.5, 1.8)])
            x0, x1, z0, _z1 = (v * to_m for v in room.window)
            target = np.array([(x0 + x1) / 2 + rng.uniform(-0.5, 0.5), hi[1], z0 + rng.uniform(-0.5, -0.1)])
        else:
            start = lo + np.array(
                [rng.uniform(0.4, 0.6) * size[0], rng.uniform(0.4, 0.6) * size[1], rng.uniform(1.4, 1.7)]
            )
            wall = int(rng.integers(0, 3))
            t = rng.uniform(0.2, 0.8)
            tz = lo[2] + rng.uniform(0.3, 0.6)
            target = [
                np.array([lo[0], lo[1] + t * size[1], tz]),
                np.array([hi[0], lo[1] + t * size[1], tz]),
                np.array([lo[0] + t * size[0], lo[1], tz]),
            ][wall]
        step = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), 0.0])
        step = step / np.linalg.norm(step) * rng.uniform(0.05, 0.12)
        pan = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), 0.0]) * 0.15
        positions = np.stack([start + i * step for i in range(frames)])
        if (
            all(not _inside_any_box(room, p / to_m, 0.25 / to_m) for p in positions)
            and np.all(positions > lo + 0.3)
            and np.all(positions < hi - 0.3)
        ):
            break
    else:
        raise RuntimeError(f"{room.name}: no camera position clear of the furniture after 100 tries")
    targets = np.stack([target + i * pan for i in range(frames)])
    orientations = np.stack([look_at_orientation(p, t) for p, t in zip(positions, targets)])
    return positions / to_m, targets / to_m, orientations


def _non_rotation(R: np.ndarray) -> np.ndarray:
    """An artist-style frame-0 orientation: scaled and slightly skewed, so not a rotation (upstream issue 103)."""
    skew = np.array([[1.0, 0.02, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return 1.01 * R @ skew


def _write_scene(plan: _ScenePlan) -> dict[str, object]:
    """Render one scene and write its zip atomically (members streamed in, one frame in memory at a time)."""
    path = Path(plan.zip_path)
    with _SceneZip(path) as zf:
        facts = _render_scene(plan, zf.add)
    return {**facts, "zip_bytes": path.stat().st_size}


def _render_scene(plan: _ScenePlan, put: Callable[[str, bytes, bool], None]) -> dict[str, object]:
    """Render one scene, handing each member to ``put(name, data, deflate)``; returns facts for the summary."""
    rng = np.random.default_rng(plan.room_seed)
    room = build_room(plan.name, plan.meters_per_asset_unit, rng)
    M = np.array(plan.M_cam_from_uv)
    s = plan.name
    put(
        layout.scene_metadata_member(s),
        _csv_bytes(
            ["parameter_name", "parameter_value"], [["meters_per_asset_unit", repr(plan.meters_per_asset_unit)]]
        ),
        True,
    )
    put(f"{s}/_detail/metadata_cameras.csv", _csv_bytes(["camera_name"], [[c] for c in plan.cameras]), True)
    put(
        f"{s}/_detail/metadata_nodes.csv",
        _csv_bytes(
            ["node_id", "node_name", "object_id", "object_name"],
            [
                [n.node_id, n.name, n.object_id, room.objects[n.object_id].name if n.object_id >= 0 else "_NULL_OBJECT"]
                for n in room.nodes
            ],
        ),
        True,
    )
    strings: list[list[object]] = []
    for n in room.nodes:
        strings.append([n.node_id, "<root>", n.name])
        strings.append([n.node_id, "<root>.material", f"Mtl_{n.name.split('@')[0]}"])
        if not n.visible:
            strings.append([n.node_id, "<root>.geometry", f"LightRectangle_{n.node_id:03d}"])
    put(f"{s}/_detail/metadata_node_strings.csv", _csv_bytes(["node_id", "path", "string"], strings), True)

    mesh = f"{s}/_detail/mesh"
    put(f"{mesh}/metadata_objects.csv", _csv_bytes(["object_name"], [[o.name] for o in room.objects]), True)
    put(
        f"{mesh}/mesh_objects_si.hdf5",
        hdf5_bytes(np.array([[o.semantic] for o in room.objects], dtype=np.int64), False),
        True,
    )
    put(
        f"{mesh}/mesh_objects_sii.hdf5",
        hdf5_bytes(np.array([[o.instance] for o in room.objects], dtype=np.int64), False),
        True,
    )
    sem_colors = np.concatenate([[[-1, -1, -1]], _palette(np.arange(1, 41), 2).astype(np.int64)])
    inst_colors = np.concatenate([[[-1, -1, -1]], _palette(np.arange(1, room.instance_count), 3).astype(np.int64)])
    put(f"{mesh}/metadata_semantic_colors.hdf5", hdf5_bytes(sem_colors, False), True)
    put(f"{mesh}/metadata_semantic_instance_colors.hdf5", hdf5_bytes(inst_colors, False), True)
    put(
        f"{mesh}/metadata_scene_annotation_tool.log",
        b"[HYPERSIM: SCENE_ANNOTATION_TOOL] Loaded scene:   Mon Jun  1 09:00:00 2020\n[HYPERSIM: SCENE_ANNOTATION_TOOL] Unloaded scene: Mon Jun  1 09:30:00 2020\n",
        True,
    )
    pos, ori, ext = bounding_boxes(room)
    for kind, arr in (("positions", pos), ("orientations", ori), ("extents", ext)):
        put(layout.bounding_box_member(s, kind), hdf5_bytes(arr, False), True)

    void_frames: list[dict[str, object]] = []
    nan_pixels: list[list[int]] = []
    frame_0_orientation_error: float | None = None
    for ci, cam in enumerate(plan.cameras):
        positions, look_at, orientations = _trajectory(room, ci, plan.frames, rng)
        if cam == plan.bad_rotation_camera:
            orientations[0] = _non_rotation(orientations[0])
            frame_0_orientation_error = float(np.abs(orientations[0].T @ orientations[0] - np.eye(3)).max())
        put(
            layout.camera_keyframe_member(s, cam, "frame_indices"),
            hdf5_bytes(np.arange(plan.frames, dtype=np.int64), False),
            True,
        )
        put(layout.camera_keyframe_member(s, cam, "positions"), hdf5_bytes(positions, False), True)
        put(layout.camera_keyframe_member(s, cam, "orientations"), hdf5_bytes(orientations, False), True)
        put(layout.camera_keyframe_member(s, cam, "look_at_positions"), hdf5_bytes(look_at, False), True)
        put(
            f"{s}/_detail/{cam}/metadata_camera.csv",
            _csv_bytes(["parameter_name", "parameter_value"], [["frame_time_seconds", 1.0]]),
            True,
        )
        for fi in range(plan.frames):
            if (cam, fi) in plan.absent:
                continue
            frame = render_frame(room, M, positions[fi], orientations[fi], plan.height, plan.width)
            if plan.nan_frame == (cam, fi):
                valid = np.flatnonzero(frame["render_entity_id"].reshape(-1) != -1)
                pick = np.sort(rng.choice(valid, size=min(_NAN_PIXELS, valid.size), replace=False))
                for flat in pick:
                    r, c = divmod(int(flat), plan.width)
                    frame["depth_meters"][r, c] = np.nan
                    frame["position"][r, c] = np.nan
                    nan_pixels.append([r, c])
            void = int((frame["render_entity_id"] == -1).sum())
            if void:
                void_frames.append({"scene": s, "camera": cam, "frame_id": fi, "void_pixels": void})
            cast = {k: v.astype(_FRAME_DTYPES[k]) for k, v in frame.items()}
            for kind, arr in cast.items():
                group = "final" if kind in layout.FINAL_KINDS else "geometry"
                put(layout.frame_member(s, cam, fi, group, kind), hdf5_bytes(arr, True), False)
            for name, data in _preview_members(f"{s}/images/scene_{cam}_{{group}}/frame.{fi:04d}", cast).items():
                put(name, data, False)

    return {
        "scene": s,
        "void_frames": void_frames,
        "nan_pixels": nan_pixels,
        "instance_ids_above_255": sorted({int(o.instance) for o in room.objects if o.instance > 255}),
        "semantic_without_instance": sorted(
            {int(o.semantic) for o in room.objects if o.semantic != -1 and o.instance == -1}
        ),
        "unlabelled_objects": sorted(
            room.objects[n.object_id].name
            for n in room.nodes
            if n.object_id >= 0 and room.objects[n.object_id].semantic == -1
        ),
        "frame_0_orientation_error": frame_0_orientation_error,
    }


class _SceneZip:
    """A zip written through a temp file and moved into place on success; members get their folder
    entries first, fixed timestamps and Unix modes, so the bytes depend only on what is added."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.dirs: set[str] = set()

    def __enter__(self) -> _SceneZip:  # noqa: PYI034 (Self needs Python 3.11; the project supports 3.10)
        self.raw = open(self.tmp, "wb")
        self.zf = zipfile.ZipFile(self.raw, "w")
        return self

    def add(self, name: str, data: bytes, deflate: bool) -> None:
        """Append member ``name`` (DEFLATED if ``deflate`` else STORED), after any missing folder entries."""
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i]) + "/"
            if folder not in self.dirs:
                self.dirs.add(folder)
                info = zipfile.ZipInfo(folder, date_time=_ZIP_DATE)
                info.create_system = 3
                info.external_attr = (0o40755 << 16) | 0x10
                self.zf.writestr(info, b"")
        info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        self.zf.writestr(info, data, compresslevel=6 if deflate else None)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.zf.close()
            self.raw.flush()
            if exc_type is None:
                os.fsync(self.raw.fileno())
        finally:
            self.raw.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _scene_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct names ``ai_VVV_NNN``, sorted."""
    names: set[str] = set()
    while len(names) < count:
        names.add(f"ai_{int(rng.integers(1, 56)):03d}_{int(rng.integers(1, 21)):03d}")
    return sorted(names)


def write_synthetic_mirror(root: Path, spec: MirrorSpec = MirrorSpec(), workers: int = 1) -> MirrorSummary:
    """Write a synthetic Hypersim source under ``root`` and return what it holds.

    Layout: ``root/<the three metadata CSVs>`` and ``root/scenes/<scene>.zip``. Every file is
    written atomically. The bytes depend only on ``spec`` (not on ``workers``); ``workers``
    processes render scenes in parallel.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    root = Path(root)
    (root / "scenes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    names = _scene_names(spec.scenes, rng)
    cameras = tuple(f"cam_{i:02d}" for i in range(spec.cameras))
    F = spec.frames

    tilt_rows = [k for k, v in _REAL_CAMERA_ROWS.items() if is_tilt_shift(_camera_row_fields(v))]
    plain_rows = [k for k, v in _REAL_CAMERA_ROWS.items() if not is_tilt_shift(_camera_row_fields(v))]
    offset = int(rng.integers(0, len(tilt_rows)))
    row_of: dict[str, str] = {}
    for i, s in enumerate(names):
        # Most scenes tilt-shift; every third one (the second of three) a plain pinhole camera.
        src = plain_rows[0] if i % 3 == 1 else tilt_rows[(offset + i) % len(tilt_rows)]
        row_of[s] = src
    split_of = {s: _SPLITS[i % 3] for i, s in enumerate(names)}
    type_of = {s: _SCENE_TYPES[int(rng.integers(0, len(_SCENE_TYPES)))] for s in names}
    room_seed = {s: int(rng.integers(0, 2**31)) for s in names}

    # Planted edge cases (each only if the spec leaves room for it).
    excluded: dict[tuple[str, str, int], str] = {}
    bad_trajectory = (names[-1], cameras[-1]) if spec.cameras >= 2 else None
    if bad_trajectory:
        for f in range(F):
            excluded[(*bad_trajectory, f)] = REASON_BAD_TRAJECTORY
    if F >= 3:
        excluded[(names[0], cameras[0], F - 1)] = REASON_CONTENT_FLAGGED
    included = [(s, c, f) for s in names for c in cameras for f in range(F) if (s, c, f) not in excluded]
    included_set = set(included)

    def first(cands: list[tuple[str, str, int]], taken: set[tuple[str, str, int]]) -> tuple[str, str, int] | None:
        return next((x for x in cands if x in included_set and x not in taken), None)

    bad_rotation = first([(s, c, 0) for s in names for c in cameras], set())
    taken = {bad_rotation} if bad_rotation else set()
    missing = first([(names[0], cameras[0], 1)] + [x for x in included if x[2] != 0], taken)
    if missing:
        taken.add(missing)
    nan_pref = [(names[min(2, len(names) - 1)], cameras[0], F // 2)]
    nan_frame = first(nan_pref + sorted(included, key=lambda x: (x[0] == names[0], x)), taken)

    plans = []
    for s in names:
        fields = _camera_row_fields(_REAL_CAMERA_ROWS[row_of[s]])
        absent = frozenset((c, f) for (sc, c, f) in list(excluded) + ([missing] if missing else []) if sc == s)
        plans.append(
            _ScenePlan(
                name=s,
                meters_per_asset_unit=float(fields["settings_units_info_meters_scale"]),
                M_cam_from_uv=tuple(tuple(r) for r in _m_cam_from_uv(fields).tolist()),
                cameras=cameras,
                frames=F,
                height=spec.height,
                width=spec.width,
                room_seed=room_seed[s],
                absent=absent,
                bad_rotation_camera=bad_rotation[1] if bad_rotation and bad_rotation[0] == s else None,
                nan_frame=(nan_frame[1], nan_frame[2]) if nan_frame and nan_frame[0] == s else None,
                zip_path=str(root / "scenes" / f"{s}.zip"),
            )
        )
    if workers == 1 or len(plans) == 1:
        results = [_write_scene(p) for p in plans]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(plans))) as pool:
            results = list(pool.map(_write_scene, plans))

    split_rows = []
    for s in names:
        for c in cameras:
            for f in range(F):
                reason = excluded.get((s, c, f))
                split_rows.append([s, c, f, reason is None, reason or "", "" if reason else split_of[s]])
    traj_rows = []
    for s in names:
        for c in cameras:
            scene_type = REASON_BAD_TRAJECTORY if bad_trajectory == (s, c) else type_of[s]
            traj_rows.append(
                [
                    f"{s}_{c}",
                    f"{s}@scene_{c}_geometry",
                    "large",
                    f"{s}@scene_{c}_pre",
                    "2xlarge",
                    f"{s}@scene_{c}_final",
                    "9xlarge",
                    scene_type,
                    "",
                    "",
                ]
            )
    cam_rows = []
    for s in names:
        fields = _camera_row_fields(_REAL_CAMERA_ROWS[row_of[s]])
        fields.update(
            scene_name=s,
            settings_output_img_height=repr(float(spec.height)),
            settings_output_img_width=repr(float(spec.width)),
        )
        cam_rows.append([fields[c] for c in CAMERA_PARAMETER_COLUMNS])
    _atomic_write(root / layout.SPLIT_CSV, _csv_bytes(SPLIT_COLUMNS, split_rows))
    _atomic_write(root / layout.TRAJECTORIES_CSV, _csv_bytes(TRAJECTORY_COLUMNS, traj_rows))
    _atomic_write(root / layout.CAMERA_PARAMETERS_CSV, _csv_bytes(CAMERA_PARAMETER_COLUMNS, cam_rows))

    by_scene = {r["scene"]: r for r in results}

    def where(x: tuple[str, str, int] | None) -> dict[str, object] | None:
        return None if x is None else {"scene": x[0], "camera": x[1], "frame_id": x[2]}

    edge_cases: dict[str, object] = {
        "tilt_shift_scenes": [s for s in names if is_tilt_shift(_camera_row_fields(_REAL_CAMERA_ROWS[row_of[s]]))],
        "camera_parameter_source_rows": dict(row_of),
        "excluded_frames": [
            {"scene": s, "camera": c, "frame_id": f, "exclude_reason": r} for (s, c, f), r in sorted(excluded.items())
        ],
        "excluded_trajectory": None
        if bad_trajectory is None
        else {"scene": bad_trajectory[0], "camera": bad_trajectory[1], "exclude_reason": REASON_BAD_TRAJECTORY},
        "missing_frame": where(missing),
        "nan_depth_at_valid_pixels": None
        if nan_frame is None
        else {**where(nan_frame), "pixels": by_scene[nan_frame[0]]["nan_pixels"]},  # type: ignore[dict-item]
        "invalid_rotation_frame_0": None
        if bad_rotation is None
        else {**where(bad_rotation), "max_abs_RtR_minus_I": by_scene[bad_rotation[0]]["frame_0_orientation_error"]},  # type: ignore[dict-item]
        "instance_ids_above_255": {s: by_scene[s]["instance_ids_above_255"] for s in names},
        "semantic_without_instance": {s: by_scene[s]["semantic_without_instance"] for s in names},
        "unlabelled_objects": {s: by_scene[s]["unlabelled_objects"] for s in names},
        "void_frames": [v for s in names for v in by_scene[s]["void_frames"]],  # type: ignore[attr-defined]
    }
    return MirrorSummary(
        root=root,
        scenes=names,
        frames_total=spec.scenes * spec.cameras * F,
        frames_included=len(included),
        zip_bytes=sum(int(r["zip_bytes"]) for r in results),
        edge_cases=edge_cases,
    )
