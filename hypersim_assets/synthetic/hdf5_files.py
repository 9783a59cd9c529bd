"""Upstream-style HDF5 files of the mirror: one dataset named ``dataset`` per file, frame images
gzip level 9 in h5py's automatic chunks (no shuffle), ``_detail`` arrays contiguous and unfiltered;
and the dtype upstream stores each frame image kind in.
"""

from __future__ import annotations

import io
import itertools

import h5py
import numpy as np
from zlib_ng import zlib_ng

from hypersim_assets.common import layout

FRAME_DTYPES: dict[str, type] = {
    **{k: np.float16 for k in layout.FINAL_KINDS},
    **{
        k: np.float16
        for k in (
            "depth_meters",
            "position",
            "normal_cam",
            "normal_world",
            "normal_bump_cam",
            "normal_bump_world",
            "tex_coord",
        )
    },
    **{k: np.int16 for k in ("render_entity_id", "semantic", "semantic_instance")},
}


def hdf5_bytes(array: np.ndarray, compressed: bool) -> bytes:
    """An upstream-style HDF5 file holding ``array`` as ``dataset``.

    ``compressed``: the deflate (gzip) filter at level 9 with h5py's automatic chunk shape, which
    is what upstream's ``create_dataset(..., compression="gzip", compression_opts=9)`` produced
    ((96, 128) for 768x1024 depth); the chunks are deflated here with zlib-ng (a valid zlib stream,
    about a fifth faster than HDF5's own zlib) and written directly. Otherwise contiguous and
    unfiltered, as upstream wrote ``_detail`` arrays.
    """
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        if not compressed:
            f.create_dataset("dataset", data=array)
        else:
            a = np.ascontiguousarray(array)
            ds = f.create_dataset(
                "dataset", shape=a.shape, dtype=a.dtype, chunks=True, compression="gzip", compression_opts=9
            )
            chunks = ds.chunks
            for offset in itertools.product(*(range(0, n, c) for n, c in zip(a.shape, chunks))):
                block = a[tuple(slice(o, o + c) for o, c in zip(offset, chunks))]
                if block.shape != chunks:  # edge chunks are stored full size, padded with the fill value 0
                    padded = np.zeros(chunks, dtype=a.dtype)
                    padded[tuple(slice(0, n) for n in block.shape)] = block
                    block = padded
                ds.id.write_direct_chunk(offset, zlib_ng.compress(np.ascontiguousarray(block).tobytes(), 9))
    return buf.getvalue()
