"""Tracking results drawn on video frames: each id's box, its number and its recent path.

`TrackDrawer.draw` takes one frame and its tracks ([x1, y1, x2, y2, id] rows, as
`Sort.update` returns them) and returns a new frame with, for every track, the box outlined
in the id's colour (`id_colour`), the id in a tag of that colour at the box's top-left, and
its trail: a line through the bottom centre of the id's boxes over the last `trail` frames
(the point where a pedestrian stands, whose path on the ground the changing height of a box
does not shake). `frame_paths` lists the images of a MOTChallenge `img1` folder by frame
number, `write_gif` (Pillow) and `write_video` (OpenCV, where it is installed) write the drawn
frames, each in one step: a failure leaves no file behind.

Only NumPy and Pillow are needed: importing the module loads neither Keras nor TensorFlow.

>>> import numpy as np
>>> from keras_zoo.track.draw import TrackDrawer, id_colour
>>> drawer = TrackDrawer(trail=30)
>>> frame = np.zeros((120, 160, 3), dtype=np.uint8)
>>> drawn = drawer.draw(frame, np.array([[20.0, 30.0, 60.0, 100.0, 7.0]]))
>>> tuple(drawn[60, 20]) == id_colour(7), not frame.any()  # the left edge; the input untouched
(True, True)
"""

from __future__ import annotations

