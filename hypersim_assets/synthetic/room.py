"""A procedural box-shaped room and a ray caster that renders it the way Hypersim
renders its scenes: the per-pixel geometry and shading images of one camera pose.

Pure numpy: no files. Conventions follow the upstream data:
- world ("asset") coordinates with +z up, lengths in asset units
  (``meters = asset_units * meters_per_asset_unit``);
- a camera orientation maps camera to world, its columns are the camera axes
  (x right, y up, z pointing away from where the camera looks);
- a pixel's ray in camera space is ``M_cam_from_uv @ [u, v, 1]`` with ``u, v`` the
  pixel centre in [-1, 1], ``v`` up (row 0 is the top row);
- ``depth_meters`` is the Euclidean distance from the camera centre to the hit point
  in metres; ``normal_*_cam = orientation.T @ normal_*_world`` (as upstream, even when
  the stored orientation is not a proper rotation);
- no geometry: ``render_entity_id``/``semantic``/``semantic_instance`` -1 and
  ``depth``/``position``/normals NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# NYU40 classes used by the room's surfaces and furniture.
NYU40_WALL = 1
NYU40_FLOOR = 2
NYU40_CABINET = 3
NYU40_BED = 4
NYU40_CHAIR = 5
NYU40_SOFA = 6
NYU40_TABLE = 7
NYU40_BOOKSHELF = 10
NYU40_CEILING = 22
NYU40_LAMP = 35

# Furniture kinds: (name, NYU40 class or -1, footprint x/y range in m, height range in m, texture).
_FURNITURE: tuple[tuple[str, int, tuple[float, float], tuple[float, float], tuple[float, float], str], ...] = (
    ("bed", NYU40_BED, (1.4, 1.9), (1.9, 2.1), (0.45, 0.6), "checker"),
    ("cabinet", NYU40_CABINET, (0.5, 1.2), (0.4, 0.6), (0.8, 1.9), "wood"),
    ("sofa", NYU40_SOFA, (1.6, 2.2), (0.8, 0.95), (0.7, 0.9), "checker"),
    ("bookshelf", NYU40_BOOKSHELF, (0.8, 1.4), (0.3, 0.4), (1.6, 2.1), "wood"),
    ("chair", NYU40_CHAIR, (0.45, 0.55), (0.45, 0.55), (0.8, 1.0), "plain"),
    ("plant_pot", -1, (0.3, 0.45), (0.3, 0.45), (0.4, 0.9), "plain"),
)

# Surface material codes.
MAT_WALL, MAT_FLOOR, MAT_CEILING, MAT_WOOD, MAT_CHECKER, MAT_PLAIN = range(6)


@dataclass(frozen=True)
class Box:
    """One oriented box: centre and half sizes in asset units, yaw (radians) about +z."""

    center: np.ndarray
    half: np.ndarray
    yaw: float
    node_id: int
    material: int
    albedo: tuple[float, float, float]

    def rotation(self) -> np.ndarray:
        """Object-to-world rotation (a yaw about +z)."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class MeshObject:
    """A low-level mesh object: name, NYU40 class (-1 unlabelled), semantic instance id (-1 none)."""

    name: str
    semantic: int
    instance: int


@dataclass(frozen=True)
class Node:
    """A render node: ``node_id`` is the value in ``render_entity_id`` (1..N); object_id -1 for nodes without a mesh object."""

    node_id: int
    name: str
    object_id: int
    visible: bool


@dataclass
class Room:
    """The scene: an axis-aligned room with a window opening in its +y wall, furniture boxes, lights.

    All coordinates in asset units. ``objects`` are indexed by object_id, ``nodes`` by ``node_id - 1``.
    """

    name: str
    meters_per_asset_unit: float
    lo: np.ndarray
    hi: np.ndarray
    window: tuple[float, float, float, float]  # x0, x1, z0, z1 of the opening in the +y wall
    boxes: list[Box]
    objects: list[MeshObject]
    nodes: list[Node]
    wall_node: int
    floor_node: int
    ceiling_node: int
    lights: list[tuple[np.ndarray, np.ndarray]]  # (position, rgb intensity in W-ish units at 1 m)
    wall_albedo: tuple[float, float, float]
    floor_albedo: tuple[float, float, float]
    instance_count: int  # rows of the bounding-box files: max instance id + 1
    box_instances: dict[int, list[int]] = field(default_factory=dict)  # instance id -> indices into boxes

    def m(self, meters: float) -> float:
        """Metres to asset units."""
        return meters / self.meters_per_asset_unit


