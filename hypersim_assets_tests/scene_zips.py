"""Test helper: small scene zips in the upstream Hypersim layout, written with
Python's own ``zipfile`` (stored and deflated members, optional forced ZIP64),
and a mirror folder (``<root>/scenes/<scene>.zip``) to serve them from."""

from __future__ import annotations

import random
import struct
import zipfile
from pathlib import Path

from hypersim_assets.common import layout

SCENE = "ai_001_001"


def _payload(rng: random.Random, size: int, compressible: bool) -> bytes:
    if not compressible:
        return rng.randbytes(size)
    # Repeated random words: deflate shrinks it, but not to nothing.
    words = [rng.randbytes(rng.randint(3, 12)) for _ in range(64)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


def scene_members(
    scene: str = SCENE, frames: int = 2, cameras: int = 1, frame_bytes: int = 6000, seed: int = 1
) -> dict[str, bytes]:
    """Member name -> content for a small scene with every upstream per-frame kind, previews and ``_detail`` files."""
    rng = random.Random(seed)
    members: dict[str, bytes] = {}
    members[layout.scene_metadata_member(scene)] = b"parameter_name,parameter_value\nmeters_per_asset_unit,0.0254\n"
    members[f"{scene}/_detail/metadata_cameras.csv"] = b"camera_name\n" + b"".join(
        f"cam_{c:02d}\n".encode() for c in range(cameras)
    )
    members[f"{scene}/_detail/metadata_nodes.csv"] = _payload(rng, 3000, True)
    for kind in layout.BOUNDING_BOX_KINDS:
        members[layout.bounding_box_member(scene, kind)] = _payload(rng, 900, False)
    members[f"{scene}/_detail/mesh/mesh_objects_si.hdf5"] = _payload(rng, 4000, False)
    for c in range(cameras):
        cam = f"cam_{c:02d}"
        for what in ("positions", "orientations", "frame_indices", "look_at_positions"):
            members[layout.camera_keyframe_member(scene, cam, what)] = _payload(rng, 700, False)
        members[f"{scene}/_detail/{cam}/metadata_camera.csv"] = b"frame_index\n0\n1\n"
        for f in range(frames):
            for kind in layout.FINAL_KINDS:
                members[layout.frame_member(scene, cam, f, "final", kind)] = _payload(rng, frame_bytes, kind != "color")
            for kind in layout.GEOMETRY_KINDS:
                members[layout.frame_member(scene, cam, f, "geometry", kind)] = _payload(
                    rng, frame_bytes, kind in ("semantic", "position")
                )
            members[f"{scene}/images/scene_{cam}_final_preview/frame.{f:04d}.color.jpg"] = _payload(
                rng, frame_bytes // 2, False
            )
            members[f"{scene}/images/scene_{cam}_geometry_preview/frame.{f:04d}.depth_meters.png"] = _payload(
                rng, frame_bytes // 2, False
            )
    return members


def write_zip(path: Path, members: dict[str, bytes], force_zip64: bool = False, deflate_every: int = 2) -> Path:
    """Write ``members`` to ``path``: every ``deflate_every``-th member deflated, the rest stored; directories too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dirs = sorted({n.rsplit("/", 1)[0] + "/" for n in members})
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for i, (name, data) in enumerate(members.items()):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if i % deflate_every == 0 else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=force_zip64) as w:
                w.write(data)
    return path


def with_zip64_end_records(path: Path) -> Path:
    """Rewrite ``path``'s end so it carries a ZIP64 EOCD record and locator, the plain EOCD holding 0xFFFF.. markers.

    Same members and central directory; what a >65535-entry or >4 GiB archive ends with.
    """
    data = path.read_bytes()
    eocd_at = data.rfind(b"PK\x05\x06")
    sig, disk, cd_disk, here, total, cd_size, cd_offset, comment_len = struct.unpack_from("<4s4H2LH", data, eocd_at)
    record_at = eocd_at
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, here, total, cd_size, cd_offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, record_at, 1)
    eocd = struct.pack("<4s4H2LH", sig, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, comment_len)
    path.write_bytes(data[:eocd_at] + record + locator + eocd + data[eocd_at + 22 :])
    return path


def write_mirror(root: Path, scene_zips: dict[str, dict[str, bytes]], **zip_kwargs: object) -> Path:
    """A source folder: ``root/scenes/<scene>.zip`` for each scene, plus the three metadata CSVs."""
    for scene, members in scene_zips.items():
        write_zip(root / "scenes" / f"{scene}.zip", members, **zip_kwargs)  # type: ignore[arg-type]
    for name in layout.METADATA_FILES:
        (root / name).write_text(f"scene_name\n{','.join(scene_zips)}\n")
    return root


def extract_all(path: Path) -> dict[str, bytes]:
    """Every file member's bytes as Python's zipfile extracts them."""
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def part_sizes(root: Path) -> dict[Path, int]:
    """Size in bytes of every non-empty ``*.part`` file under ``root`` at one moment.

    A fetch running in another thread or process renames a part into place at any
    time: a part that vanishes between the listing and its ``stat`` is skipped."""
    sizes: dict[Path, int] = {}
    for path in root.rglob("*.part"):
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        if size > 0:
            sizes[path] = size
    return sizes
