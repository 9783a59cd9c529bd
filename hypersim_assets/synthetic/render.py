"""A ray caster that renders a ``room.Room`` the way Hypersim renders its scenes: the
per-pixel geometry and shading images of one camera pose. Pure numpy: no files.

Conventions follow the upstream data:
- a pixel's ray in camera space is ``M_cam_from_uv @ [u, v, 1]`` with ``u, v`` the
  pixel centre in [-1, 1], ``v`` up (row 0 is the top row);
- ``depth_meters`` is the Euclidean distance from the camera centre to the hit point
  in metres; ``normal_*_cam = orientation.T @ normal_*_world`` (as upstream, even when
  the stored orientation is not a proper rotation);
- no geometry: ``render_entity_id``/``semantic``/``semantic_instance`` -1 and
  ``depth``/``position``/normals NaN.
"""

from __future__ import annotations

import numpy as np

from hypersim_assets.synthetic.room import MAT_CHECKER, MAT_WOOD, Room


def camera_rays(M_cam_from_uv: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unnormalised camera-space rays (H, W, 3) through pixel centres: ``M_cam_from_uv @ [u, v, 1]``, v up."""
    u = np.linspace(-1.0 + 1.0 / width, 1.0 - 1.0 / width, width)
    v = np.linspace(1.0 - 1.0 / height, -1.0 + 1.0 / height, height)
    uu, vv = np.meshgrid(u, v)
    uv1 = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
    return _mat3(uv1, np.asarray(M_cam_from_uv, dtype=np.float64).T)


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