def build_room(name: str, meters_per_asset_unit: float, rng: np.random.Generator) -> Room:
    """A random furnished room: walls, floor, ceiling, a window, 4 to 6 furniture pieces, a two-box table,
    an unlabelled rug, and one annotated mesh object that no node renders (its instance has no geometry)."""
    mpau = meters_per_asset_unit
    size_m = np.array([rng.uniform(5.0, 7.0), rng.uniform(4.5, 6.5), rng.uniform(2.6, 3.0)])
    offset_m = np.array([rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0), rng.uniform(-0.2, 0.2)])
    lo_m, hi_m = offset_m, offset_m + size_m
    wx0 = rng.uniform(0.25, 0.45) * size_m[0]
    window_m = (
        lo_m[0] + wx0,
        lo_m[0] + wx0 + rng.uniform(1.2, 1.8),
        lo_m[2] + 0.9,
        lo_m[2] + min(2.2, size_m[2] - 0.3),
    )

    objects: list[MeshObject] = [
        MeshObject(f"{name}_walls", NYU40_WALL, -1),  # walls carry a class but no instance, as upstream
        MeshObject(f"{name}_floor", NYU40_FLOOR, 0),
        MeshObject(f"{name}_ceiling", NYU40_CEILING, 0),
    ]
    # Instance ids: sparse, some above 255 (int16 labels; uint8 would overflow); id 0 never occurs.
    pool = rng.permutation(np.arange(1, 320))
    next_id = iter(int(i) for i in np.concatenate([pool[:1], rng.permutation(np.arange(256, 320))[:3], pool[1:]]))
    used_ids: set[int] = set()

    def new_instance() -> int:
        while True:
            i = next(next_id)
            if i not in used_ids:
                used_ids.add(i)
                return i

    objects[1] = MeshObject(objects[1].name, NYU40_FLOOR, new_instance())
    objects[2] = MeshObject(objects[2].name, NYU40_CEILING, new_instance())

    boxes_spec: list[tuple[int, np.ndarray, np.ndarray, float, int, tuple[float, float, float]]] = []
    placed: list[tuple[np.ndarray, float]] = []  # footprint centre (m) and radius (m) for overlap tests

    def free(c: np.ndarray, r: float) -> bool:
        return all(np.hypot(*(c - pc)) > r + pr + 0.1 for pc, pr in placed)

    kinds = list(_FURNITURE)
    rng.shuffle(kinds)
    for kind in kinds[: int(rng.integers(4, len(kinds) + 1))]:
        kname, cls, sx, sy, sz, tex = kind
        dims = np.array([rng.uniform(*sx), rng.uniform(*sy), rng.uniform(*sz)])
        r = float(np.hypot(dims[0], dims[1]) / 2)
        for _ in range(60):
            # Against a wall, away from the +y window wall's opening and the room centre where cameras stand.
            wall = int(rng.integers(0, 4))
            yaw = [0.0, np.pi / 2, np.pi, -np.pi / 2][wall] + rng.uniform(-0.25, 0.25)
            t = rng.uniform(0.15, 0.85)
            inset = dims[1] / 2 + 0.15
            if wall == 0:
                c = np.array([lo_m[0] + t * size_m[0], lo_m[1] + inset])
            elif wall == 1:
                c = np.array([hi_m[0] - inset, lo_m[1] + t * size_m[1]])
            elif wall == 2:
                c = np.array([lo_m[0] + t * size_m[0], hi_m[1] - inset])
            else:
                c = np.array([lo_m[0] + inset, lo_m[1] + t * size_m[1]])
            inside = np.all(c - r > lo_m[:2] + 0.05) and np.all(c + r < hi_m[:2] - 0.05)
            if wall == 2 and window_m[0] - r < c[0] < window_m[1] + r:
                continue
            if inside and free(c, r):
                placed.append((c, r))
                break
        else:
            continue
        sem = cls
        inst = new_instance() if cls != -1 else -1
        obj_id = len(objects)
        objects.append(MeshObject(f"{name}_{kname}_{obj_id:03d}", sem, inst))
        mat = {"wood": MAT_WOOD, "checker": MAT_CHECKER, "plain": MAT_PLAIN}[tex]
        albedo = tuple(float(a) for a in rng.uniform(0.15, 0.75, size=3))
        centre = np.array([c[0], c[1], lo_m[2] + dims[2] / 2])
        boxes_spec.append((obj_id, centre, dims / 2, float(yaw), mat, albedo))

    # A table in the middle third, made of two low-level objects (top and pedestal) that share one instance.
    table_inst = new_instance()
    tc = np.array([rng.uniform(0.35, 0.65) * size_m[0] + lo_m[0], lo_m[1] + rng.uniform(0.5, 0.6) * size_m[1]])
    if not free(tc, 0.7):
        tc = np.array([lo_m[0] + 0.5 * size_m[0], lo_m[1] + 0.55 * size_m[1]])
    t_yaw = float(rng.uniform(-0.6, 0.6))
    t_h = rng.uniform(0.7, 0.78)
    top_half = np.array([rng.uniform(0.5, 0.8), rng.uniform(0.35, 0.5), 0.025])
    wood = tuple(float(a) for a in rng.uniform(0.3, 0.6, size=3) * np.array([1.0, 0.75, 0.5]))
    for part, centre, half in (
        ("top", np.array([tc[0], tc[1], lo_m[2] + t_h - 0.025]), top_half),
        ("pedestal", np.array([tc[0], tc[1], lo_m[2] + (t_h - 0.05) / 2]), np.array([0.08, 0.08, (t_h - 0.05) / 2])),
    ):
        obj_id = len(objects)
        objects.append(MeshObject(f"{name}_table_{part}_{obj_id:03d}", NYU40_TABLE, table_inst))
        boxes_spec.append((obj_id, centre, half, t_yaw, MAT_WOOD, wood))
    # A rug in the middle of the floor that nobody labelled: geometry with render_entity_id but semantic -1.
    rug_half = np.array([rng.uniform(0.25, 0.35) * size_m[0], rng.uniform(0.2, 0.3) * size_m[1], 0.006])
    rug_centre = np.array([lo_m[0] + 0.5 * size_m[0], lo_m[1] + rng.uniform(0.5, 0.6) * size_m[1], lo_m[2] + 0.006])
    obj_id = len(objects)
    objects.append(MeshObject(f"{name}_rug_{obj_id:03d}", -1, -1))
    boxes_spec.append(
        (
            obj_id,
            rug_centre,
            rug_half,
            float(rng.uniform(-0.1, 0.1)),
            MAT_CHECKER,
            tuple(float(a) for a in rng.uniform(0.2, 0.6, size=3)),
        )
    )
    # A mesh object that no node renders: its instance id gets no geometry in any image but keeps a box row.
    objects.append(MeshObject(f"{name}_hidden_lamp", NYU40_LAMP, new_instance()))

    # Nodes: ids 1..N in a shuffled order over the visible things, plus invisible lights without a mesh object.
    visible = ["walls", "floor", "ceiling"] + [f"box{i}" for i in range(len(boxes_spec))]
    extra = [f"light{i}" for i in range(int(rng.integers(1, 4)))]
    order = list(rng.permutation(len(visible) + len(extra)))
    labels = visible + extra
    node_of: dict[str, int] = {}
    nodes: list[Node | None] = [None] * len(labels)
    for slot, li in enumerate(order):
        node_of[labels[li]] = slot + 1
    for label, nid in node_of.items():
        if label == "walls":
            nodes[nid - 1] = Node(nid, f"{objects[0].name}@node", 0, True)
        elif label == "floor":
            nodes[nid - 1] = Node(nid, f"{objects[1].name}@node", 1, True)
        elif label == "ceiling":
            nodes[nid - 1] = Node(nid, f"{objects[2].name}@node", 2, True)
        elif label.startswith("box"):
            obj_id = boxes_spec[int(label[3:])][0]
            nodes[nid - 1] = Node(nid, f"{objects[obj_id].name}@node", obj_id, True)
        else:
            nodes[nid - 1] = Node(nid, f"{name}_{label}@light", -1, False)

    to_asset = 1.0 / mpau
    boxes = [
        Box(center * to_asset, half * to_asset, yaw, node_of[f"box{i}"], mat, albedo)
        for i, (obj_id, center, half, yaw, mat, albedo) in enumerate(boxes_spec)
    ]
    box_instances: dict[int, list[int]] = {}
    for i, (obj_id, *_rest) in enumerate(boxes_spec):
        inst = objects[obj_id].instance
        if inst != -1:
            box_instances.setdefault(inst, []).append(i)

    warm = np.array([1.0, 0.9, 0.75])
    lights = [
        (np.array([lo_m[0] + 0.5 * size_m[0], lo_m[1] + 0.45 * size_m[1], hi_m[2] - 0.35]) * to_asset, 6.0 * warm),
        (
            np.array([lo_m[0] + 0.8 * size_m[0], lo_m[1] + 0.2 * size_m[1], hi_m[2] - 0.5]) * to_asset,
            2.5 * np.array([0.85, 0.9, 1.0]),
        ),
    ]
    return Room(
        name=name,
        meters_per_asset_unit=mpau,
        lo=lo_m * to_asset,
        hi=hi_m * to_asset,
        window=tuple(v * to_asset for v in window_m),  # type: ignore[arg-type]
        boxes=boxes,
        objects=objects,
        nodes=[n for n in nodes if n is not None],
        wall_node=node_of["walls"],
        floor_node=node_of["floor"],
        ceiling_node=node_of["ceiling"],
        lights=lights,
        wall_albedo=tuple(float(a) for a in rng.uniform(0.55, 0.85, size=3)),
        floor_albedo=tuple(float(a) for a in rng.uniform(0.35, 0.6, size=3) * np.array([1.0, 0.78, 0.55])),
        instance_count=max(used_ids) + 1,
        box_instances=box_instances,
    )


