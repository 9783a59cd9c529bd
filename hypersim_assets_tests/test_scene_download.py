"""Selective, resumable, verified scene fetches over real loopback HTTP (and from
local zips and folders), with the mirror server's faults switched on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from hypersim_assets.common.layout import MemberSelection, member_frame
from hypersim_assets.download.errors import ChecksumMismatch, DiskFull, MemberCorrupt, RangeNotSupported, SceneNotFound
from hypersim_assets.download.file_fetch import fetch_file
from hypersim_assets.download.http_client import RetryConfig
from hypersim_assets.download.manifest import LOCK_NAME, MANIFEST_NAME, verify_scene_members
from hypersim_assets.download.report import FetchProgress
from hypersim_assets.download.scene_fetch import delete_scene_raw, fetch_scene, fetch_scene_members
from hypersim_assets.download.source import HypersimSource, Location
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer
from hypersim_assets_tests.scene_zips import (
    SCENE,
    extract_all,
    part_sizes,
    scene_members,
    with_zip64_end_records,
    write_mirror,
)

FAST = RetryConfig(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, timeout_s=5.0)
CONVERSION = MemberSelection()
ZIP_PATH = f"/scenes/{SCENE}.zip"
# Tests of what one member's own requests look like turn coalescing off (test_coalescing.py covers it).
ONE_PER_MEMBER = -1


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    return write_mirror(root, {SCENE: scene_members(frames=2, frame_bytes=40_000)})


@pytest.fixture()
def server(mirror: Path):
    with MirrorServer(mirror) as srv:
        yield srv


def zip_url(server: MirrorServer, scene: str = SCENE) -> Location:
    return Location(url=f"{server.url}/scenes/{scene}.zip")


def raw_files(raw_root: Path) -> dict[str, bytes]:
    """Every file below ``raw_root`` except our bookkeeping (manifest, lock)."""
    return {
        p.relative_to(raw_root).as_posix(): p.read_bytes()
        for p in raw_root.rglob("*")
        if p.is_file() and p.name not in (MANIFEST_NAME, LOCK_NAME)
    }


def expected(zip_path: Path, selection: MemberSelection = CONVERSION) -> dict[str, bytes]:
    everything = extract_all(zip_path)
    return {name: data for name, data in everything.items() if selection.matches(SCENE, name)}


def data_offsets(zip_path: Path) -> dict[str, tuple[int, int, int]]:
    """Member -> (local header offset, data offset, data end), as zipfile sees it."""
    out = {}
    raw = zip_path.read_bytes()
    with zipfile.ZipFile(zip_path) as zf:
        for i in zf.infolist():
            h = i.header_offset
            n, e = int.from_bytes(raw[h + 26 : h + 28], "little"), int.from_bytes(raw[h + 28 : h + 30], "little")
            out[i.filename] = (h, h + 30 + n + e, h + 30 + n + e + i.compress_size)
    return out


def range_start(header: str | None) -> int | None:
    """First byte a ``bytes=a-b`` request asked for (None for no Range or a suffix range)."""
    if header is None or header.startswith("bytes=-"):
        return None
    return int(header.split("=")[1].split("-")[0])


def data_gets(server: MirrorServer, offsets: dict[str, tuple[int, int, int]], name: str) -> list[int]:
    """Start offsets of GETs that asked for bytes of ``name`` (its local header or data)."""
    header, _, end = offsets[name]
    return [
        s
        for r in server.requests
        if r.method == "GET" and (s := range_start(r.range_header)) is not None and header <= s < end
    ]


def tail_reads(server: MirrorServer) -> int:
    """Suffix-range GETs: one per central directory read."""
    return sum(1 for r in server.requests if (r.range_header or "").startswith("bytes=-"))


def test_selective_fetch_is_exact_and_cheap(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    zip_path = mirror / "scenes" / f"{SCENE}.zip"
    seen: list[FetchProgress] = []
    report = fetch_scene_members(
        zip_url(server),
        SCENE,
        tmp_path,
        CONVERSION,
        workers=3,
        retry=FAST,
        progress=seen.append,
        coalesce_gap_bytes=ONE_PER_MEMBER,
    )
    want = expected(zip_path)
    assert raw_files(tmp_path) == want  # exactly the selection, byte-identical to zipfile's extraction
    assert not (
        tmp_path / SCENE / "images" / "scene_cam_00_final_hdf5" / "frame.0000.diffuse_illumination.hdf5"
    ).exists()
    assert report.members_selected == report.members_fetched == len(want) and report.members_skipped == 0
    assert report.zip_bytes == zip_path.stat().st_size
    with zipfile.ZipFile(zip_path) as zf:
        assert report.bytes_selected == sum(zf.getinfo(n).compress_size for n in want)
    assert report.bytes_fetched < 0.6 * report.zip_bytes
    # What went over the wire: the members' data, their local headers (plus slack) and the tail with the central directory.
    assert report.bytes_fetched <= report.bytes_selected + 64 * 1024 + 42 + (30 + 200) * len(want)
    # One request per member (local header and data together), plus the tail.
    assert len(server.requests) == len(want) + 1
    assert report.bytes_fetched == sum(r.body_bytes for r in server.requests)
    assert report.retries == report.restarts == report.resumed_members == 0
    assert sorted(p.member for p in seen) == sorted(want) and max(p.members_done for p in seen) == len(want)
    manifest = json.loads((tmp_path / SCENE / MANIFEST_NAME).read_text())
    assert set(manifest["members"]) == set(want)
    assert all(e["crc32"] == zlib.crc32(want[n]) and e["size"] == len(want[n]) for n, e in manifest["members"].items())

    # A re-run reads the central directory and nothing else.
    server.reset_log()
    again = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=FAST)
    assert (again.members_skipped, again.members_fetched) == (len(want), 0)
    assert [r.range_header for r in server.requests] == [f"bytes=-{64 * 1024 + 42}"]

    # verify=True re-reads CRCs and refetches a member whose bytes went bad (same size).
    victim = next(iter(want))
    path = tmp_path / victim
    path.write_bytes(bytes([path.read_bytes()[0] ^ 0xFF]) + path.read_bytes()[1:])
    checked = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=FAST, verify=True)
    assert checked.members_fetched == 1 and raw_files(tmp_path) == want


def test_local_zip_and_unpacked_folder(mirror: Path, tmp_path: Path) -> None:
    zip_path = mirror / "scenes" / f"{SCENE}.zip"
    report = fetch_scene_members(Location(path=zip_path), SCENE, tmp_path / "a", CONVERSION)
    assert raw_files(tmp_path / "a") == expected(zip_path)
    assert report.verified == "crc32" and 0 < report.bytes_fetched < report.zip_bytes

    unpacked_source = tmp_path / "src"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(unpacked_source)
    copied = fetch_scene(HypersimSource.parse(str(unpacked_source)), SCENE, tmp_path / "b", CONVERSION)
    assert raw_files(tmp_path / "b") == expected(zip_path)
    assert copied.verified == "size" and copied.members_fetched == len(expected(zip_path))
    again = fetch_scene(HypersimSource.parse(str(unpacked_source)), SCENE, tmp_path / "b", CONVERSION)
    assert again.members_skipped == copied.members_fetched and again.members_fetched == 0


def test_dropped_connection_resumes_from_partial_offset(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    zip_path = mirror / "scenes" / f"{SCENE}.zip"
    offsets = data_offsets(zip_path)
    armed: list[str] = []

    def arm_after_first(p: FetchProgress) -> None:  # once the central directory is read and a member is in
        if not armed:
            armed.append(p.member)
            server.faults = Faults(drop_after_bytes=10_000, drop_times=1)

    report = fetch_scene_members(
        zip_url(server),
        SCENE,
        tmp_path,
        CONVERSION,
        workers=1,
        retry=FAST,
        progress=arm_after_first,
        coalesce_gap_bytes=ONE_PER_MEMBER,
    )
    assert raw_files(tmp_path) == expected(zip_path)
    assert report.retries == 1
    dropped = next(r for r in server.requests if r.body_bytes == 10_000 and r.method == "GET")
    first = range_start(dropped.range_header)
    name = next(n for n, (header, _, _) in offsets.items() if header == first)
    assert data_gets(server, offsets, name) == [first, first + 10_000]  # continued, not restarted from the header


def test_server_errors_are_retried(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    server.faults = Faults(fail_status=503, fail_times=3)
    report = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=FAST)
    assert raw_files(tmp_path) == expected(mirror / "scenes" / f"{SCENE}.zip")
    assert report.retries == 3
    assert [r.status for r in server.requests[:4]] == [503, 503, 503, 206]


def test_server_ignoring_range(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    server.faults = Faults(ignore_range=True)
    zip_size = (mirror / "scenes" / f"{SCENE}.zip").stat().st_size
    # Within the fallback limit: slow but correct (each request streams from byte 0).
    report = fetch_scene_members(zip_url(server), SCENE, tmp_path / "ok", CONVERSION, workers=2, retry=FAST)
    assert raw_files(tmp_path / "ok") == expected(mirror / "scenes" / f"{SCENE}.zip")
    assert report.bytes_fetched > report.bytes_selected
    # Beyond it: a clear refusal naming the URL.
    small = RetryConfig(max_attempts=2, base_delay_s=0.0, ignore_range_fallback_limit=zip_size // 4)
    with pytest.raises(RangeNotSupported, match=rf"{ZIP_PATH} ignored a Range request"):
        fetch_scene_members(zip_url(server), SCENE, tmp_path / "no", CONVERSION, retry=small)


def test_etag_change_mid_scene_restarts(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    server.faults = Faults(etag_change_after=8)
    report = fetch_scene_members(
        zip_url(server), SCENE, tmp_path, CONVERSION, workers=2, retry=FAST, coalesce_gap_bytes=ONE_PER_MEMBER
    )
    assert raw_files(tmp_path) == expected(mirror / "scenes" / f"{SCENE}.zip")
    assert report.restarts == 1
    assert report.members_fetched == report.members_selected
    assert tail_reads(server) == 2  # the central directory was read afresh
    assert not list(tmp_path.rglob("*.part*"))


def test_unknown_scene_names_scene_and_url(server: MirrorServer, tmp_path: Path) -> None:
    with pytest.raises(SceneNotFound, match=rf"ai_999_999: nothing at {server.url}/scenes/ai_999_999.zip"):
        fetch_scene_members(zip_url(server, "ai_999_999"), "ai_999_999", tmp_path, CONVERSION, retry=FAST)
    with pytest.raises(SceneNotFound, match=r"ai_999_999: nothing at .*ai_999_999.zip"):
        fetch_scene_members(Location(path=tmp_path / "ai_999_999.zip"), "ai_999_999", tmp_path, CONVERSION)


def test_crc_mismatch_fetched_twice_then_fails(mirror: Path, tmp_path: Path) -> None:
    zip_path = mirror / "scenes" / f"{SCENE}.zip"
    bad_root = tmp_path / "bad"
    (bad_root / "scenes").mkdir(parents=True)
    bad_zip = bad_root / "scenes" / f"{SCENE}.zip"
    offsets = data_offsets(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        victim = next(
            i.filename
            for i in zf.infolist()
            if i.compress_type == zipfile.ZIP_STORED
            and i.compress_size > 1000
            and CONVERSION.matches(SCENE, i.filename)
        )
    data = bytearray(zip_path.read_bytes())
    data[offsets[victim][1] + 100] ^= 0x01  # the central directory keeps the old CRC
    bad_zip.write_bytes(bytes(data))
    with MirrorServer(bad_root) as server:
        with pytest.raises(MemberCorrupt, match=rf"{SCENE}: member {victim} .* twice: CRC-32"):
            fetch_scene_members(
                zip_url(server),
                SCENE,
                tmp_path / "raw",
                CONVERSION,
                workers=1,
                retry=FAST,
                coalesce_gap_bytes=ONE_PER_MEMBER,
            )
        assert data_gets(server, offsets, victim) == [offsets[victim][0]] * 2  # from its local header, twice
    assert not (tmp_path / "raw" / victim).exists()
    assert not list((tmp_path / "raw").rglob("*.part*"))
    manifest = json.loads((tmp_path / "raw" / SCENE / MANIFEST_NAME).read_text())
    assert victim not in manifest["members"]


def test_full_disk_is_reported_and_nothing_unverified_counts(
    server: MirrorServer, mirror: Path, tmp_path: Path
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(DiskFull, match=r"disk full while writing .*\.(part|inflating): \d+ bytes free") as err:
            fetch_scene_members(zip_url(server), SCENE, small, CONVERSION, workers=1, retry=FAST)
        assert err.value.free_bytes >= 0
        assert not list(small.rglob("*.part")) and not list(small.rglob("*.inflating"))
        manifest = json.loads((small / SCENE / MANIFEST_NAME).read_text())
        want = expected(mirror / "scenes" / f"{SCENE}.zip")
        for name, entry in manifest["members"].items():  # only verified, complete members are recorded
            assert (small / name).read_bytes() == want[name] and entry["crc32"] == zlib.crc32(want[name])
        assert len(manifest["members"]) < len(want)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_file_size_limit_is_reported_like_a_full_disk(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    """Without root (no tmpfs), RLIMIT_FSIZE makes writes past a size fail with EFBIG in a child process."""
    code = (
        "import resource, signal, sys; from pathlib import Path\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
        "from hypersim_assets.download.errors import DiskFull\n"
        "from hypersim_assets.download.scene_fetch import fetch_scene_members\n"
        "from hypersim_assets.common.layout import MemberSelection\n"
        "from hypersim_assets.download.source import Location\n"
        "try:\n"
        f"    fetch_scene_members(Location(url={zip_url(server).url!r}), {SCENE!r}, Path({str(tmp_path)!r}), MemberSelection(), workers=1)\n"
        "except DiskFull as exc:\n"
        "    print('DISKFULL', exc.path, exc.free_bytes); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("DISKFULL ") and ".part" in proc.stdout
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.inflating"))
    want = expected(mirror / "scenes" / f"{SCENE}.zip")
    manifest = json.loads((tmp_path / SCENE / MANIFEST_NAME).read_text())
    assert 0 < len(manifest["members"]) < len(want)  # the small members made it, verified; the big one did not
    for name in manifest["members"]:
        assert (tmp_path / name).read_bytes() == want[name]


def test_slow_server_times_out_and_retries(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    server.faults = Faults(delay_s=1.0)
    healed: list[str] = []

    def heal(url: str, error: BaseException, index: int) -> None:
        healed.append(type(error).__name__)
        server.faults = Faults()

    cfg = RetryConfig(max_attempts=3, base_delay_s=0.0, timeout_s=0.3)
    report = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=cfg, on_retry=heal)
    assert raw_files(tmp_path) == expected(mirror / "scenes" / f"{SCENE}.zip")
    assert healed == ["ReadTimeoutError"] and report.retries == 1


def test_two_concurrent_fetches_of_one_scene(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    server.faults = Faults(delay_s=0.01)
    reports = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, workers=2, retry=FAST))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    want = expected(mirror / "scenes" / f"{SCENE}.zip")
    assert raw_files(tmp_path) == want
    # The lock serialised them: one fetched everything, the other found it done.
    assert sorted((r.members_fetched, r.members_skipped) for r in reports) == [(0, len(want)), (len(want), 0)]


def test_resume_after_kill(tmp_path: Path) -> None:
    mirror = write_mirror(tmp_path / "mirror", {SCENE: scene_members(frames=1, frame_bytes=400_000, seed=7)})
    zip_path = mirror / "scenes" / f"{SCENE}.zip"
    offsets = data_offsets(zip_path)
    raw_root = tmp_path / "raw"
    with MirrorServer(mirror, faults=Faults(delay_s=0.03)) as server:
        code = (
            "import sys; from pathlib import Path\n"
            "from hypersim_assets.download.scene_fetch import fetch_scene_members\n"
            "from hypersim_assets.common.layout import MemberSelection\n"
            "from hypersim_assets.download.source import Location\n"
            f"fetch_scene_members(Location(url={zip_url(server).url!r}), {SCENE!r}, Path({str(raw_root)!r}), MemberSelection(), workers=1)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 60
        parts: dict[Path, int] = {}
        done_before: set[str] = set()
        try:
            while time.monotonic() < deadline:
                time.sleep(0.02)
                done_before = {n for n in offsets if CONVERSION.matches(SCENE, n) and (raw_root / n).is_file()}
                parts = part_sizes(raw_root)
                if done_before and any(size > 70_000 for size in parts.values()):
                    break
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(10)
        parts = part_sizes(raw_root)  # after the kill nothing renames them any more
        assert parts and done_before, "the download finished or stalled before it could be interrupted"
        (part,) = parts
        done_before = {n for n in offsets if CONVERSION.matches(SCENE, n) and (raw_root / n).is_file()}
        have = part.stat().st_size
        interrupted = part.relative_to(raw_root).as_posix().removesuffix(".part")
        server.faults = Faults()
        server.reset_log()
        report = fetch_scene_members(zip_url(server), SCENE, raw_root, CONVERSION, retry=FAST)
        for name in done_before:
            assert data_gets(server, offsets, name) == [], f"{name} was fetched again"
        assert data_gets(server, offsets, interrupted)[0] == offsets[interrupted][1] + have
        assert report.resumed_members == 1 and report.resumed_bytes == have
        assert report.members_skipped == len(done_before)
    assert raw_files(raw_root) == expected(zip_path)


def test_fetch_file_checks_sha256(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    import hashlib

    name = "metadata_camera_parameters.csv"
    content = (mirror / name).read_bytes()
    good = hashlib.sha256(content).hexdigest()
    url = Location(url=f"{server.url}/{name}")
    assert fetch_file(url, tmp_path / name, good) == len(content)
    assert (tmp_path / name).read_bytes() == content
    bad = "0" * 64
    with pytest.raises(ChecksumMismatch, match=rf"{name} from .*: sha256 {good}, expected {bad}"):
        fetch_file(url, tmp_path / "x" / name, bad)
    assert list((tmp_path / "x").iterdir()) == []  # no temp file, nothing at dest
    assert fetch_file(Location(path=mirror / name), tmp_path / "local.csv", good) == len(content)
    with pytest.raises(ChecksumMismatch):
        fetch_file(Location(path=mirror / name), tmp_path / "y" / name, bad)
    assert not (tmp_path / "y" / name).exists()


def test_delete_scene_raw(mirror: Path, tmp_path: Path) -> None:
    fetch_scene_members(Location(path=mirror / "scenes" / f"{SCENE}.zip"), SCENE, tmp_path, CONVERSION)
    size = sum(p.stat().st_size for p in (tmp_path / SCENE).rglob("*") if p.is_file())
    assert delete_scene_raw(tmp_path, SCENE) == size
    assert list(tmp_path.iterdir()) == []
    assert delete_scene_raw(tmp_path, SCENE) == 0
    with pytest.raises(ValueError, match="ai_NNN_NNN"):
        delete_scene_raw(tmp_path, "../etc")


def test_zip64_archive_and_long_local_extra_fields(tmp_path: Path) -> None:
    members = scene_members(frames=1, frame_bytes=5000, seed=3)
    root = tmp_path / "mirror"
    zip_path = root / "scenes" / f"{SCENE}.zip"
    zip_path.parent.mkdir(parents=True)
    with zipfile.ZipFile(zip_path, "w") as zf:
        for i, (name, data) in enumerate(members.items()):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED
            info.extra = (
                (0xCAFE).to_bytes(2, "little") + (300).to_bytes(2, "little") + bytes(300)
            )  # longer than we guess
            with zf.open(info, "w", force_zip64=True) as w:
                w.write(data)
    with_zip64_end_records(zip_path)
    offsets = data_offsets(zip_path)
    with MirrorServer(root) as server:
        report = fetch_scene_members(
            zip_url(server), SCENE, tmp_path / "raw", CONVERSION, retry=FAST, coalesce_gap_bytes=ONE_PER_MEMBER
        )
        want = expected(zip_path)
        assert raw_files(tmp_path / "raw") == want
        name = next(iter(want))
        header, data_start, _ = offsets[name]
        # The first request stopped short of the data's end; the second continued right where it stopped.
        (first, second) = data_gets(server, offsets, name)
        assert first == header and second >= data_start
    assert report.members_fetched == len(want)
    # Coalesced, the same archive: every member in one request, the last one's data tail in another.
    with MirrorServer(root) as server:
        coalesced = fetch_scene_members(
            zip_url(server), SCENE, tmp_path / "runs", CONVERSION, retry=FAST, coalesce_gap_bytes=1024
        )
        assert raw_files(tmp_path / "runs") == want and coalesced.members_fetched == len(want)
        assert len(server.requests) < len(want)


def test_rerun_reverifies_crc_and_refetches_a_zeroed_member(server: MirrorServer, mirror: Path, tmp_path: Path) -> None:
    zip_path = mirror / "scenes" / f"{SCENE}.zip"
    offsets = data_offsets(zip_path)
    first = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=FAST)
    want = expected(zip_path)
    assert verify_scene_members(tmp_path, SCENE, "crc") == []
    victim = max(want, key=lambda n: len(want[n]))
    path = tmp_path / victim
    with open(path, "r+b") as f:  # 4 KiB zeroed in the middle; the size stays the same
        f.seek(len(want[victim]) // 2)
        f.write(bytes(4096))
    assert path.stat().st_size == len(want[victim])
    assert verify_scene_members(tmp_path, SCENE, "size") == []  # what a size-only check would miss
    (problem,) = verify_scene_members(tmp_path, SCENE, "crc")
    assert problem.startswith(f"{victim}: CRC-32 ") and "manifest says" in problem
    # verify="size" trusts the manifest and leaves the damage in place.
    server.reset_log()
    lax = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=FAST, verify="size")
    assert lax.members_fetched == 0 and path.read_bytes() != want[victim]
    # The default (crc) notices, fetches that one member again and verifies it.
    server.reset_log()
    again = fetch_scene_members(zip_url(server), SCENE, tmp_path, CONVERSION, retry=FAST)
    assert again.members_fetched == 1 and again.members_skipped == first.members_fetched - 1
    assert data_gets(server, offsets, victim) == [offsets[victim][0]]
    assert raw_files(tmp_path) == want
    assert verify_scene_members(tmp_path, SCENE, "crc") == []
    (tmp_path / victim).unlink()
    assert verify_scene_members(tmp_path, SCENE, "size") == [f"{victim}: missing (FileNotFoundError)"]


def test_members_are_reported_ready_scene_wide_first_then_frame_by_frame(tmp_path: Path) -> None:
    members = scene_members(frames=4, cameras=2)

    def worst_first(name: str) -> tuple[int, int]:
        frame = member_frame(SCENE, name)
        return (1, 0) if frame is None else (0, -frame[1])

    # The archive holds the last frame first and the _detail files last: archive order would make
    # every frame wait for the whole download.
    mirror = write_mirror(
        tmp_path / "mirror", {SCENE: dict(sorted(members.items(), key=lambda kv: worst_first(kv[0])))}
    )
    selected = sorted(CONVERSION.select(SCENE, members))
    ready: list[str] = []
    with MirrorServer(mirror) as srv:
        # One connection, so requests (and reports) follow the fetch order exactly.
        fetch_scene_members(zip_url(srv), SCENE, tmp_path / "raw", CONVERSION, workers=1, on_member_ready=ready.append)
        assert sorted(ready) == selected  # each selected member once
        frames = [member_frame(SCENE, m) for m in ready]
        first = next(i for i, f in enumerate(frames) if f is not None)
        assert all(f is None for f in frames[:first]) and None not in frames[first:]
        ids = [f[1] for f in frames[first:]]  # type: ignore[index]
        assert ids == sorted(ids)

        # A re-run finds every member verified on disk and reports each, in this thread, before any request.
        again: list[tuple[str, str]] = []
        fetch_scene_members(
            zip_url(srv),
            SCENE,
            tmp_path / "raw",
            CONVERSION,
            on_member_ready=lambda m: again.append((m, threading.current_thread().name)),
        )
    assert sorted(m for m, _ in again) == selected
    assert {t for _, t in again} == {threading.current_thread().name}
