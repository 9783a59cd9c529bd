"""Reading a frame's inputs: same arrays as h5py, clear errors for missing/corrupt files."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from hypersim_assets.convert import hdf5_frames as H
from hypersim_assets_tests.frame_scene import METERS_PER_ASSET_UNIT, write_scene


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("raw"), frames=2, height=40, width=50)


def test_frame_images_equal_plain_h5py_reads(scene_dir):
    img = H.read_frame_images(scene_dir, "ai_037_002", "cam_00", 1)
    with h5py.File(scene_dir / "images/scene_cam_00_final_hdf5/frame.0001.color.hdf5") as f:
        assert f["dataset"].chunks == (16, 24, 1)  # edge chunks: 40x50 is not a multiple
        expected = f["dataset"][()]
    assert img.color.dtype == np.float16 and img.color.shape == (40, 50, 3)
    assert np.array_equal(img.color.view(np.uint16), expected.view(np.uint16))
    with h5py.File(scene_dir / "images/scene_cam_00_geometry_hdf5/frame.0001.semantic_instance.hdf5") as f:
        assert np.array_equal(img.semantic_instance, f["dataset"][()])


def test_scene_detail_files(scene_dir):
    assert H.read_meters_per_asset_unit(scene_dir, "ai_037_002") == METERS_PER_ASSET_UNIT
    pos, rot = H.read_camera_pose(scene_dir, "ai_037_002", "cam_00", 1)
    assert pos.shape == (3,) and rot.shape == (3, 3)
    boxes = H.read_bounding_boxes(scene_dir, "ai_037_002")
    assert boxes.extents.shape == (320, 3) and boxes.orientations.shape == (320, 3, 3)


def test_missing_and_corrupt_inputs_name_scene_camera_frame_and_file(scene_dir, tmp_path):
    with pytest.raises(H.FrameInputMissing) as err:
        H.read_frame_images(scene_dir, "ai_037_002", "cam_00", 5)
    assert "ai_037_002/cam_00/0005" in str(err.value) and "frame.0005.color.hdf5" in str(err.value)
    with pytest.raises(H.FrameInputCorrupt, match="rows"):
        H.read_camera_pose(scene_dir, "ai_037_002", "cam_00", 7)
    bad = write_scene(tmp_path, frames=1, height=8, width=8)
    (bad / "images/scene_cam_00_geometry_hdf5/frame.0000.semantic.hdf5").write_bytes(b"not hdf5 at all")
    with pytest.raises(H.FrameInputCorrupt, match="semantic.hdf5"):
        H.read_frame_images(bad, "ai_037_002", "cam_00", 0)
    with h5py.File(bad / "images/scene_cam_00_geometry_hdf5/frame.0000.semantic.hdf5", "w") as f:
        f.create_dataset("other", data=np.zeros((8, 8), np.int16))
    with pytest.raises(H.FrameInputCorrupt, match="no 'dataset'"):
        H.read_frame_images(bad, "ai_037_002", "cam_00", 0)


@pytest.mark.parametrize(
    "options",
    [
        {"compression": "gzip", "compression_opts": 9},  # upstream's layout: read through libdeflate
        {"compression": "gzip", "compression_opts": 1, "chunks": (7, 9, 3)},  # edge chunks padded
        {"compression": "gzip", "chunks": (7, 9, 2)},  # the last axis split into chunks, one of them partial
        {"compression": "gzip", "chunks": (50, 16, 1)},  # one row of chunks
        {"compression": "gzip", "shuffle": True},  # another filter: left to h5py
        {"compression": "lzf"},
        {},  # contiguous
    ],
)
def test_whole_dataset_reads_equal_h5py(tmp_path, options):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(50, 70, 3)).astype(np.float16)
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=data, **options)
    with h5py.File(path, "r") as f:
        got = H._read_whole(f["dataset"].id, path)
        assert got.dtype == data.dtype and np.array_equal(got, f["dataset"][()]) and np.array_equal(got, data)


def test_unallocated_chunks_read_as_the_fill_value(tmp_path):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "dataset", shape=(16, 16), dtype=np.int16, chunks=(8, 8), compression="gzip", fillvalue=-7
        )
        ds[:8, :8] = 5  # one of four chunks stored
    got = H._read_dataset(path, "ai_037_002", "cam_00", 0)
    assert got[:8, :8].tolist() == [[5] * 8] * 8 and (got[8:] == -7).all() and (got[:8, 8:] == -7).all()


def test_dataset_that_is_a_group_is_corrupt(tmp_path):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("dataset")
    with pytest.raises(H.FrameInputCorrupt, match="x.hdf5.*'dataset'"):
        H._read_dataset(path, "ai_037_002", "cam_00", 0)


@pytest.mark.parametrize("chunk_rows", [8, 64])  # a 17-byte stream for 256 or 2048 bytes: libdeflate, zlib-ng
def test_corrupt_gzip_chunk_is_an_error(tmp_path, chunk_rows):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("dataset", shape=(128, 16), dtype=np.int16, chunks=(chunk_rows, 16), compression="gzip")
        ds[...] = np.arange(128 * 16, dtype=np.int16).reshape(128, 16)
        ds.id.write_direct_chunk((chunk_rows, 0), b"not a zlib stream")
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match="does not inflate"):
        H._read_whole(f["dataset"].id, path)


@pytest.mark.parametrize("stored_bytes", [100, 4000])  # zlib-ng, libdeflate
def test_chunk_inflating_to_the_wrong_size_is_an_error(tmp_path, stored_bytes):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("dataset", shape=(64, 64), dtype=np.int16, chunks=(64, 64), compression="gzip")
        ds[...] = 1
        ds.id.write_direct_chunk((0, 0), zlib.compress(np.random.default_rng(0).bytes(stored_bytes), 1))
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match="inflate"):
        H._read_whole(f["dataset"].id, path)


def test_label_like_chunks_read_equal_h5py(tmp_path):
    """Runs of one value (ratio far above the zlib-ng threshold) beside noisy chunks, one file."""
    data = np.full((96, 256), -1, np.int16)
    data[:, 128:] = np.random.default_rng(5).integers(-1, 300, (96, 128))
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=data, chunks=(96, 128), compression="gzip", compression_opts=9)
    with h5py.File(path, "r") as f:
        sizes = [f["dataset"].id.get_chunk_info(i).size for i in range(2)]
        assert sizes[0] * H._ZLIB_NG_MIN_RATIO <= 96 * 128 * 2 < sizes[1] * H._ZLIB_NG_MIN_RATIO  # both paths
    assert np.array_equal(H._read_dataset(path, "ai_037_002", "cam_00", 0), data)
