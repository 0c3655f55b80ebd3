"""Arrays to pictures: channel grids, filter tiles, heatmap overlays, figures as arrays.

All functions take and return numpy arrays; pictures are float32 in [0, 1] or uint8.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the near-square grid that holds `count` tiles, filled row by row.

    >>> grid_shape(24), grid_shape(32), grid_shape(1)
    ((5, 5), (6, 6), (1, 1))
    """
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def minmax(x: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
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
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = tiles[i]
    return out


MIN_TILE = 16  # pixels: the smallest side a channel is shown at
MIN_GRID = 256  # pixels: the narrowest a grid of channels is shown


def zoom_for(
    height: int,
    width: int,
    cols: int,
    *,
    pad: int = 1,
    min_tile: int = MIN_TILE,
    min_width: int = MIN_GRID,
) -> int:
    """The smallest whole factor that enlarges (height, width) tiles to at least `min_tile`
    pixels a side, and a grid of `cols` of them with `pad` between to at least `min_width`.

    >>> zoom_for(2, 2, 5), zoom_for(8, 8, 5), zoom_for(56, 56, 12)
    (26, 7, 1)
    """
    zoom = max(1, -(-min_tile // max(1, min(height, width))))
    while cols * (width * zoom + pad) - pad < min_width:
        zoom += 1
    return zoom


def tile_channels(
    feature_map: np.ndarray,
    *,
    max_channels: int | None = None,
    pad: int = 1,
    min_tile: int = MIN_TILE,
    min_width: int = MIN_GRID,
) -> np.ndarray:
    """One image's feature map (H, W, C) as a grayscale grid of its channels, each channel
    min-max normalised on its own and enlarged (nearest neighbour, by `zoom_for`) so that a
    channel is at least `min_tile` pixels a side and the grid at least `min_width` wide:
    (rows * H * zoom + (rows - 1) * pad, cols * W * zoom + ..., 1) in [0, 1].

    >>> tile_channels(np.random.rand(8, 8, 24)).shape  # 5x5 tiles of 56 pixels
    (284, 284, 1)
    >>> tile_channels(np.random.rand(56, 56, 24), min_width=0).shape
    (284, 284, 1)
    """
    feature_map = np.asarray(feature_map)
    if feature_map.ndim != 3:
        raise ValueError(
            f"feature_map: expected (height, width, channels), got shape {feature_map.shape}"
        )
    if max_channels is not None:
        feature_map = feature_map[..., :max_channels]
    height, width, channels = feature_map.shape
    zoom = zoom_for(
        height, width, grid_shape(channels)[1], pad=pad, min_tile=min_tile, min_width=min_width
    )
    scaled = minmax(feature_map, axis=(0, 1)).repeat(zoom, axis=0).repeat(zoom, axis=1)
    return tile(np.moveaxis(scaled, -1, 0)[..., None], pad=pad)


MAX_FILTER_SIDE = 64  # pixels a side of one enlarged filter


def filter_tiles(
    kernel: np.ndarray, *, zoom: int = 8, pad: int = 1, gray: bool = False
) -> np.ndarray:
    """A conv kernel (kh, kw, in, out) as a grid of its `out` filters, each min-max normalised
    and enlarged `zoom` times, but no further than MAX_FILTER_SIDE pixels (a ViT's 16x16 or
    32x32 patch filters are already large): RGB when in == 3, else in gray. In gray the filter
    is the sum over its inputs, which is what it applies to an image whose channels are all the same
    (`gray=True` for a model that sees grayscale pictures as RGB, or a 1-channel input).
    Returns (rows * kh * zoom + ..., cols * kw * zoom + ..., 3) in [0, 1]."""
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim != 4:
        raise ValueError(f"kernel: expected (height, width, in, out), got shape {kernel.shape}")
    filters = np.moveaxis(kernel, -1, 0)  # (out, kh, kw, in)
    if gray or filters.shape[-1] != 3:
        filters = np.repeat(filters.sum(axis=-1, keepdims=True), 3, axis=-1)
    filters = minmax(filters, axis=(1, 2, 3))
    zoom = max(1, min(zoom, MAX_FILTER_SIDE // max(filters.shape[1:3])))
    filters = filters.repeat(zoom, axis=1).repeat(zoom, axis=2)
    return tile(filters, pad=pad)


def display_images(images: np.ndarray, *, min_side: int = 8 * MIN_TILE) -> np.ndarray:
    """A batch of model inputs (N, H, W, C), however normalised, as pictures to look at:
    each min-max scaled on its own, gray (C == 1) as RGB, and enlarged (nearest neighbour)
    by a whole factor to at least `min_side` pixels a side: float32 (N, H', W', 3) in [0, 1]."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images: expected (N, height, width, channels), got shape {images.shape}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return enlarge(minmax(images[..., :3], axis=(1, 2, 3)), min_side=min_side)


def enlarge(pictures: np.ndarray, *, min_side: int = 8 * MIN_TILE) -> np.ndarray:
    """Pictures (N, H, W, C) repeated (nearest neighbour) by the smallest whole factor that
    makes each side at least `min_side` pixels."""
    height, width = pictures.shape[1:3]
    zoom = zoom_for(height, width, 1, min_tile=min_side, min_width=0)
    return pictures.repeat(zoom, axis=1).repeat(zoom, axis=2)


def overlay_heatmaps(
    images: np.ndarray, heatmaps: np.ndarray, *, alpha: float = 0.45, colormap: str = "jet"
) -> np.ndarray:
    """Heatmaps (N, H, W) in [0, 1], coloured with a matplotlib colormap, blended over the
    images (N, H, W, C; min-max scaled per image for display): uint8 (N, H, W, 3)."""
    import matplotlib

    images = np.asarray(images, np.float32)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    base = minmax(images[..., :3], axis=(1, 2, 3))
    colours = matplotlib.colormaps[colormap](np.clip(heatmaps, 0, 1))[..., :3]
    return np.round(255 * ((1 - alpha) * base + alpha * colours)).astype(np.uint8)


def figure_to_array(figure: Figure) -> np.ndarray:
    """A matplotlib Figure rendered to an RGB uint8 array (height, width, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