def look_at_orientation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world rotation (columns x right, y up, z backward) of a camera at ``position`` looking at ``target``, +z up."""
    f = target - position
    f = f / np.linalg.norm(f)
    x = np.cross(f, np.array([0.0, 0.0, 1.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(x, f)
    return np.stack([x, y, -f], axis=1)


def camera_rays(M_cam_from_uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unnormalised camera-space rays (H, W, 3) through pixel centres: ``M_cam_from_uv @ [u, v, 1]``, v up."""
    u = np.linspace(-1.0 + 1.0 / width, 1.0 - 1.0 / width, width)
    v = np.linspace(1.0 - 1.0 / height, -1.0 + 1.0 / height, height)
    uu, vv = np.meshgrid(u, v)
    uv1 = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
    return _mat3(uv1, np.asarray(M_cam_from_uv, dtype=np.float64).T)


def bounding_boxes(room: Room) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-instance object-aligned boxes (positions (N,3), orientations (N,3,3), extents (N,3)), float64, asset units.

    Row i belongs to semantic instance id i; rows of ids without geometry are ``inf``, as in the
    upstream files (row 0 always: id 0 never occurs). The z axis points up; the box is the union of the
    instance's boxes in the frame of its first box.
    """
    n = room.instance_count
    pos = np.full((n, 3), np.inf)
    ori = np.full((n, 3, 3), np.inf)
    ext = np.full((n, 3), np.inf)
    floor_inst = room.objects[1].instance
    ceiling_inst = room.objects[2].instance
    for inst, z in ((floor_inst, room.lo[2]), (ceiling_inst, room.hi[2])):
        pos[inst] = [(room.lo[0] + room.hi[0]) / 2, (room.lo[1] + room.hi[1]) / 2, z]
        ori[inst] = np.eye(3)
        ext[inst] = [room.hi[0] - room.lo[0], room.hi[1] - room.lo[1], 0.0]
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    for inst, idx in sorted(room.box_instances.items()):
        R = room.boxes[idx[0]].rotation()
        corners = np.concatenate([b.center + (signs * b.half) @ b.rotation().T for b in (room.boxes[i] for i in idx)])
        local = corners @ R  # world -> frame of the first box
        lo, hi = local.min(axis=0), local.max(axis=0)
        pos[inst] = R @ ((lo + hi) / 2)
        ori[inst] = R
        ext[inst] = hi - lo
    return pos, ori, ext


def _mat3(a: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``a @ M`` for (N, 3) rows and a 3x3 matrix, by columns (much faster than numpy's small-matmul path)."""
    M = np.asarray(M, dtype=a.dtype)
    out = np.empty(a.shape, dtype=a.dtype)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    for j in range(3):
        out[..., j] = a0 * M[0, j] + a1 * M[1, j] + a2 * M[2, j]
    return out


