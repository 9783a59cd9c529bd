"""Encoders for the synthetic mirror's lossy preview images: PNG (8-bit gray/RGB) and
baseline JPEG (8-bit YCbCr 4:4:4), written with numpy and zlib-ng only.

Both produce standard files that any decoder reads (tests decode them with Pillow).
The JPEG encoder is a plain baseline one (orthonormal 8x8 DCT, scaled Annex K
quantisation tables, per-image Huffman tables); it favours short code over ratio.
"""

from __future__ import annotations

import heapq
import struct

import numpy as np

from hypersim_assets.convert import png_writer


def encode_png(image: np.ndarray, level: int = 6) -> bytes:
    """PNG bytes of a uint8 image, (H, W) gray or (H, W, 3) RGB; rows use the Sub filter."""
    return png_writer.encode_png(
        np.ascontiguousarray(image, dtype=np.uint8), filter_type=png_writer.FILTER_SUB, level=level
    )


_LUMA_Q = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
).reshape(8, 8)
_CHROMA_Q = np.full((8, 8), 99.0)
_CHROMA_Q[:4, :4] = np.array([[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]])

# Zigzag scan: position i of the scan reads coefficient _ZIGZAG[i] of the row-major 8x8 block.
_ZIGZAG = np.array(
    sorted(range(64), key=lambda k: (k // 8 + k % 8, (k % 8) if (k // 8 + k % 8) % 2 == 0 else -(k % 8)))
)


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    c = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    c[0] /= np.sqrt(2)
    return c


_DCT = _dct_matrix()


def _quant_table(base: np.ndarray, quality: int) -> np.ndarray:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


def _bit_length(a: np.ndarray) -> np.ndarray:
    return np.frexp(np.abs(a).astype(np.float64))[1].astype(np.int64)


def _huffman_lengths(freq: np.ndarray) -> np.ndarray:
    """Code lengths (0 = unused) for 256 symbols; one extra pseudo-symbol keeps the all-ones code free."""
    syms = [(int(f), i) for i, f in enumerate(freq) if f > 0] + [(1, 256)]
    heap = [(f, i, (s,)) for i, (f, s) in enumerate(syms)]
    heapq.heapify(heap)
    lengths = np.zeros(257, dtype=np.int64)
    counter = len(heap)
    while len(heap) > 1:
        f1, _, s1 = heapq.heappop(heap)
        f2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (f1 + f2, counter, s1 + s2))
        counter += 1
    if lengths.max() > 16:
        # Rare skew: fall back to flat codes, still a valid prefix code without the all-ones word.
        used = np.flatnonzero(freq > 0)
        flat = int(np.ceil(np.log2(len(used) + 1)))
        lengths[:] = 0
        lengths[used] = max(flat, 1)
    return lengths[:256]


def _huffman_table(freq: np.ndarray) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Canonical codes, lengths (per symbol) and the DHT payload (16 counts + values) for ``freq``."""
    lengths = _huffman_lengths(freq)
    order = sorted((int(lengths[s]), s) for s in range(256) if lengths[s] > 0)
    codes = np.zeros(256, dtype=np.int64)
    code, prev_len = 0, order[0][0]
    for ln, s in order:
        code <<= ln - prev_len
        prev_len = ln
        codes[s] = code
        code += 1
    counts = bytes(int((lengths == n).sum()) for n in range(1, 17))
    return codes, lengths, counts + bytes(s for _, s in order)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Baseline JFIF JPEG bytes of a uint8 RGB image (H, W, 3), YCbCr 4:4:4."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"JPEG needs an (H, W, 3) uint8 image, got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    rgb = img.astype(np.float64)
    ycc = np.stack(
        [
            0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2] - 128,
            -0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2],
            0.5 * rgb[..., 0] - 0.418688 * rgb[..., 1] - 0.081312 * rgb[..., 2],
        ],
        axis=0,
    )
    ph, pw = -(-h // 8) * 8, -(-w // 8) * 8
    ycc = np.pad(ycc, ((0, 0), (0, ph - h), (0, pw - w)), mode="edge")
    by, bx = ph // 8, pw // 8
    blocks = ycc.reshape(3, by, 8, bx, 8).transpose(1, 3, 0, 2, 4)  # (by, bx, comp, 8, 8): MCU order
    coef = _DCT @ blocks @ _DCT.T
    qt = [_quant_table(_LUMA_Q, quality), _quant_table(_CHROMA_Q, quality)]
    qs = np.stack([qt[0], qt[1], qt[1]])
    q = np.rint(coef / qs).reshape(-1, 3, 64)[:, :, _ZIGZAG].astype(np.int64)  # (mcus, comp, 64)
    q[:, :, 1:] = np.clip(q[:, :, 1:], -1023, 1023)
    n_mcu = q.shape[0]
    dc = q[:, :, 0]
    dc_diff = np.clip(np.diff(np.concatenate([np.zeros((1, 3), np.int64), dc]), axis=0), -2047, 2047)
    zz = q.reshape(n_mcu * 3, 64)  # block b = mcu * 3 + comp
    comp_of_block = np.tile(np.arange(3), n_mcu)
    table_of_block = (comp_of_block > 0).astype(np.int64)  # 0 luma, 1 chroma

    # Events: (sort key, table kind, table index, symbol, value bits, value length).
    nb = zz.shape[0]
    b_all = np.arange(nb)
    dc_flat = dc_diff.reshape(-1)
    dc_size = _bit_length(dc_flat)
    dc_bits = np.where(dc_flat >= 0, dc_flat, dc_flat + (1 << dc_size) - 1)
    keys = [b_all * 256]
    kinds = [np.zeros(nb, np.int64)]
    tabs = [table_of_block]
    syms = [dc_size]
    vbits = [dc_bits]
    vlens = [dc_size]

    bi, ki = np.nonzero(zz[:, 1:])
    ki = ki + 1
    vals = zz[bi, ki]
    first = np.ones(len(bi), bool)
    first[1:] = bi[1:] != bi[:-1]
    prev_k = np.where(first, 0, np.concatenate([[0], ki[:-1]]))
    run = ki - prev_k - 1
    size = _bit_length(vals)
    keys.append(bi * 256 + ki * 4 + 3)
    kinds.append(np.ones(len(bi), np.int64))
    tabs.append(table_of_block[bi])
    syms.append((run % 16) * 16 + size)
    vbits.append(np.where(vals >= 0, vals, vals + (1 << size) - 1))
    vlens.append(size)
    for j in range(3):  # ZRL (16 zeros) events before a coefficient whose zero run is >= 16 (j+1)
        m = run // 16 > j
        keys.append(bi[m] * 256 + ki[m] * 4 + j)
        kinds.append(np.ones(int(m.sum()), np.int64))
        tabs.append(table_of_block[bi[m]])
        syms.append(np.full(int(m.sum()), 0xF0, np.int64))
        vbits.append(np.zeros(int(m.sum()), np.int64))
        vlens.append(np.zeros(int(m.sum()), np.int64))
    last_k = np.zeros(nb, np.int64)
    last_k[bi] = ki  # nonzero() is row-major, so the last write per block is its last nonzero
    eob = last_k < 63
    keys.append(b_all[eob] * 256 + 255)
    kinds.append(np.ones(int(eob.sum()), np.int64))
    tabs.append(table_of_block[eob])
    syms.append(np.zeros(int(eob.sum()), np.int64))
    vbits.append(np.zeros(int(eob.sum()), np.int64))
    vlens.append(np.zeros(int(eob.sum()), np.int64))

    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")
    kind = np.concatenate(kinds)[order]
    tab = np.concatenate(tabs)[order]
    sym = np.concatenate(syms)[order]
    vb = np.concatenate(vbits)[order]
    vl = np.concatenate(vlens)[order]

    dht = b""
    code = np.zeros(len(sym), np.int64)
    clen = np.zeros(len(sym), np.int64)
    for k in (0, 1):
        for t in (0, 1):
            m = (kind == k) & (tab == t)
            freq = np.bincount(sym[m], minlength=256)
            codes, lengths, payload = _huffman_table(freq)
            code[m] = codes[sym[m]]
            clen[m] = lengths[sym[m]]
            dht += bytes([k << 4 | t]) + payload

    word = (code << vl) | vb
    wlen = clen + vl
    total = int(wlen.sum())
    ends = np.cumsum(wlen)
    idx = np.repeat(np.arange(len(word)), wlen)
    shift = np.repeat(ends, wlen) - 1 - np.arange(total)
    bits = ((word[idx] >> shift) & 1).astype(np.uint8)
    pad = (-total) % 8
    bits = np.concatenate([bits, np.ones(pad, np.uint8)])
    data = np.packbits(bits).tobytes().replace(b"\xff", b"\xff\x00")

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    out = b"\xff\xd8"
    out += segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    out += segment(
        0xFFDB,
        b"\x00"
        + bytes(qt[0].reshape(-1)[_ZIGZAG].astype(np.uint8))
        + b"\x01"
        + bytes(qt[1].reshape(-1)[_ZIGZAG].astype(np.uint8)),
    )
    out += segment(0xFFC0, struct.pack(">BHHB", 8, h, w, 3) + bytes([1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]))
    out += segment(0xFFC4, dht)
    out += segment(0xFFDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]))
    return out + data + b"\xff\xd9"
