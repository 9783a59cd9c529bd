"""A procedural furnished room in Hypersim's conventions: walls, floor, ceiling, window,
furniture boxes, lights, the mesh objects and render nodes that label them, and their
per-instance bounding boxes. Pure numpy; the ray caster that renders it is ``render``.

Conventions follow the upstream data: world ("asset") coordinates with +z up, lengths in
asset units (``meters = asset_units * meters_per_asset_unit``); a camera orientation maps
camera to world, its columns are the camera axes (x right, y up, z pointing away from where
the camera looks).
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