def _argmin3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise minimum of three arrays and which one (0, 1, 2) holds it (faster than argmin over a short axis)."""
    m = np.minimum(np.minimum(a, b), c)
    return m, np.where(a == m, 0, np.where(b == m, 1, 2))


def _hit_boxes(
    room: Room, o: np.ndarray, d: np.ndarray, t_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest box hit along rays ``o + t d`` (d (N,3) unit, o (3,) or (N,3)) closer than ``t_max``.

    Returns (t, box index or -1, world normal (N,3)). Rays are first culled against each box's
    bounding sphere, so only candidates pay for the slab test.
    """
    n = d.shape[0]
    best_t = t_max.astype(np.float32, copy=True)
    best_i = np.full(n, -1, dtype=np.int64)
    best_nrm = np.zeros((n, 3), dtype=np.float32)
    per_ray_origin = o.ndim == 2
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    for i, b in enumerate(room.boxes):
        r2 = float(b.half @ b.half)
        oc = b.center - o
        if per_ray_origin:
            ox, oy, oz = oc[:, 0], oc[:, 1], oc[:, 2]
            proj = ox * dx + oy * dy + oz * dz
            oc2 = ox * ox + oy * oy + oz * oz
        else:
            proj = dx * oc[0] + dy * oc[1] + dz * oc[2]
            oc2 = float(oc @ oc)
        r = np.sqrt(r2)
        cand = np.flatnonzero((oc2 - proj * proj <= r2) & (proj + r > 0) & (proj - r < best_t))
        if cand.size == 0:
            continue
        R = b.rotation()
        dl = _mat3(d[cand], R)
        ol = _mat3(np.atleast_2d((o[cand] if per_ray_origin else o) - b.center), R)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / np.where(np.abs(dl) < 1e-12, 1e-12, dl)
            t1 = (-b.half - ol) * inv
            t2 = (b.half - ol) * inv
        tn = np.minimum(t1, t2)
        tf = np.maximum(t1, t2)
        t_near = np.maximum(np.maximum(tn[:, 0], tn[:, 1]), tn[:, 2])
        t_far = np.minimum(np.minimum(tf[:, 0], tf[:, 1]), tf[:, 2])
        hit = (t_near <= t_far) & (t_near > 1e-6 * r) & (t_near < best_t[cand])
        if not hit.any():
            continue
        hc = cand[hit]
        tnh = tn[hit]
        axis = np.where(tnh[:, 0] == t_near[hit], 0, np.where(tnh[:, 1] == t_near[hit], 1, 2))
        nl = np.zeros((hc.size, 3))
        rows = np.arange(hc.size)
        nl[rows, axis] = -np.sign(dl[hit][rows, axis])
        best_t[hc] = t_near[hit]
        best_i[hc] = i
        best_nrm[hc] = _mat3(nl, R.T)
    return best_t, best_i, best_nrm


