"""Central directory and local header parsing, checked against Python's zipfile,
on local files and over real HTTP from the loopback mirror."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from hypersim_assets.download.http_client import HttpClient
from hypersim_assets.download.remote_zip import (
    FileRangeReader,
    HttpRangeReader,
    ZipFormatError,
    ZipMember,
    member_data_offset,
    read_central_directory,
)
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.scene_zips import SCENE, extract_all, scene_members, with_zip64_end_records, write_zip


def zipfile_view(path: Path) -> dict[str, tuple[int, int, int, int, int]]:
    with zipfile.ZipFile(path) as zf:
        return {
            i.filename: (i.header_offset, i.compress_size, i.file_size, i.compress_type, i.CRC) for i in zf.infolist()
        }


def our_view(members: tuple[ZipMember, ...]) -> dict[str, tuple[int, int, int, int, int]]:
    return {m.name: (m.header_offset, m.compressed_size, m.file_size, m.compress_type, m.crc32) for m in members}


def member_bytes(reader: FileRangeReader, m: ZipMember) -> bytes:
    """Raw data of a member through our local-header parsing, decoded with zlib."""
    import zlib

    raw = reader.read_range(member_data_offset(reader, m), m.compressed_size)
    return zlib.decompress(raw, -15) if m.compress_type == 8 else raw


@pytest.mark.parametrize("force_zip64", [False, True])
def test_central_directory_matches_zipfile_and_members_decode(tmp_path: Path, force_zip64: bool) -> None:
    members = scene_members(frames=1)
    path = write_zip(tmp_path / "s.zip", members, force_zip64=force_zip64)
    reader = FileRangeReader(path)
    cd = read_central_directory(reader)
    assert our_view(cd.members) == zipfile_view(path)
    assert {m.compress_type for m in cd.members} == {0, 8}
    extracted = extract_all(path)
    for m in cd.members:
        if not m.is_dir:
            assert member_bytes(reader, m) == extracted[m.name] == members[m.name]
    if force_zip64:
        # Forced ZIP64 puts a zip64 extra field in each local header but not in the central directory:
        # the data offset must come from the local header's own lengths.
        m = next(m for m in cd.members if not m.is_dir)
        head = path.read_bytes()[m.header_offset : m.header_offset + 30]
        local_extra = int.from_bytes(head[28:30], "little")
        assert local_extra >= 20
        assert member_data_offset(reader, m) == m.header_offset + 30 + len(m.name.encode()) + local_extra


def test_zip64_end_records(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "s.zip", scene_members(frames=1), force_zip64=True)
    plain = read_central_directory(FileRangeReader(path))
    with_zip64_end_records(path)
    assert zipfile.ZipFile(path).testzip() is None  # the rewritten end is valid for zipfile too
    cd = read_central_directory(FileRangeReader(path))
    assert cd.zip64 and not plain.zip64
    assert cd.members == plain.members
    assert our_view(cd.members) == zipfile_view(path)


def test_more_than_65535_entries_uses_zip64_eocd(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(0x10000 + 1):
            zf.writestr(f"{SCENE}/_detail/x{i}", b"")
        zf.writestr(f"{SCENE}/_detail/metadata_scene.csv", b"a,b\n")
    cd = read_central_directory(FileRangeReader(path))
    assert cd.zip64
    assert len(cd.members) == 0x10000 + 2
    last = cd.members[-1]
    assert last.name == f"{SCENE}/_detail/metadata_scene.csv"
    assert member_bytes(FileRangeReader(path), last) == b"a,b\n"


def test_comment_with_fake_signature_and_prepended_stub(tmp_path: Path) -> None:
    members = scene_members(frames=1)
    path = write_zip(tmp_path / "s.zip", members)
    before = zipfile_view(path)
    with zipfile.ZipFile(path, "a") as zf:
        # zipfile itself takes the last signature it sees for the end record; we check the comment length.
        zf.comment = b"decoy PK\x05\x06 inside the comment" + b"\x00" * 40
    stub = b"#!/bin/sh\nexit 0\n" * 10
    stubbed = tmp_path / "stub.zip"
    stubbed.write_bytes(stub + path.read_bytes())
    reader = FileRangeReader(stubbed)
    cd = read_central_directory(reader)
    assert our_view(cd.members) == {name: (off + len(stub), *rest) for name, (off, *rest) in before.items()}
    for m in cd.members:
        if not m.is_dir:
            assert member_bytes(reader, m) == members[m.name]


def test_not_a_zip_and_unsupported_compression(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all" * 100)
    with pytest.raises(ZipFormatError, match="junk.zip.*End of Central Directory"):
        read_central_directory(FileRangeReader(junk))
    bz = tmp_path / "bz.zip"
    with zipfile.ZipFile(bz, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr(f"{SCENE}/_detail/metadata_scene.csv", b"x" * 100)
    (m,) = read_central_directory(FileRangeReader(bz)).members
    with pytest.raises(ZipFormatError, match=r"metadata_scene.csv uses compression method 12"):
        m.check_supported(str(bz))


def test_over_http_same_directory_in_two_requests(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "scenes" / f"{SCENE}.zip", scene_members(frames=2), force_zip64=True)
    local = read_central_directory(FileRangeReader(path))
    with MirrorServer(tmp_path) as server, HttpClient() as client:
        reader = HttpRangeReader(client, f"{server.url}/scenes/{SCENE}.zip")
        cd = read_central_directory(reader)
        assert cd.members == local.members
        assert cd.etag is not None and cd.size == path.stat().st_size
        # One suffix-range read of the tail, which holds the whole (small) central directory.
        assert [(r.method, r.status, r.range_header) for r in server.requests] == [("GET", 206, "bytes=-65578")]


def test_over_http_central_directory_larger_than_tail(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "scenes" / f"{SCENE}.zip", scene_members(frames=3, cameras=2))
    local = read_central_directory(FileRangeReader(path))
    with MirrorServer(tmp_path) as server, HttpClient() as client:
        reader = HttpRangeReader(client, f"{server.url}/scenes/{SCENE}.zip", tail_bytes=1024)
        cd = read_central_directory(reader, tail_bytes=1024)
        assert local.cd_size > 1024
        assert cd.members == local.members
        gets = [r for r in server.requests if r.method == "GET"]
        assert len(gets) == 2  # the tail, then the rest of the central directory
        assert sum(r.body_bytes for r in gets) <= local.cd_size + 1024 + 22
