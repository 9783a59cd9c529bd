"""Coalesced member fetches (several members per ranged request) over real loopback HTTP: the
same bytes and manifest as one request per member, fewer requests, resumption after a dropped
response, and a corrupt member inside a run named."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.coalesce import plan_runs
from hypersim_assets.download.errors import MemberCorrupt, MemberInflatesPastSize, TransferFailed
from hypersim_assets.download.http_client import RetryConfig
from hypersim_assets.download.manifest import LOCK_NAME, MANIFEST_NAME
from hypersim_assets.download.remote_zip import FileRangeReader, ZipMember, read_central_directory
from hypersim_assets.download.scene_fetch import fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic.mirror_server import Faults, MirrorServer
from hypersim_assets_tests.scene_zips import SCENE, extract_all, scene_members, write_mirror

FAST = RetryConfig(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, timeout_s=5.0)
CONVERSION = MemberSelection()
# Unselected frame kinds between selected ones are 40 kB: this gap bridges only smaller holes.
SMALL_GAP = 30_000


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    return write_mirror(root, {SCENE: scene_members(frames=3, frame_bytes=40_000)})


def zip_path(mirror: Path) -> Path:
    return mirror / "scenes" / f"{SCENE}.zip"


def url(server: MirrorServer) -> Location:
    return Location(url=f"{server.url}/scenes/{SCENE}.zip")


def selected(mirror: Path) -> list[ZipMember]:
    directory = read_central_directory(FileRangeReader(zip_path(mirror)))
    return [m for m in directory.members if CONVERSION.matches(SCENE, m.name)]


def raw_files(raw_root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(raw_root).as_posix(): p.read_bytes()
        for p in raw_root.rglob("*")
        if p.is_file() and p.name not in (MANIFEST_NAME, LOCK_NAME)
    }


def manifest_members(raw_root: Path) -> dict[str, dict]:
    return json.loads((raw_root / SCENE / MANIFEST_NAME).read_text())["members"]


def member_gets(server: MirrorServer) -> list[int]:
    """Start offsets of the ranged GETs below the central directory (suffix-range tail reads left out)."""
    return [
        int(r.range_header.split("=")[1].split("-")[0])
        for r in server.requests
        if r.method == "GET" and r.range_header and not r.range_header.startswith("bytes=-")
    ]


def member(name: str, offset: int, size: int) -> ZipMember:
    return ZipMember(name, offset, size, size, 0, 0, 0)


def test_plan_runs_bridges_small_gaps_only() -> None:
    # Local header + name ("a".."e": 1 byte) is 31 bytes before each member's data.
    a, b = member("a", 0, 100), member("b", 131, 50)  # b starts where a ends
    c = member("c", 131 + 81 + 500, 10)  # 500 bytes after b
    d = member("d", c.header_offset + 41 + 5000, 10)  # 5000 bytes after c
    e = member("e", d.header_offset + 10, 10)  # overlaps d: kept apart
    members = [d, b, e, a, c]
    assert plan_runs(members, -1) == [[a], [b], [c], [d], [e]]
    assert plan_runs(members, 0) == [[a, b], [c], [d], [e]]
    assert plan_runs(members, 500 - 64) == [[a, b, c], [d], [e]]  # 64 bytes allowed for a local extra field
    assert plan_runs(members, 500 - 65) == [[a, b], [c], [d], [e]]
    assert plan_runs(members, 5000) == [[a, b, c, d], [e]]
    # A run stops growing at max_run_bytes (spans counted with a guessed 64-byte local extra field).
    assert plan_runs(members, 5000, max_run_bytes=131 + 81 + 64 - 1) == [[a], [b], [c], [d], [e]]
    assert plan_runs(members, 5000, max_run_bytes=131 + 81 + 64) == [[a, b], [c], [d], [e]]


def test_coalesced_fetch_matches_one_request_per_member(mirror: Path, tmp_path: Path) -> None:
    want = {n: d for n, d in extract_all(zip_path(mirror)).items() if CONVERSION.matches(SCENE, n)}
    members = selected(mirror)
    with MirrorServer(mirror) as server:
        single = fetch_scene_members(
            url(server), SCENE, tmp_path / "one", CONVERSION, retry=FAST, coalesce_gap_bytes=-1
        )
        single_gets = member_gets(server)
        server.reset_log()
        runs = plan_runs(members, SMALL_GAP)
        merged = fetch_scene_members(
            url(server), SCENE, tmp_path / "runs", CONVERSION, retry=FAST, coalesce_gap_bytes=SMALL_GAP
        )
        merged_gets = member_gets(server)
    assert raw_files(tmp_path / "one") == raw_files(tmp_path / "runs") == want
    assert manifest_members(tmp_path / "one") == manifest_members(tmp_path / "runs")
    assert set(manifest_members(tmp_path / "runs")) == set(want)
    assert single.members_fetched == merged.members_fetched == len(want)
    # One request per run, each from its first member's local header; fewer than one per member.
    assert len(single_gets) == len(members)
    assert sorted(merged_gets) == sorted(run[0].header_offset for run in runs)
    assert 1 < len(runs) < len(members)
    # Gaps under SMALL_GAP were fetched and dropped: more bytes, never more than the bridged gaps.
    assert single.bytes_fetched < merged.bytes_fetched < single.bytes_fetched + SMALL_GAP * len(members)


def test_dropped_coalesced_request_resumes_mid_run(mirror: Path, tmp_path: Path) -> None:
    want = {n: d for n, d in extract_all(zip_path(mirror)).items() if CONVERSION.matches(SCENE, n)}
    drop_at = 100_000  # more than the tail read (so only the run's response is cut), less than the run
    with MirrorServer(mirror, faults=Faults(drop_after_bytes=drop_at, drop_times=1)) as server:
        report = fetch_scene_members(
            url(server), SCENE, tmp_path, CONVERSION, workers=1, retry=FAST, coalesce_gap_bytes=1 << 20
        )
        gets = member_gets(server)
    assert raw_files(tmp_path) == want and set(manifest_members(tmp_path)) == set(want)
    assert report.retries == 1
    # One run for the whole selection; its broken response continued from the byte it stopped at.
    assert gets == [gets[0], gets[0] + drop_at]
    assert not list(tmp_path.rglob("*.part*"))


def test_coalesced_request_given_up_leaves_the_member_in_flight_resumable(mirror: Path, tmp_path: Path) -> None:
    want = {n: d for n, d in extract_all(zip_path(mirror)).items() if CONVERSION.matches(SCENE, n)}
    (run,) = plan_runs(selected(mirror), 1 << 20)
    # Cut the run's response 1000 bytes into a member's data, past the tail read's length (not cut).
    target = next(m for m in run if m.header_offset - run[0].header_offset > 70_000 and m.compressed_size > 5000)
    drop_at = target.header_offset + 30 + len(target.name) + 1000 - run[0].header_offset
    once = RetryConfig(max_attempts=1, timeout_s=5.0)
    with MirrorServer(mirror, faults=Faults(drop_after_bytes=drop_at, drop_times=1)) as server:
        with pytest.raises(TransferFailed):
            fetch_scene_members(
                url(server), SCENE, tmp_path, CONVERSION, workers=1, retry=once, coalesce_gap_bytes=1 << 20
            )
        (part,) = tmp_path.rglob("*.part")
        in_flight = part.relative_to(tmp_path).as_posix().removesuffix(".part")
        have = part.stat().st_size
        assert in_flight == target.name and have == 1000
        done_before = set(manifest_members(tmp_path))
        assert done_before and in_flight not in done_before  # members before it were verified as they arrived
        server.reset_log()
        report = fetch_scene_members(url(server), SCENE, tmp_path, CONVERSION, workers=1, retry=FAST)
        gets = member_gets(server)
    assert raw_files(tmp_path) == want and set(manifest_members(tmp_path)) == set(want)
    assert report.resumed_members == 1 and report.resumed_bytes == have
    assert report.members_skipped == len(done_before)
    with zipfile.ZipFile(zip_path(mirror)) as zf:
        info = zf.getinfo(in_flight)
        raw = zip_path(mirror).read_bytes()
        h = info.header_offset
        data_offset = (
            h + 30 + int.from_bytes(raw[h + 26 : h + 28], "little") + int.from_bytes(raw[h + 28 : h + 30], "little")
        )
    assert data_offset + have in gets  # the member in flight continued from its own .part


def test_corrupt_member_inside_a_run_is_named(mirror: Path, tmp_path: Path) -> None:
    members = selected(mirror)
    (run,) = plan_runs(members, 1 << 20)
    victim = next(m for m in run[1:-1] if m.compress_type == zipfile.ZIP_STORED and m.compressed_size > 1000)
    data = bytearray(zip_path(mirror).read_bytes())
    data[victim.header_offset + 30 + len(victim.name) + 200] ^= 0x01  # the central directory keeps the old CRC
    bad = tmp_path / "bad"
    (bad / "scenes").mkdir(parents=True)
    (bad / "scenes" / f"{SCENE}.zip").write_bytes(bytes(data))
    with MirrorServer(bad) as server:
        with pytest.raises(MemberCorrupt, match=rf"{SCENE}: member {victim.name} .* twice: CRC-32"):
            fetch_scene_members(
                url(server), SCENE, tmp_path / "raw", CONVERSION, workers=1, retry=FAST, coalesce_gap_bytes=1 << 20
            )
        # First through the run's request, then once more on its own from its local header.
        assert member_gets(server) == [run[0].header_offset, victim.header_offset]
    done = manifest_members(tmp_path / "raw")
    assert victim.name not in done and not (tmp_path / "raw" / victim.name).exists()
    assert {m.name for m in run[: run.index(victim)]} <= set(done)
    assert not list((tmp_path / "raw").rglob("*.part*"))


def lie_about_size(path: Path, name: str, declared: int) -> None:
    """Make ``name`` declare ``declared`` bytes (and their CRC) in its local header and central directory entry."""
    data = bytearray(path.read_bytes())
    crc = zlib.crc32(bytes(declared))
    with zipfile.ZipFile(path) as zf:
        h = zf.getinfo(name).header_offset
        pos = zf.start_dir
    struct.pack_into("<L", data, h + 14, crc)
    struct.pack_into("<L", data, h + 22, declared)
    while data[pos : pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        if data[pos + 46 : pos + 46 + name_len] == name.encode():
            struct.pack_into("<L", data, pos + 16, crc)
            struct.pack_into("<L", data, pos + 24, declared)
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def test_member_inflating_past_its_size_inside_a_run_is_refused(tmp_path: Path) -> None:
    members = scene_members(frames=1, frame_bytes=5000)
    bomb = next(n for n in members if n.endswith("frame.0000.color.hdf5"))
    members[bomb] = bytes(4 << 20)  # deflates to a few kB, declares 10 bytes
    root = write_mirror(tmp_path / "mirror", {SCENE: members}, deflate_every=1)
    lie_about_size(zip_path(root), bomb, 10)
    (run,) = plan_runs(selected(root), 1 << 20)
    assert run[0].name != bomb and bomb in {m.name for m in run[1:]}
    with MirrorServer(root) as server:
        with pytest.raises(MemberInflatesPastSize, match=rf"member {bomb} .*past its declared size of 10 bytes"):
            fetch_scene_members(
                url(server), SCENE, tmp_path / "raw", CONVERSION, workers=1, retry=FAST, coalesce_gap_bytes=1 << 20
            )
        assert member_gets(server) == [run[0].header_offset]  # the bomb was not fetched a second time
    raw = tmp_path / "raw"
    done = manifest_members(raw)
    assert bomb not in done and {m.name for m in run[: [m.name for m in run].index(bomb)]} <= set(done)
    assert not list(raw.rglob("*.part*")) and not list(raw.rglob("*.inflating")) and not (raw / bomb).exists()
