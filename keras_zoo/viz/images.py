"""Arrays to pictures: channel grids, filter tiles, heatmap overlays, figures as arrays.

All functions take and return numpy arrays; pictures are float32 in [0, 1] or uint8.
"""

from __future__ import annotations

import math

import numpy as np


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the near-square grid that holds `count` tiles, filled row by row.

    >>> grid_shape(24), grid_shape(32), grid_shape(1)
    ((5, 5), (6, 6), (1, 1))
    """
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def minmax(x: np.ndarray, axis=None) -> np.ndarray:
    """x scaled to [0, 1] over `axis` (a constant slice becomes 0)."""
    x = np.asarray(x, np.float32)
    low = x.min(axis=axis, keepdims=True)
    span = x.max(axis=axis, keepdims=True) - low
    return np.where(span > 0, (x - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


def tile(tiles: np.ndarray, *, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tiles (N, H, W, C) laid out on `grid_shape(N)` with `pad` pixels of `pad_value` between
    them: an array (rows * H + (rows - 1) * pad, cols * W + (cols - 1) * pad, C)."""
    n, h, w, c = tiles.shape
    rows, cols = grid_shape(n)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = tiles[i]
    return out


def tile_channels(feature_map: np.ndarray, *, max_channels: int | None = None, pad: int = 1
                  ) -> np.ndarray:
    """One image's feature map (H, W, C) as a grayscale grid of its channels, each channel
    min-max normalised on its own: (rows * H + (rows - 1) * pad, cols * W + ..., 1) in [0, 1].

    >>> tile_channels(np.random.rand(8, 8, 24)).shape
    (44, 44, 1)
    """
    feature_map = np.asarray(feature_map)
    if feature_map.ndim != 3:
        raise ValueError(f"feature_map: expected (height, width, channels), got shape "
                         f"{feature_map.shape}")
    if max_channels is not None:
        feature_map = feature_map[..., :max_channels]
    channels = minmax(feature_map, axis=(0, 1))
    return tile(np.moveaxis(channels, -1, 0)[..., None], pad=pad)


def filter_tiles(kernel: np.ndarray, *, zoom: int = 8, pad: int = 1) -> np.ndarray:
    """A conv kernel (kh, kw, in, out) as a grid of its `out` filters, each min-max normalised
    and enlarged `zoom` times: RGB when in == 3, else the mean over inputs in gray.
    Returns (rows * kh * zoom + ..., cols * kw * zoom + ..., 3) in [0, 1]."""
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim != 4:
        raise ValueError(f"kernel: expected (height, width, in, out), got shape {kernel.shape}")
    filters = np.moveaxis(kernel, -1, 0)  # (out, kh, kw, in)
    if filters.shape[-1] != 3:
        filters = np.repeat(filters.mean(axis=-1, keepdims=True), 3, axis=-1)
    filters = minmax(filters, axis=(1, 2, 3))
    filters = filters.repeat(zoom, axis=1).repeat(zoom, axis=2)
    return tile(filters, pad=pad)


def overlay_heatmaps(images: np.ndarray, heatmaps: np.ndarray, *, alpha: float = 0.45,
                     colormap: str = "jet") -> np.ndarray:
    """Heatmaps (N, H, W) in [0, 1], coloured with a matplotlib colormap, blended over the
    images (N, H, W, C; min-max scaled per image for display): uint8 (N, H, W, 3)."""
    import matplotlib

    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    base = minmax(images[..., :3], axis=(1, 2, 3))
    colours = matplotlib.colormaps[colormap](np.clip(heatmaps, 0, 1))[..., :3]
    return np.round(255 * ((1 - alpha) * base + alpha * colours)).astype(np.uint8)


def figure_to_array(figure) -> np.ndarray:
    """A matplotlib Figure rendered to an RGB uint8 array (height, width, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