def _hash01(k: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer (for per-plank/per-tile colour jitter)."""
    k = (k.astype(np.int64) * 2654435761 + 12345) & 0xFFFFFFFF
    k = (k ^ (k >> 15)) * 2246822519 & 0xFFFFFFFF
    k = k ^ (k >> 13)
    return (k & 0xFFFF) / 65536.0


def render_frame(
    room: Room,
    M_cam_from_uv: np.ndarray,
    camera_position: np.ndarray,
    camera_orientation: np.ndarray,
    height: int,
    width: int,
) -> dict[str, np.ndarray]:
    """Ray-cast one frame; returns every upstream per-frame image (float32/float64/int32, not yet cast to file dtypes).

    Keys: the four final kinds (H,W,3) and the ten geometry kinds; ``depth_meters`` (H,W),
    ``render_entity_id``/``semantic``/``semantic_instance`` (H,W), the rest (H,W,3).
    ``color == diffuse_reflectance * diffuse_illumination + residual`` up to rounding.
    """
    R = np.asarray(camera_orientation, dtype=np.float64)
    rays_cam = camera_rays(M_cam_from_uv, height, width).reshape(-1, 3)
    d = _mat3(rays_cam, R.T)
    d /= np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2 + d[:, 2] ** 2)[:, None]
    o = np.asarray(camera_position, dtype=np.float64)
    n = d.shape[0]
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]

    # Room interior: the exit face of the axis-aligned box.
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.where(dx > 0, (room.hi[0] - o[0]) / dx, (room.lo[0] - o[0]) / dx)
        ty = np.where(dy > 0, (room.hi[1] - o[1]) / dy, (room.lo[1] - o[1]) / dy)
        tz = np.where(dz > 0, (room.hi[2] - o[2]) / dz, (room.lo[2] - o[2]) / dz)
    tx[~np.isfinite(tx) | (tx < 0)] = np.inf
    ty[~np.isfinite(ty) | (ty < 0)] = np.inf
    tz[~np.isfinite(tz) | (tz < 0)] = np.inf
    t_room, axis = _argmin3(tx, ty, tz)
    x0, x1, z0, z1 = room.window
    px = o[0] + t_room * dx
    pz = o[2] + t_room * dz
    in_window = (axis == 1) & (dy > 0) & (px > x0) & (px < x1) & (pz > z0) & (pz < z1)
    t_room[in_window] = np.inf

    t_box, box_i, normal_box = _hit_boxes(room, o, d, t_room)
    on_box = box_i >= 0
    hit = np.isfinite(t_box)
    t = np.where(hit, t_box.astype(np.float64), np.nan)
    t = np.where(on_box | ~hit, t, t_room)  # room hits keep their float64 distance
    p = np.empty_like(d)
    for a in range(3):
        p[:, a] = o[a] + t * d[:, a]

    nrm = np.zeros((n, 3))
    for a, da in ((0, dx), (1, dy), (2, dz)):
        sel = ~on_box & (axis == a)
        nrm[sel, a] = -np.sign(da[sel])
    nrm[on_box] = normal_box[on_box]
    nrm[~hit] = np.nan

    # Node, material, surface coordinates (metres) and albedo per pixel.
    node = np.full(n, -1, dtype=np.int32)
    is_floor = hit & ~on_box & (axis == 2) & (dz < 0)
    is_ceiling = hit & ~on_box & (axis == 2) & (dz > 0)
    is_wall = hit & ~on_box & (axis != 2)
    node[is_floor] = room.floor_node
    node[is_ceiling] = room.ceiling_node
    node[is_wall] = room.wall_node
    box_nodes = np.array([b.node_id for b in room.boxes] + [-1], dtype=np.int32)
    node[on_box] = box_nodes[box_i[on_box]]

    # Shade only the pixels that hit something (h-prefixed arrays are over those).
    hi_ = np.flatnonzero(hit)
    mpau = room.meters_per_asset_unit
    hp = p[hi_]
    hn = nrm[hi_].astype(np.float32)
    pm = (hp * mpau).astype(np.float32)
    # Surface parametrisation: two in-plane coordinates chosen by the dominant normal axis.
    anx, any_, anz = np.abs(hn[:, 0]), np.abs(hn[:, 1]), np.abs(hn[:, 2])
    an = np.where((anx >= any_) & (anx >= anz), 0, np.where(any_ >= anz, 1, 2))
    s_coord = np.where(an == 0, pm[:, 1], pm[:, 0])
    t_coord = np.where(an == 2, pm[:, 1], pm[:, 2])
    m = hi_.size
    albedo = np.zeros((m, 3), dtype=np.float32)
    bump = np.zeros((m, 2), dtype=np.float32)
    h_floor, h_ceiling, h_wall, h_box = is_floor[hi_], is_ceiling[hi_], is_wall[hi_], on_box[hi_]

    # Walls: soft vertical gradient and faint wallpaper stripes.
    wa = np.array(room.wall_albedo, dtype=np.float32)
    sw, tw = s_coord[h_wall], t_coord[h_wall]
    albedo[h_wall] = (
        wa
        * (0.9 + 0.1 * np.clip((tw - room.lo[2] * mpau) / 3.0, 0, 1) + 0.04 * np.sin(sw * (2 * np.pi / 0.18)))[:, None]
    )
    bump[h_wall, 0] = 0.05 * np.cos(sw * (2 * np.pi / 0.18))
    # Floor: wooden planks with per-plank tint, grain and dark seams.
    sf, tf_ = s_coord[h_floor], t_coord[h_floor]
    plank = np.floor(sf / 0.2)
    grain = np.sin(tf_ * 9.0 + 3.0 * np.sin(sf * 23.0 + plank * 1.7))
    tint = 0.8 + 0.4 * _hash01(plank.astype(np.int64) + 1000)
    seam = np.abs(sf / 0.2 - np.round(sf / 0.2)) < 0.03
    fcol = (
        np.array(room.floor_albedo, dtype=np.float32)
        * (tint * (0.9 + 0.08 * grain) * np.where(seam, 0.55, 1.0))[:, None]
    )
    albedo[h_floor] = fcol
    bump[h_floor, 0] = np.where(seam, 0.25, 0.03 * grain)
    # Ceiling: plain off-white.
    albedo[h_ceiling] = np.array([0.82, 0.82, 0.8], dtype=np.float32)
    # Furniture: per-object colour, checker upholstery or wood grain.
    if h_box.any():
        bi = box_i[hi_][h_box]
        sb, tb = s_coord[h_box], t_coord[h_box]
        mats = np.array([b.material for b in room.boxes])[bi]
        cols = np.array([b.albedo for b in room.boxes], dtype=np.float32)[bi]
        checker = ((np.floor(sb / 0.12) + np.floor(tb / 0.12)) % 2) * 2 - 1
        wood_grain = np.sin(sb * 40.0 + 4.0 * np.sin(tb * 7.0))
        fac = np.where(
            mats == MAT_CHECKER, 1.0 + 0.18 * checker, np.where(mats == MAT_WOOD, 0.92 + 0.1 * wood_grain, 1.0)
        )
        albedo[h_box] = cols * fac[:, None]
        bump[h_box, 0] = np.where(mats == MAT_WOOD, 0.04 * np.cos(sb * 40.0), 0.0)
        bump[h_box, 1] = np.where(mats == MAT_CHECKER, 0.06 * checker, 0.0)

    # Bump normals: tilt the geometric normal within its tangent plane.
    hb = hn.copy()
    hb[:, 0] += np.where(an == 0, 0.0, bump[:, 0])
    hb[:, 1] += np.where(an == 0, bump[:, 0], np.where(an == 2, bump[:, 1], 0.0))
    hb[:, 2] += np.where(an == 2, 0.0, bump[:, 1])
    hb /= np.sqrt(hb[:, 0] ** 2 + hb[:, 1] ** 2 + hb[:, 2] ** 2)[:, None]

    # Shading: ambient + point lights with inverse-square falloff and box shadows; specular residual.
    illum = np.empty((m, 3), dtype=np.float32)
    illum[:] = np.array([0.12, 0.12, 0.13], dtype=np.float32)
    resid = np.zeros((m, 3), dtype=np.float32)
    view = -d[hi_].astype(np.float32)
    shininess = np.where(h_box, 30.0, np.where(h_floor, 60.0, 8.0)).astype(np.float32)
    k_spec = np.where(h_box, 0.08, np.where(h_floor, 0.12, 0.01)).astype(np.float32)
    hp32 = hp.astype(np.float32)
    for light_index, (lp, li) in enumerate(room.lights):
        to_l = lp.astype(np.float32) - hp32
        dist = np.sqrt(to_l[:, 0] ** 2 + to_l[:, 1] ** 2 + to_l[:, 2] ** 2)
        ldir = to_l / np.maximum(dist, 1e-6)[:, None]
        cos = np.clip(hb[:, 0] * ldir[:, 0] + hb[:, 1] * ldir[:, 1] + hb[:, 2] * ldir[:, 2], 0.0, None)
        lit = hn[:, 0] * ldir[:, 0] + hn[:, 1] * ldir[:, 1] + hn[:, 2] * ldir[:, 2] > 0
        idx = np.flatnonzero(lit)
        if idx.size and light_index == 0:  # only the main light casts shadows (the fill light is soft)
            sp = hp[idx] + hn[idx] * (1e-4 / mpau)
            _, si, _ = _hit_boxes(room, sp, ldir[idx].astype(np.float64), dist[idx])
            lit[idx[si >= 0]] = False
        fall = 1.0 / np.maximum(dist * mpau, 0.3) ** 2
        li32 = li.astype(np.float32)
        illum += np.where(lit, cos * fall, 0.0)[:, None] * li32
        h = ldir + view
        h /= np.maximum(np.sqrt(h[:, 0] ** 2 + h[:, 1] ** 2 + h[:, 2] ** 2), 1e-6)[:, None]
        spec = (
            k_spec
            * np.clip(hb[:, 0] * h[:, 0] + hb[:, 1] * h[:, 1] + hb[:, 2] * h[:, 2], 0.0, None) ** shininess
            * fall
        )
        resid += np.where(lit, spec, 0.0)[:, None] * li32

    def full(h_values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((n,) + h_values.shape[1:], fill, dtype=h_values.dtype)
        out[hi_] = h_values
        return out

    albedo_f = full(albedo, 0.0)
    illum_f = full(illum, 0.0)
    resid_f = full(resid, 0.0)
    # Through the window: a bright sky gradient (upstream counts background light in the residual).
    miss = ~hit
    sky_t = np.clip(dz[miss] * 2.0 + 0.5, 0.0, 1.0)[:, None].astype(np.float32)
    resid_f[miss] = (1.0 - sky_t) * np.array([1.6, 1.5, 1.35], np.float32) + sky_t * np.array(
        [0.8, 1.1, 1.7], np.float32
    )
    color = albedo_f * illum_f + resid_f
    tex = np.zeros((m, 3), dtype=np.float32)
    tex[:, 0] = np.mod(s_coord, 1.0)
    tex[:, 1] = np.mod(t_coord, 1.0)
    nb = full(hb, np.nan)

    Rt = R.T
    obj_of_node = np.array([-1] + [nd.object_id for nd in room.nodes], dtype=np.int64)
    sem_of_obj = np.array([ob.semantic for ob in room.objects] + [-1], dtype=np.int32)
    inst_of_obj = np.array([ob.instance for ob in room.objects] + [-1], dtype=np.int32)
    obj = np.where(node > 0, obj_of_node[np.maximum(node, 0)], -1)
    semantic = sem_of_obj[obj]  # obj -1 indexes the trailing -1
    instance = inst_of_obj[obj]

    def img(a: np.ndarray) -> np.ndarray:
        return a.reshape(height, width, *a.shape[1:])

    return {
        "color": img(color),
        "diffuse_illumination": img(illum_f),
        "diffuse_reflectance": img(albedo_f),
        "residual": img(resid_f),
        "depth_meters": img(t * mpau),
        "position": img(p),
        "normal_cam": img(_mat3(nrm, Rt.T)),
        "normal_world": img(nrm),
        "normal_bump_cam": img(_mat3(nb, Rt.T)),
        "normal_bump_world": img(nb),
        "tex_coord": img(full(tex, 0.0)),
        "render_entity_id": img(node),
        "semantic": img(semantic),
        "semantic_instance": img(instance),
    }
