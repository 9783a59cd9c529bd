"""Small preview images of a converted frame for the Dagster UI: RGB, depth
colour-mapped, and semantic labels in a fixed palette, as markdown with inline
PNGs (pure functions: numpy arrays in, bytes or text out); and the two ways a scene's
conversion gets them without converting a frame twice: from the arrays of a frame being
converted, or decoded from a done frame's written PNGs."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from hypersim_assets.common.layout import frame_output_paths, split_dir_name
from hypersim_assets.convert.frame_conversion import ConvertedFrame, FrameFacts, convert_frame
from hypersim_assets.convert.png_writer import encode_png

PREVIEW_MAX_WIDTH = 192  # pixels; keeps the markdown a few tens of KiB


def downsample(image: np.ndarray, max_width: int = PREVIEW_MAX_WIDTH) -> np.ndarray:
    """Every k-th pixel in both directions so the width is at most ``max_width`` (nearest neighbour keeps labels exact)."""
    step = max(1, -(-image.shape[1] // max_width))
    return np.ascontiguousarray(image[::step, ::step])


def _colormap_lut() -> np.ndarray:
    """A 256-entry perceptually ordered blue-green-yellow-red map (uint8 RGB)."""
    t = np.linspace(0.0, 1.0, 256)
    stops = np.array(
        [[48, 18, 59], [40, 120, 230], [30, 200, 160], [160, 230, 50], [250, 180, 40], [200, 40, 20]], float
    )
    pos = np.linspace(0.0, 1.0, len(stops))
    return np.stack([np.interp(t, pos, stops[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


_DEPTH_LUT = _colormap_lut()


def colorize_depth(depth_mm: np.ndarray) -> np.ndarray:
    """Depth in millimetres (0 = invalid) to RGB: near blue, far red, scaled to the frame's valid 2nd-98th percentile; invalid black."""
    valid = depth_mm > 0
    out = np.zeros((*depth_mm.shape, 3), np.uint8)
    if not valid.any():
        return out
    lo, hi = np.percentile(depth_mm[valid], [2, 98])
    scaled = np.clip((depth_mm.astype(np.float32) - lo) / max(hi - lo, 1.0), 0.0, 1.0)
    out[valid] = _DEPTH_LUT[(scaled[valid] * 255).astype(np.uint8)]
    return out


def label_palette(n: int = 256, seed: int = 40) -> np.ndarray:
    """A fixed, well-spread RGB colour per label id; id 0 (void) is black."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(40, 256, size=(n, 3), dtype=np.uint8)
    palette[0] = 0
    return palette


_LABELS = label_palette()


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """uint8 label image (0 = void) to RGB with :func:`label_palette`."""
    return _LABELS[labels]


def png_data_uri(image: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of an 8-bit gray or RGB image."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image, "fast")).decode("ascii")


def frame_preview_markdown(title: str, rgb: np.ndarray, depth_mm: np.ndarray, semantic: np.ndarray) -> str:
    """Markdown with the RGB, depth and semantic previews of one frame side by side."""
    cells = [
        ("rgb", downsample(rgb)),
        ("depth", colorize_depth(downsample(depth_mm))),
        ("semantic", colorize_labels(downsample(semantic))),
    ]
    header = "| " + " | ".join(name for name, _ in cells) + " |"
    images = "| " + " | ".join(f"![{name}]({png_data_uri(img)})" for name, img in cells) + " |"
    return f"**{title}**\n\n{header}\n|---|---|---|\n{images}\n"


def frame_title(scene: str, camera: str, frame_id: int) -> str:
    """The preview's heading: ``<scene> <camera> frame <NNNN>``."""
    return f"{scene} {camera} frame {int(frame_id):04d}"


def convert_with_preview(args: tuple) -> tuple[FrameFacts, str | None]:
    """``convert_frame(*args)`` and, when the frame is converted now (not skipped, not failed),
    its markdown preview made from the arrays just written (None otherwise). A preview that
    cannot be made gives the reason instead, never an exception (a preview must never fail a
    materialisation)."""
    title = frame_title(args[1], args[2], args[3])
    made: list[str] = []

    def preview_of(frame: ConvertedFrame) -> None:
        try:
            made.append(frame_preview_markdown(title, frame.rgb, frame.depth_mm, frame.semantic))
        except Exception as exc:
            made.append(f"no preview: {type(exc).__name__}: {exc}")

    facts = convert_frame(*args, on_converted=preview_of)
    return facts, (made[0] if made else None)


def preview_from_files(dataset_root: Path, scene: str, camera: str, frame_id: int, split: str) -> str:
    """Markdown previews of a done frame decoded from its written rgb, depth and semantic PNGs
    (the pixels its conversion held, so the same markdown); never raises: the reason instead."""
    from PIL import Image  # only here: converting never decodes a PNG

    rels = frame_output_paths(split_dir_name(split), scene, camera, int(frame_id))
    try:
        images = {}
        for modality in ("rgb", "depth", "semantic_40"):
            with Image.open(Path(dataset_root) / rels[modality]) as im:
                images[modality] = np.asarray(im)
        depth_mm = images["depth"].astype(np.uint16, copy=False)  # Pillow may give 16-bit gray as int32
        return frame_preview_markdown(
            frame_title(scene, camera, frame_id), images["rgb"], depth_mm, images["semantic_40"]
        )
    except Exception as exc:
        return f"no preview: {type(exc).__name__}: {exc}"
