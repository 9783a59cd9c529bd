"""One scene of the mirror: its plan (what to render and which edge cases it carries), the camera
trajectories, and the writer that renders every frame and streams the members into the scene's
zip in upstream's order (``_detail`` files, then per camera its keyframes and frame images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hypersim_assets.common import layout
from hypersim_assets.synthetic.hdf5_files import FRAME_DTYPES, hdf5_bytes
from hypersim_assets.synthetic.metadata_csvs import csv_bytes
from hypersim_assets.synthetic.previews import palette, preview_members
from hypersim_assets.synthetic.render import render_frame
from hypersim_assets.synthetic.room import Room, bounding_boxes, build_room, look_at_orientation
from hypersim_assets.synthetic.scene_zip import SceneZip

_NAN_PIXELS = 5  # valid pixels whose depth (and position) is NaN in the planted frame


@dataclass(frozen=True)
class ScenePlan:
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


def write_scene(plan: ScenePlan) -> dict[str, object]:
    """Render one scene and write its zip atomically (members streamed in, one frame in memory at a time)."""
    path = Path(plan.zip_path)
    with SceneZip(path) as zf:
        facts = _render_scene(plan, zf.add)
    return {**facts, "zip_bytes": path.stat().st_size}


def _render_scene(plan: ScenePlan, put: Callable[[str, bytes, bool], None]) -> dict[str, object]:
    """Render one scene, handing each member to ``put(name, data, deflate)``; returns facts for the summary."""
    rng = np.random.default_rng(plan.room_seed)
    room = build_room(plan.name, plan.meters_per_asset_unit, rng)
    M = np.array(plan.M_cam_from_uv)
    s = plan.name
    put(
        layout.scene_metadata_member(s),
        csv_bytes(["parameter_name", "parameter_value"], [["meters_per_asset_unit", repr(plan.meters_per_asset_unit)]]),
        True,
    )
    put(f"{s}/_detail/metadata_cameras.csv", csv_bytes(["camera_name"], [[c] for c in plan.cameras]), True)
    put(
        f"{s}/_detail/metadata_nodes.csv",
        csv_bytes(
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
    put(f"{s}/_detail/metadata_node_strings.csv", csv_bytes(["node_id", "path", "string"], strings), True)

    mesh = f"{s}/_detail/mesh"
    put(f"{mesh}/metadata_objects.csv", csv_bytes(["object_name"], [[o.name] for o in room.objects]), True)
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
    sem_colors = np.concatenate([[[-1, -1, -1]], palette(np.arange(1, 41), 2).astype(np.int64)])
    inst_colors = np.concatenate([[[-1, -1, -1]], palette(np.arange(1, room.instance_count), 3).astype(np.int64)])
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
            csv_bytes(["parameter_name", "parameter_value"], [["frame_time_seconds", 1.0]]),
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
            cast = {k: v.astype(FRAME_DTYPES[k]) for k, v in frame.items()}
            for kind, arr in cast.items():
                group = "final" if kind in layout.FINAL_KINDS else "geometry"
                put(layout.frame_member(s, cam, fi, group, kind), hdf5_bytes(arr, True), False)
            prefix = f"{s}/images/scene_{cam}_{{group}}/frame.{fi:04d}"
            for name, data in preview_members(prefix, cast, plan.room_seed).items():
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
