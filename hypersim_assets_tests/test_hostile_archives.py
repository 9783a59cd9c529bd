"""Hostile archives, built here byte by byte: a zip bomb that lies about its size, member
names that escape the scene folder, symlink entries, a name listed twice, and scene names
with non-ASCII digits. Each is refused with a clear error and nothing written outside
(or, for names, anywhere below) the scene folder."""

from __future__ import annotations

import json
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from hypersim_assets.common.errors import is_permanent
from hypersim_assets.common.layout import SCENE_NAME_RE, MemberSelection
from hypersim_assets.download.errors import InvalidSceneName, MemberInflatesPastSize, UnsafeMember
from hypersim_assets.download.http_client import RetryConfig
from hypersim_assets.download.scene_fetch import delete_scene_raw, fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.scene_zips import SCENE, scene_members

FAST = RetryConfig(max_attempts=2, base_delay_s=0.0, timeout_s=10.0)
ALL = MemberSelection(mode="all")
BOMB = f"{SCENE}/images/scene_cam_00_final_hdf5/frame.0000.color.hdf5"
DECLARED = 10  # bytes the bomb claims to inflate to
BOMB_MIB = 200  # what it really inflates to


def write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def write_bomb(path: Path) -> Path:
    """A scene zip whose member ``BOMB`` inflates to 200 MiB but declares ``DECLARED`` bytes (central
    directory and local header both lie; the CRC is that of the declared prefix, so only the size gives it away)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    stream = b"".join(comp.compress(block) for _ in range(BOMB_MIB)) + comp.flush()
    name = BOMB.encode()
    crc = zlib.crc32(bytes(DECLARED))
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream), DECLARED, len(name), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(stream), DECLARED, len(name), 0, 0, 0, 0, 0, 0
    )
    body = local + name + stream
    cd = central + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), len(body), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body + cd + end)
    return path


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


def test_zip_bomb_stops_at_declared_size_without_a_second_fetch(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    zip_path = write_bomb(mirror / "scenes" / f"{SCENE}.zip")
    raw_root = tmp_path / "raw"
    with MirrorServer(mirror) as server:
        url = f"{server.url}/scenes/{SCENE}.zip"
        # In a child with a 1 MiB file size limit: writing past the declared size would fail with
        # EFBIG (DiskFull) instead of the corrupt-member error; its peak memory is reported too.
        code = (
            "import resource, signal, sys; from pathlib import Path\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))\n"
            "from hypersim_assets.common.layout import MemberSelection\n"
            "from hypersim_assets.download.errors import MemberInflatesPastSize\n"
            "from hypersim_assets.download.http_client import RetryConfig\n"
            "from hypersim_assets.download.scene_fetch import fetch_scene_members\n"
            "from hypersim_assets.download.source import Location\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n"
            f"    fetch_scene_members(Location(url={url!r}), {SCENE!r}, Path({str(raw_root)!r}),"
            " MemberSelection(mode='all'), retry=RetryConfig(max_attempts=2))\n"
            "except MemberInflatesPastSize as exc:\n"
            "    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "    print(f'GREW_KIB {grew}'); print(exc); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        grew_kib = int(proc.stdout.split()[1])
        assert grew_kib < 64 * 1024, f"peak memory grew by {grew_kib} KiB inflating a {BOMB_MIB} MiB bomb"
        assert f"member {BOMB}" in proc.stdout and f"past its declared size of {DECLARED} bytes" in proc.stdout
        member_gets = [r for r in server.requests if r.range_header and not r.range_header.startswith("bytes=-")]
        assert len(member_gets) == 1  # not fetched a second time
    assert files_under(raw_root) == [f"{SCENE}/.hypersim-download.lock", f"{SCENE}/.hypersim-manifest.json"]
    assert json.loads((raw_root / SCENE / ".hypersim-manifest.json").read_text())["members"] == {}
    # In process too: the error is permanent and names the scene and member.
    with pytest.raises(MemberInflatesPastSize, match=rf"scene {SCENE}: member {BOMB} .* not fetched again") as err:
        fetch_scene_members(Location(path=zip_path), SCENE, tmp_path / "raw2", ALL)
    assert is_permanent(err.value)
    assert not (tmp_path / "raw2" / BOMB).exists() and not list((tmp_path / "raw2").rglob("*.inflating"))


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


HOSTILE = {
    "dotdot": (f"{SCENE}/images/../../../escaped.txt", "'..' segment"),
    "absolute": ("/tmp/escaped.txt", "absolute path"),
    "backslash": (f"{SCENE}\\..\\..\\escaped.txt", "backslash"),
    "drive": ("C:/escaped.txt", "drive letter"),
    "drive_relative": ("c:escaped.txt", "drive letter"),
    "symlink": (f"{SCENE}/_detail/passwd_link", "symlink entry"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_unsafe_member_names_are_refused_before_anything_is_written(kind: str, tmp_path: Path) -> None:
    name, why = HOSTILE[kind]
    good = list(scene_members(frames=1, frame_bytes=2000).items())
    entry = symlink_entry(name) if kind == "symlink" else name
    hostile = (entry, b"/etc/passwd" if kind == "symlink" else b"pwned")
    zip_path = write_zip(tmp_path / "mirror" / "scenes" / f"{SCENE}.zip", [*good[:3], hostile, *good[3:]])
    raw_root = tmp_path / "work" / "raw"
    with MirrorServer(tmp_path / "mirror") as server:
        with pytest.raises(UnsafeMember, match=rf"scene {SCENE}: .*refusing member .*\({why}") as err:
            fetch_scene_members(Location(url=f"{server.url}/scenes/{SCENE}.zip"), SCENE, raw_root, ALL, retry=FAST)
        assert is_permanent(err.value)
        assert all(r.range_header and r.range_header.startswith("bytes=-") for r in server.requests)  # tail only
    with pytest.raises(UnsafeMember):
        fetch_scene_members(Location(path=zip_path), SCENE, raw_root, ALL)
    # Nothing below the work folder but the scene's lock: no member, no escaped file.
    assert files_under(tmp_path / "work") == [f"raw/{SCENE}/.hypersim-download.lock"]
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/escaped.txt").exists()


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    good = list(scene_members(frames=1, frame_bytes=2000).items())
    name, data = good[5]
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(tmp_path / "mirror" / "scenes" / f"{SCENE}.zip", [*good, (name, data + b"other version")])
    with MirrorServer(tmp_path / "mirror") as server:
        with pytest.raises(UnsafeMember, match=rf"refusing member '{name}' \(listed twice in the central directory\)"):
            fetch_scene_members(Location(url=f"{server.url}/scenes/{SCENE}.zip"), SCENE, tmp_path / "raw", ALL)
    assert files_under(tmp_path / "raw") == [f"{SCENE}/.hypersim-download.lock"]


@pytest.mark.parametrize("scene", ["ai_١٢٣_٠٠١", "ai_001_00١", "ai_001_001\n", "ai_1_1", "../ai_001_001"])
def test_scene_names_take_ascii_digits_only(scene: str, tmp_path: Path) -> None:
    assert SCENE_NAME_RE.match(scene) is None or scene.endswith("\n")
    with pytest.raises(InvalidSceneName, match="ASCII digits") as err:
        fetch_scene_members(Location(path=tmp_path / "x.zip"), scene, tmp_path / "raw", ALL)
    assert is_permanent(err.value)
    with pytest.raises(InvalidSceneName):
        delete_scene_raw(tmp_path / "raw", scene)
    assert not (tmp_path / "raw").exists()


def test_error_table_says_what_the_classes_do() -> None:
    """The table in download/errors.py's docstring and the classes' bases agree, row by row."""
    import re

    from hypersim_assets.common.errors import PermanentError, TransientError
    from hypersim_assets.download import errors

    rows = re.findall(r"^(\w+)\s+(permanent|transient)\s", errors.__doc__ or "", re.MULTILINE)
    assert len(rows) >= 15
    for name, kind in rows:
        cls = getattr(errors, name)
        assert issubclass(cls, PermanentError if kind == "permanent" else TransientError), name
        assert not issubclass(cls, TransientError if kind == "permanent" else PermanentError), name