import colorsys
import functools
import math
import operator
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["TrackDrawer", "frame_paths", "id_colour", "write_gif", "write_video"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618...: successive hues as far apart as can be
# Bright and saturated, so that a colour stands out from the greys and browns of street
# scenes; the value is full because the dark hues (blue, purple) vanish on dark frames first.
_SATURATION = 0.8
_VALUE = 1.0
_RIM = (0, 0, 0)
_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit also takes "²" and "٣"


def id_colour(track_id: int) -> tuple[int, int, int]:
    """The RGB colour of `track_id`: the same for the same id in every run, and far from its
    neighbours' (the hue turns by the golden angle, about 137 degrees, from one id to the next,
    which spreads any run of ids evenly around the colour circle), bright and saturated.

    >>> id_colour(1), id_colour(2)
    ((51, 111, 255), (170, 255, 51))
    """
    try:
        if isinstance(track_id, bool):
            raise TypeError
        number = operator.index(track_id)
    except TypeError:
        raise ValueError(f"track_id must be an integer, got {track_id!r}") from None
    hue = (number * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, _SATURATION, _VALUE)
    return round(r * 255), round(g * 255), round(b * 255)


def _text_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with `colour` (WCAG's relative luminance)."""

    def linear(c: int) -> float:
        s = c / 255.0
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = map(linear, colour)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # contrast with black (L + 0.05) / 0.05 against white 1.05 / (L + 0.05)
    return (0, 0, 0) if (luminance + 0.05) ** 2 > 0.05 * 1.05 else (255, 255, 255)


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """The image file at `path` as an (H, W, 3) uint8 RGB array, read by Pillow (whose
    decompression-bomb limit bounds the pixels it will decode); ValueError naming the file
    when it cannot be read."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{os.fspath(path)}: not a readable image: {err}") from None


def frame_paths(folder: str | os.PathLike) -> dict[int, str]:
    """The images of a MOTChallenge `img1` folder (000001.jpg, 000002.jpg, ...), by the frame
    number their names spell, in frame order.

    Files ending in .jpg, .jpeg, .png or .bmp (in any case) whose name before the suffix is
    digits are taken; others are passed over. ValueError naming `folder` when it is not a
    folder, holds no such image, or two images spell the same number (000001.jpg and 1.png).
    """
    given = os.fspath(folder)
    try:
        entries = list(os.scandir(given))
    except OSError as err:
        raise ValueError(
            f"{given}: not a readable folder ({err.strerror or err}): expected a folder of "
            "frames 000001.jpg, 000002.jpg, ..."
        ) from None
    found: dict[int, str] = {}
    for entry in sorted(entries, key=lambda e: e.name):
        stem, suffix = os.path.splitext(entry.name)
        if suffix.lower() not in IMAGE_SUFFIXES or not _DIGITS.fullmatch(stem):
            continue
        if not entry.is_file():
            continue
        number = int(stem)
        if number in found:
            raise ValueError(
                f"{given}: {os.path.basename(found[number])} and {entry.name} are both frame "
                f"{number}: expected one image per frame"
            )
        found[number] = os.path.join(given, entry.name)
    if not found:
        raise ValueError(
            f"{given}: no images: expected frames named by number, 000001.jpg, 000002.jpg, ... "
            f"(suffix {', '.join(IMAGE_SUFFIXES)})"
        )
    return dict(sorted(found.items()))


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's own font at a given size (Pillow >= 10.1; its fixed bitmap font without
    # FreeType); loaded once per size, not once per label
    return ImageFont.load_default(size=size)


def _check_image(image: Any, arg: str, index: int | None = None) -> np.ndarray:
    where = arg if index is None else f"{arg}[{index}]"
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"{where}: expected an (H, W, 3) uint8 RGB array, got {type(image).__name__}"
        )
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{where}: expected an (H, W, 3) uint8 RGB array, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: expected an (H, W, 3) uint8 RGB array, got dtype {image.dtype}")
    return image


def _check_tracks(tracks: Any) -> np.ndarray:
    """The rows of `tracks` as float64 (M, 5) with their ids whole, less the rows with a
    value that is not finite (nothing to draw)."""
    try:
        rows = np.asarray(tracks)
    except ValueError as err:  # ragged rows
        raise ValueError(
            f"tracks: expected an (M, 5) array of [x1, y1, x2, y2, id] rows: {err}"
        ) from None
    if rows.size == 0:
        return np.zeros((0, 5))
    if rows.dtype.kind not in "iuf":
        raise ValueError(
            f"tracks: expected an (M, 5) array of numbers [x1, y1, x2, y2, id], got dtype "
            f"{rows.dtype}"
        )
    if rows.ndim != 2 or rows.shape[1] != 5:
        raise ValueError(
            f"tracks: expected an (M, 5) array of [x1, y1, x2, y2, id] rows, got shape {rows.shape}"
        )
    rows = rows.astype(np.float64)
    rows = rows[np.isfinite(rows).all(axis=1)]
    fractional = rows[:, 4] != np.round(rows[:, 4])
    if fractional.any():
        raise ValueError(
            f"tracks: id {float(rows[fractional, 4][0])!r} in column 4: expected whole-number "
            "track ids"
        )
    return rows


def _check_count(value: Any, arg: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{arg} must be an integer >= {least}, got {value!r}")
    return int(value)


def _clip_segment(
    p: tuple[float, float], q: tuple[float, float], lo: float, hi_x: float, hi_y: float
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The part of segment p-q inside [lo, hi_x] x [lo, hi_y] (Liang-Barsky), None when there
    is none: Pillow need not walk a line to a point a million pixels away."""
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for step, room in ((-dx, p[0] - lo), (dx, hi_x - p[0]), (-dy, p[1] - lo), (dy, hi_y - p[1])):
        if step == 0:
            if room < 0:
                return None
            continue
        t = room / step
        if step < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return (p[0] + t0 * dx, p[1] + t0 * dy), (p[0] + t1 * dx, p[1] + t1 * dy)


class TrackDrawer:
    """Draws each frame's tracks with the trails of the frames before it.

    Args:
        trail: how many frames back an id's trail reaches (one segment a frame): the line
            joins the bottom centres of the id's boxes in this frame and the `trail` frames
            before it; 0 draws no trails. An id not seen for more than `trail` frames is
            forgotten, so the memory held stays bounded by the ids of those frames.

    Call `draw` once for every frame, in order, also for a frame without tracks (a (0, 5)
    array): the frames it is called for are the ones a trail counts. A trail is drawn for the
    ids in the frame, through the frames it was seen in (a frame it was missed in is bridged).

    Line width and text size follow the frame's size (3 px lines and 16 px text at 480 lines,
    6 px and 36 px at 1080), so that they stay readable on a full-resolution frame and after
    `write_gif` shrinks it; every line and tag has a 1 px black rim, which keeps light colours
    seen on light frames.

    >>> drawer = TrackDrawer(trail=2)
    >>> for x in (10.0, 20.0, 30.0, 40.0):
    ...     _ = drawer.draw(np.zeros((64, 96, 3), np.uint8), [[x, 10.0, x + 20.0, 40.0, 1.0]])
    >>> drawer.trail_points(1)  # frames 2 to 4: the last two before this one, and this one
    [(30.0, 40.0), (40.0, 40.0), (50.0, 40.0)]
    """

    def __init__(self, trail: int = 30) -> None:
        self.trail = _check_count(trail, "trail", 0)
        self.frame_count = 0
        # id -> (frame, x, y) of its last points, oldest first
        self._history: dict[int, deque[tuple[int, float, float]]] = {}

    @property
    def ids(self) -> list[int]:
        """The ids remembered for their trails, in ascending order."""
        return sorted(self._history)

    def trail_points(self, track_id: int) -> list[tuple[float, float]]:
        """The points of `track_id`'s trail, oldest first ([] for an id not remembered)."""
        return [(x, y) for _, x, y in self._history.get(track_id, ())]

    def draw(self, image: np.ndarray, tracks: Any) -> np.ndarray:
        """A copy of `image` with `tracks` drawn on it.

        Args:
            image: the frame, an (H, W, 3) uint8 RGB array; left unchanged.
            tracks: an (M, 5) array of [x1, y1, x2, y2, id] rows in pixels (x2, y2 the
                bottom-right corner, past the box's last pixel), (0, 5) for none; ids are
                whole numbers. Boxes reaching out of the frame are cut at its border, boxes
                wholly out of it are not drawn (but their trail points count), rows with a
                value that is not finite are passed over.

        Returns:
            A new (H, W, 3) uint8 array: trails first, then boxes, then the id tags on top.
        """
        frame = _check_image(image, "image")
        rows = _check_tracks(tracks)
        self.frame_count += 1
        self._remember(rows)
        height, width = frame.shape[:2]
        line = max(2, round(min(height, width) / 180))
        canvas = Image.fromarray(frame, "RGB")  # a copy: Pillow keeps RGB in 4 bytes a pixel
        pen = ImageDraw.Draw(canvas)
        ids = [int(i) for i in rows[:, 4]]
        trails = {i: self._trail_runs(i, line, width, height) for i in dict.fromkeys(ids)}
        boxes = [_pixel_box(row, width, height, line) for row in rows]
        shown = [(box, i) for box, i in zip(boxes, ids) if box is not None]
        # A dark rim under every line keeps light colours seen on light frames (a yellow box
        # on a white wall); drawn in a pass of its own, so that no rim cuts another's colour.
        for runs in trails.values():
            for run in runs:
                pen.line(run, fill=_RIM, width=line + 2, joint="curve")
        for (x1, y1, x2, y2), _ in shown:
            pen.rectangle((x1 - 1, y1 - 1, x2 + 1, y2 + 1), outline=_RIM, width=line + 2)
        for track_id, runs in trails.items():
            for run in runs:  # round joints, so that a turning trail shows no notches
                pen.line(run, fill=id_colour(track_id), width=line, joint="curve")
        for box, track_id in shown:
            pen.rectangle(box, outline=id_colour(track_id), width=line)
        font = _font(max(12, round(height / 30)))
        for box, track_id in shown:  # last: a tag is never hidden by another box's line
            _draw_tag(pen, font, str(track_id), id_colour(track_id), box, width, height)
        return np.array(canvas)

    def _remember(self, rows: np.ndarray) -> None:
        """Adds this frame's bottom centres and forgets what lies more than `trail` frames
        back, dropping the ids left without points."""
        now = self.frame_count
        for x1, _, x2, y2, track_id in rows:
            points = self._history.setdefault(int(track_id), deque())
            points.append((now, float((x1 + x2) / 2.0), float(y2)))
        oldest = now - self.trail
        for track_id in list(self._history):
            points = self._history[track_id]
            while points and points[0][0] < oldest:
                points.popleft()
            if not points:
                del self._history[track_id]

    def _trail_runs(
        self, track_id: int, line: int, width: int, height: int
    ) -> list[list[tuple[float, float]]]:
        """The id's trail as the polylines of its parts in (or just outside) the frame."""
        points = self.trail_points(track_id)
        margin = float(line)  # a segment ending just outside the frame still shows its end
        runs: list[list[tuple[float, float]]] = []
        for p, q in zip(points, points[1:]):
            visible = _clip_segment(p, q, -margin, width - 1 + margin, height - 1 + margin)
            if visible is None:
                continue
            if runs and runs[-1][-1] == visible[0]:
                runs[-1].append(visible[1])
            else:
                runs.append(list(visible))
        return runs


def _pixel_box(
    row: np.ndarray, width: int, height: int, line: int
) -> tuple[int, int, int, int] | None:
    """The row's box as the first and last pixel columns and rows it covers, ends out of the
    frame moved to just past its border (where their outline is not seen); None when no part
    of the box is in the frame."""
    x1, x2 = sorted((row[0], row[2]))
    y1, y2 = sorted((row[1], row[3]))
    left, top = round(x1), round(y1)
    right, bottom = max(left, round(x2) - 1), max(top, round(y2) - 1)
    if right < 0 or bottom < 0 or left >= width or top >= height:
        return None
    out = line + 1  # an outline is drawn inwards: this far out it is wholly outside
    return (
        max(left, -out),
        max(top, -out),
        min(right, width - 1 + out),
        min(bottom, height - 1 + out),
    )


def _draw_tag(
    pen: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    text: str,
    colour: tuple[int, int, int],
    box: tuple[int, int, int, int],
    width: int,
    height: int,
) -> None:
    """The id in a filled tag at the box's top-left corner: above the box where there is
    room, else inside it, and moved into the frame where the box reaches out of it."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    # every tag as tall as a digit, so that tags of ids like 11 and 7 line up
    digit_top, digit_bottom = pen.textbbox((0, 0), "0123456789", font=font)[1::2]
    pad = max(3, (digit_bottom - digit_top) // 4)  # the rim's pixel included
    tag_w = right - left + 2 * pad
    tag_h = digit_bottom - digit_top + 2 * pad
    x = min(max(box[0], 0), max(width - tag_w, 0))
    y = box[1] - tag_h if box[1] - tag_h >= 0 else max(box[1], 0)
    y = min(y, max(height - tag_h, 0))
    pen.rectangle([x, y, x + tag_w - 1, y + tag_h - 1], fill=colour, outline=_RIM, width=1)
    pen.text((x + pad - left, y + pad - digit_top), text, fill=_text_colour(colour), font=font)


# -- writing -------------------------------------------------------------------------------


def _shrunk_frames(frames: Iterable[np.ndarray], max_width: int) -> Iterator[Image.Image]:
    """Each frame as an RGB image at most `max_width` wide (its aspect ratio kept), checked to
    be (H, W, 3) uint8 and the shape of the first."""
    first_shape: tuple[int, ...] | None = None
    for index, frame in enumerate(frames):
        array = _check_image(frame, "frames", index)
        if first_shape is None:
            first_shape = array.shape
        elif array.shape != first_shape:
            raise ValueError(
                f"frames[{index}]: shape {array.shape}, expected that of frames[0], {first_shape}"
            )
        image = Image.fromarray(array, "RGB")
        height, width = array.shape[:2]
        if width > max_width:
            size = (max_width, max(1, round(height * max_width / width)))
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        yield image


def write_gif(
    frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 10, max_width: int = 640
) -> None:
    """Writes `frames` ((H, W, 3) uint8 RGB arrays of one size, any iterable, a generator
    included) to `path` as an animated GIF that loops, each frame shown 1/`fps` seconds (GIF
    counts in hundredths: 10 fps is 100 ms, 30 fps 30 ms; fps at most 50, since browsers
    show shorter frames at 100 ms) and shrunk to at most `max_width` pixels wide.

    Frames are read one at a time, but Pillow writes a GIF only once it has them all: it
    holds each shrunk frame with its colours reduced to a palette, one byte a pixel (230 KB a
    640x360 frame, 170 MB for a 750-frame sequence). A frame equal to the one before it
    lengthens that one instead of adding a frame. The file is written under a temporary name
    beside `path` and renamed in one step: on a failure no file is left, and an earlier
    `path` stays as it was.
    """
    from keras_zoo.files import atomic_file

    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float, np.integer, np.floating))
        or not 0 < fps <= 50
    ):
        raise ValueError(f"fps must be a number in (0, 50], got {fps!r}")
    max_width = _check_count(max_width, "max_width", 1)
    duration = 10 * max(1, round(100.0 / float(fps)))  # whole hundredths of a second
    shrunk = _shrunk_frames(frames, max_width)
    with atomic_file(path) as tmp:
        first = next(shrunk, None)
        if first is None:
            raise ValueError("frames: no frames: expected at least one (H, W, 3) uint8 array")
        # Pillow iterates append_images as it writes, so the rest are drawn from the generator
        first.save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=shrunk,
            duration=duration,
            loop=0,
            optimize=False,
        )


def write_video(
    frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 25, max_width: int = 0
) -> None:
    """Writes `frames` ((H, W, 3) uint8 RGB arrays of one size) to `path` as an MPEG-4 video
    (OpenCV's VideoWriter, FourCC mp4v) at `fps` frames a second, one frame at a time: memory
    stays that of one frame. `max_width` > 0 shrinks wider frames to it. Odd sizes are cut to
    even ones, which the codec needs. Written under a temporary name and renamed in one step,
    as `write_gif` does. Needs OpenCV (`pip install opencv-python-headless`): ImportError
    without it."""
    from keras_zoo.files import atomic_file

    try:
        import cv2
    except ImportError as err:
        raise ImportError(
            f"write_video needs OpenCV: pip install opencv-python-headless ({err})"
        ) from None
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float, np.integer, np.floating))
        or not (0 < fps < math.inf)
    ):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    max_width = _check_count(max_width, "max_width", 0)
    images = _shrunk_frames(frames, max_width or 2**31 - 1)
    with atomic_file(path) as tmp:
        writer = None
        try:
            for image in images:
                array = np.asarray(image)
                even = array[: array.shape[0] // 2 * 2, : array.shape[1] // 2 * 2]
                if even.size == 0:
                    raise ValueError(f"frames: {array.shape[:2]} is too small for a video")
                if writer is None:
                    size = (even.shape[1], even.shape[0])
                    # the container follows the name's suffix, which the temporary name keeps
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
                    if not writer.isOpened():
                        raise ValueError(f"{os.fspath(path)}: OpenCV cannot write this video")
                writer.write(np.ascontiguousarray(even[:, :, ::-1]))  # OpenCV wants BGR
            if writer is None:
                raise ValueError("frames: no frames: expected at least one (H, W, 3) uint8 array")
        finally:
            if writer is not None:
                writer.release()
