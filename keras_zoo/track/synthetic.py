"""Synthetic tracking scenes with known ground truth, and the tracker comparison run on them.

`make_scene(seed)` walks pedestrian-like boxes across a 960x540 frame at constant velocity,
pairs of them aimed at each other so that paths cross on purpose; the nearer of two overlapping
objects hides the farther. From the part of each object left visible it derives what a person
detector would report: nothing for a mostly hidden object, a low score for a partly hidden one
(the boxes ByteTrack's second round recovers), a high score otherwise, with jitter, random misses
and false detections, and with each detection a unit "appearance" vector standing in for a
re-identification embedding. `Scene.render(frame)` draws the frame, so images exist too.

`evaluate(scenes, contenders)` runs each tracker on the same scenes and scores it with
`keras_zoo.track.metrics.score_sequences`; `report` prints mean +- std over the scenes.
`scripts/bench_track_quality.py` is the command.

Only NumPy is needed (Pillow to render, py-motmetrics to score); nothing imports TensorFlow.

>>> scene = make_scene(0, frames=50, objects=4)
>>> len(scene.detections) == len(scene.embeddings) == len(scene.sources)
True
>>> scene.render(1).shape
(540, 960, 3)
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from keras_zoo.track.mot import MotTable, write_sequence
from keras_zoo.track.sort import Sort

HEIGHTS = (60.0, 200.0)  # pixels, a pedestrian's box from far to near
HORIZON = 0.4  # of the image's height from the top
ASPECTS = (0.35, 0.45)  # width / height
SPEEDS = (0.01, 0.03)  # pixels a frame per pixel of height: walking pace, nearer is faster
# the score a tracker option splits at: ByteTrack's high threshold, SORT users' usual cut
HIGH_SCORE = 0.6


@dataclasses.dataclass(frozen=True)
class Rates:
    """What the simulated detector does; `make_scene(seed, **rates)` overrides any field.

    Detections: an object whose visible fraction (its box's area left visible, neither
    covered by a nearer object nor outside the image) is below `hidden` is not detected; one
    below `partial` is detected with a score drawn uniformly from `low_scores`, a more visible
    one from `high_scores`. Any object is also missed with probability `miss`. Each box
    corner moves by a normal draw of sd `jitter` times the box's width (x) or height (y).
    False detections: a Poisson number a frame of mean `false_positives`, pedestrian-sized
    boxes anywhere, scoring uniformly in (0.1, 0.5), or with probability `false_high` in
    (0.6, 0.8).
    Motion: every object moves at a constant velocity (speed proportional to its height,
    mostly horizontal), its centre shaken by a normal draw of sd `motion_noise` pixels per
    frame; a share `crossing` of the objects walk in pairs aimed at each other, so their
    boxes overlap at an agreed frame and place, and a share `turn_back` of those pairs turn
    back where they meet (the farther one hidden as both reverse: a track's constant-velocity
    prediction then runs on the wrong way).
    Appearance: each object has a random unit vector of `embedding_dim` dimensions; a
    detection's vector is it plus normal noise of total sd about `embedding_noise`,
    renormalised, mixed with the vector of the object hiding it in proportion
    `embedding_mix` times the covered fraction; a false detection's is random.
    """

    hidden: float = 0.3
    partial: float = 0.7
    low_scores: tuple[float, float] = (0.15, 0.55)
    high_scores: tuple[float, float] = (0.6, 1.0)
    miss: float = 0.05
    jitter: float = 0.03
    false_positives: float = 0.5
    false_high: float = 0.2
    motion_noise: float = 0.5
    crossing: float = 0.6
    turn_back: float = 0.0
    embedding_dim: int = 32
    embedding_noise: float = 0.3
    embedding_mix: float = 0.5

    def __post_init__(self) -> None:
        for name in ("hidden", "partial", "miss", "jitter", "false_high", "crossing", "turn_back"):
            _check(name, getattr(self, name), 0.0, 1.0)
        for name in ("false_positives", "motion_noise", "embedding_noise", "embedding_mix"):
            _check(name, getattr(self, name), 0.0, math.inf)
        for name in ("low_scores", "high_scores"):
            pair = getattr(self, name)
            if not (isinstance(pair, tuple) and len(pair) == 2 and 0 <= pair[0] <= pair[1] <= 1):
                raise ValueError(f"{name} must be a (low, high) pair within [0, 1], got {pair!r}")
        if not isinstance(self.embedding_dim, int) or self.embedding_dim < 2:
            raise ValueError(f"embedding_dim must be an integer >= 2, got {self.embedding_dim!r}")


def _check(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")


@dataclasses.dataclass(frozen=True)
class Objects:
    """The true motion and looks of n objects: centre (n, 2) at frame `anchor_frame` (n,),
    velocity (n, 2) in pixels a frame (in frame t, from 1, the centre is centre + velocity *
    (t - anchor_frame), before motion noise), size (n, 2) as width, height, depth (n,)
    (smaller is nearer), appearance (n, D) unit vectors, colours (n, 3, 3) uint8 RGB (body,
    stripes, legs), turns (n,) bool or None: an object that turns walks back the way it came
    from `anchor_frame` on (its centre is centre - velocity * |t - anchor_frame|)."""

    anchor_frame: np.ndarray
    centre: np.ndarray
    velocity: np.ndarray
    size: np.ndarray
    depth: np.ndarray
    appearance: np.ndarray
    colours: np.ndarray
    turns: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.depth)


def place_objects(
    centre: Any,
    velocity: Any,
    size: Any,
    depth: Any,
    *,
    anchor_frame: Any = 1.0,
    seed: int = 0,
    embedding_dim: int = 32,
) -> Objects:
    """Objects at `centre` (n, 2) in frame `anchor_frame`, moving at `velocity` (n, 2), of
    `size` (n, 2) width, height and `depth` (n,), with random appearance vectors and distinct
    colours drawn from `seed`: a scene laid out by hand for `simulate`."""
    centre = np.asarray(centre, dtype=np.float64).reshape(-1, 2)
    n = len(centre)
    rng = np.random.default_rng(seed)
    appearance = rng.normal(size=(n, embedding_dim))
    return Objects(
        anchor_frame=np.broadcast_to(np.asarray(anchor_frame, dtype=np.float64), (n,)).copy(),
        centre=centre,
        velocity=np.asarray(velocity, dtype=np.float64).reshape(n, 2),
        size=np.asarray(size, dtype=np.float64).reshape(n, 2),
        depth=np.asarray(depth, dtype=np.float64).reshape(n),
        appearance=appearance / np.linalg.norm(appearance, axis=1, keepdims=True),
        colours=_colours(n, float(rng.random())),
    )


def _colours(n: int, hue: float) -> np.ndarray:
    """Three colours per object (body, stripes, legs), hues spread by the golden ratio so
    that neighbours in the list differ most."""
    out = np.empty((n, 3, 3), dtype=np.uint8)
    for i in range(n):
        h = (hue + 0.618034 * i) % 1.0
        for k, (dh, s, v) in enumerate([(0.0, 0.85, 0.9), (0.5, 0.6, 0.95), (0.08, 0.7, 0.45)]):
            rgb = colorsys.hsv_to_rgb((h + dh) % 1.0, s, v)
            out[i, k] = np.round(np.array(rgb) * 255)
    return out


@dataclasses.dataclass(frozen=True)
class Scene:
    """A simulated sequence, frames 1..`frames` of an image of `size` (width, height).

    gt: every object's true box (clipped to the image) in the frames where some of it is
        visible, ids from 1 (object i is id i + 1), flag 1.
    detections: the simulated detector's boxes and scores, ids -1.
    embeddings: (len(detections), D) unit vectors, one per detection row.
    sources: (len(detections),) the object id behind each detection, 0 for a false one.
    truth: (frames, n, 4) every object's unclipped x1, y1, x2, y2 in every frame.
    visible: (frames, n) visible fraction; covered: (frames, n) fraction of the box covered
        by nearer objects.
    """

    seed: int
    frames: int
    size: tuple[int, int]
    rates: Rates
    objects: Objects
    truth: np.ndarray
    visible: np.ndarray
    covered: np.ndarray
    gt: MotTable
    detections: MotTable
    embeddings: np.ndarray
    sources: np.ndarray

    def render(self, frame: int) -> np.ndarray:
        """Frame `frame` (from 1) as an (H, W, 3) uint8 image: a textured background and
        every object as a striped figure in its colours, drawn far to near, so the nearer
        of two overlapping objects is the one seen."""
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise ValueError(f"frame must be an integer from 1 to {self.frames}, got {frame!r}")
        if not 1 <= frame <= self.frames:
            raise ValueError(f"frame must be from 1 to {self.frames}, got {frame}")
        from PIL import Image, ImageDraw

        background, grain = _backdrop(self.seed, self.size)
        image = Image.fromarray(background)
        draw = ImageDraw.Draw(image)
        boxes = self.truth[frame - 1]
        for i in np.argsort(-self.objects.depth, kind="stable"):
            _draw_figure(draw, boxes[i], self.objects.colours[i])
        return np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8)

    def write(self, folder: str | os.PathLike) -> None:
        """The scene as a MOTChallenge sequence: FOLDER/img1/000001.jpg ..., the detections
        as FOLDER/det/det.txt and the ground truth as FOLDER/gt/gt.txt, for `keras-zoo
        track`; written whole or not at all."""
        write_sequence(folder, self.detections, self.gt, self.render, self.frames)


@functools.lru_cache(maxsize=2)
def _backdrop(seed: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The scene's background and the fine texture laid over everything, the same in every
    frame: drawn from the fourth stream of the scene's seed, once per scene."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    background = _background(size, rng)
    grain = rng.integers(-6, 7, background.shape).astype(np.int16)
    background.flags.writeable = grain.flags.writeable = False  # shared by every frame
    return background, grain


def _background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A vertical gradient (light above, darker ground below a horizon) with soft blotches."""
    from PIL import Image

    width, height = size
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = np.array([150.0, 170.0, 190.0]) * (1 - y) + np.array([120.0, 125.0, 120.0]) * y
    ground = np.array([95.0, 90.0, 80.0]) + 40.0 * (y - HORIZON)
    base = np.where(y < HORIZON, sky, ground) * np.ones((1, width, 1))
    # mostly brightness, a little tint: paving and shadows rather than confetti
    coarse = rng.normal(0.0, 16.0, (9, 16, 1)) + rng.normal(0.0, 5.0, (9, 16, 3))
    blotches = Image.fromarray(np.clip(coarse + 128, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    image = base + (np.asarray(blotches, dtype=np.float64) - 128.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw_figure(draw: Any, box: np.ndarray, colours: np.ndarray) -> None:
    """A person-like figure filling `box` (x1, y1, x2, y2): head, a striped rounded torso in
    the body and stripe colours, two legs."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    body, stripe, legs = (tuple(int(c) for c in colour) for colour in colours)
    outline = tuple(int(c) // 3 for c in colours[2])
    skin = (224, 180, 150)
    draw.ellipse([x1 + 0.25 * w, y1, x2 - 0.25 * w, y1 + 0.2 * h], fill=skin, outline=outline)
    top, bottom = y1 + 0.18 * h, y1 + 0.62 * h
    draw.rounded_rectangle(
        [x1, top, x2, bottom], radius=max(1.0, 0.2 * w), fill=body, outline=outline
    )
    period = max(4.0, 0.09 * h)
    y = top + period / 2
    while y + period / 2 < bottom - 0.05 * h:
        draw.rectangle([x1 + 0.08 * w, y, x2 - 0.08 * w, y + period / 2], fill=stripe)
        y += period
    for left, right in ((0.1, 0.46), (0.54, 0.9)):
        draw.rectangle([x1 + left * w, bottom, x1 + right * w, y2], fill=legs, outline=outline)


# -- the scene ------------------------------------------------------------------------------


def make_scene(
    seed: int,
    frames: int = 300,
    objects: int = 10,
    size: tuple[int, int] = (960, 540),
    **rates: Any,
) -> Scene:
    """A scene of `objects` pedestrian-like boxes over `frames` frames; the same `seed` gives
    the same scene. `rates` override `Rates`' fields (see there for every rate); the objects'
    paths depend on `seed`, `frames`, `objects`, `size`, `crossing` and `turn_back` only, so
    scenes that differ in a detector rate show the same motion.

    By default: boxes 60-200 px tall (+-10%; 960x540), width 0.35-0.45 of the height, feet
    below the horizon at 40% of the height, the lower the nearer and taller; walking 1-3% of
    their height a frame (0.6-6 px); 60% of the objects in pairs aimed at each other. The
    detector misses an object less than 30% visible, scores one less than 70% visible
    0.15-0.55 and others 0.6-1.0, misses 5% at random, jitters corners by 3% of the size, and
    adds 0.5 false boxes a frame (80% of them scoring 0.1-0.5). Embeddings: 32-D, noise 0.3.
    On 300 frames and 10 objects that makes about 35 crossings, 15 occlusions (8 frames
    long on average), 13% of the true boxes undetected and 18% of the true detections
    scoring under 0.6."""
    rate = _rates(rates)
    for name, value in (("frames", frames), ("objects", objects)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    size = _size(size)
    seeds = np.random.SeedSequence(seed).spawn(4)
    placed = _random_objects(np.random.default_rng(seeds[0]), frames, objects, size, rate)
    return _simulate(placed, frames, size, rate, seed, seeds)


def simulate(
    objects: Objects,
    frames: int,
    size: tuple[int, int] = (960, 540),
    *,
    seed: int = 0,
    **rates: Any,
) -> Scene:
    """The scene of the given `objects` (e.g. from `place_objects`): their motion noise,
    visibility, detections and embeddings, drawn from `seed` with `rates` as in `make_scene`."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    rate = _rates(rates)
    if objects.appearance.shape[1] != rate.embedding_dim:
        rate = dataclasses.replace(rate, embedding_dim=objects.appearance.shape[1])
    return _simulate(
        objects, frames, _size(size), rate, seed, np.random.SeedSequence(seed).spawn(4)
    )


def _rates(rates: Mapping[str, Any]) -> Rates:
    fields = [f.name for f in dataclasses.fields(Rates)]
    unknown = sorted(set(rates) - set(fields))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a rate: expected one of {', '.join(fields)}")
    return Rates(**rates)


def _size(size: Any) -> tuple[int, int]:
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(v, (int, np.integer)) and v >= 32 for v in size)
    ):
        raise ValueError(f"size must be (width, height), integers >= 32, got {size!r}")
    return int(size[0]), int(size[1])


def _random_objects(
    rng: np.random.Generator, frames: int, n: int, size: tuple[int, int], rates: Rates
) -> Objects:
    """Objects crossing the image at random times, the first 2k in k head-on pairs.

    A loose perspective: an object's feet stand between the horizon and the image's bottom
    edge, and how far down (`near`, 0 at the horizon, 1 at the bottom) sets its height
    (HEIGHTS[1] at the bottom, give or take 10%), speed and depth (1 / near)."""
    width, height = size
    horizon = HORIZON * height
    scale = min(1.0, height / 540)
    near = rng.uniform(HEIGHTS[0] / HEIGHTS[1], 1.0, n)
    stature = rng.uniform(0.9, 1.1, n)
    aspect = rng.uniform(*ASPECTS, n)
    pace = rng.uniform(*SPEEDS, n)
    direction = rng.choice([-1.0, 1.0], n)
    drift = rng.uniform(-0.05, 0.05, n)
    anchor_frame = rng.uniform(1, frames, n)
    x = rng.uniform(0.1, 0.9, n) * width
    for a in range(0, 2 * min(n // 2, round(rates.crossing * n / 2)), 2):
        b = a + 1  # walks at a, meeting it at an agreed frame and place
        direction[b] = -direction[a]
        anchor_frame[b] = anchor_frame[a] = rng.uniform(0.15, 0.85) * frames
        x[b] = x[a] = rng.uniform(0.2, 0.8) * width
        near[b] = np.clip(near[a] + rng.uniform(-0.1, 0.1), HEIGHTS[0] / HEIGHTS[1], 1.0)
    heights = HEIGHTS[1] * scale * near * stature
    feet = horizon + near * (height - horizon)
    speed = heights * pace
    appearance = rng.normal(size=(n, rates.embedding_dim))
    colours = _colours(n, float(rng.random()))
    # drawn last, so that the paths of scenes without turns stay those of earlier versions
    turns = np.zeros(n, dtype=bool)
    pairs = 2 * min(n // 2, round(rates.crossing * n / 2))
    turns[:pairs] = np.repeat(rng.random(pairs // 2) < rates.turn_back, 2)
    return Objects(
        anchor_frame=anchor_frame,
        centre=np.stack([x, feet - heights / 2], axis=1),
        velocity=np.stack([direction * speed, drift * speed], axis=1),
        size=np.stack([heights * aspect, heights], axis=1),
        depth=1.0 / near,
        appearance=appearance / np.linalg.norm(appearance, axis=1, keepdims=True),
        colours=colours,
        turns=turns,
    )


def visible_fractions(boxes: Any, depths: Any, size: tuple[int, int]) -> np.ndarray:
    """Each box's visible fraction (n,): the share of its area (x1, y1, x2, y2 rows) inside
    the image of `size` (width, height) and covered by no box of smaller depth."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return _visibility(boxes, np.asarray(depths, dtype=np.float64), _size(size))[0]


def _visibility(
    boxes: np.ndarray, depths: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visible fraction, fraction covered by nearer boxes, index of the nearer box covering
    the most, -1 for none), each (n,)."""
    n = len(boxes)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = np.clip(boxes, 0, [size[0], size[1], size[0], size[1]])
    inside = np.maximum(0, clipped[:, 2] - clipped[:, 0]) * np.maximum(
        0, clipped[:, 3] - clipped[:, 1]
    )
    low = np.maximum(clipped[:, None, :2], clipped[None, :, :2])
    high = np.minimum(clipped[:, None, 2:], clipped[None, :, 2:])
    overlap = np.prod(np.clip(high - low, 0, None), axis=2)  # (n, n), [i, j]: of i with j
    nearer = depths[None, :] < depths[:, None]
    overlap = np.where(nearer, overlap, 0.0)
    covered = np.zeros(n)
    occluder = np.full(n, -1)
    for i in np.flatnonzero((overlap > 0).any(axis=1)):
        js = np.flatnonzero(overlap[i] > 0)
        occluder[i] = js[np.argmax(overlap[i, js])]
        if len(js) == 1:
            covered[i] = overlap[i, js[0]]
        else:
            parts = np.concatenate([low[i, js], high[i, js]], axis=1)
            covered[i] = _union_area(parts)
    with np.errstate(invalid="ignore", divide="ignore"):
        visible = np.where(area > 0, (inside - covered) / area, 0.0)
        share = np.where(area > 0, covered / area, 0.0)
    return np.clip(visible, 0.0, 1.0), share, occluder


def _union_area(rects: np.ndarray) -> float:
    """The area covered by the union of rectangles (k, 4), on the grid their edges make."""
    xs = np.unique(rects[:, [0, 2]])
    ys = np.unique(rects[:, [1, 3]])
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    in_x = (rects[:, 0, None] <= cx) & (cx < rects[:, 2, None])  # (k, nx)
    in_y = (rects[:, 1, None] <= cy) & (cy < rects[:, 3, None])  # (k, ny)
    cells = (in_x[:, :, None] & in_y[:, None, :]).any(axis=0)
    return float(np.sum(cells * np.diff(xs)[:, None] * np.diff(ys)[None, :]))


def _simulate(
    objects: Objects,
    frames: int,
    size: tuple[int, int],
    rates: Rates,
    seed: int,
    seeds: list[np.random.SeedSequence],
) -> Scene:
    """Motion, visibility, ground truth and detections, frame by frame."""
    n = len(objects)
    motion_rng = np.random.default_rng(seeds[1])
    det_rng, fp_rng = (np.random.default_rng(s) for s in seeds[2].spawn(2))
    t = np.arange(1, frames + 1, dtype=np.float64)[:, None, None]
    elapsed = t - objects.anchor_frame[:, None]
    if objects.turns is not None:
        elapsed = np.where(objects.turns[:, None], -np.abs(elapsed), elapsed)
    centres = objects.centre + objects.velocity * elapsed
    centres = centres + motion_rng.normal(0.0, rates.motion_noise, centres.shape)
    half = objects.size / 2
    truth = np.concatenate([centres - half, centres + half], axis=2)  # (frames, n, 4)
    visible = np.zeros((frames, n))
    covered = np.zeros((frames, n))
    gt_rows: list[np.ndarray] = []
    det_rows: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    limits = np.array([size[0], size[1], size[0], size[1]], dtype=np.float64)
    dim = objects.appearance.shape[1]
    for f in range(frames):
        boxes = truth[f]
        vis, share, occluder = _visibility(boxes, objects.depth, size)
        visible[f], covered[f] = vis, share
        clipped = np.clip(boxes, 0, limits)
        ids = np.arange(1, n + 1, dtype=np.float64)
        seen = vis > 0
        gt_rows.append(_rows(f + 1, ids[seen], clipped[seen], np.ones(seen.sum())))
        # every draw is made for every object, so one object's fate leaves the others' alone
        u_miss, u_score = det_rng.random(n), det_rng.random(n)
        jitter = det_rng.normal(size=(n, 4)) * rates.jitter * np.tile(objects.size, 2)
        noise = det_rng.normal(size=(n, dim)) * rates.embedding_noise / math.sqrt(dim)
        found = (vis >= rates.hidden) & (u_miss >= rates.miss)
        low = vis < rates.partial
        score = np.where(
            low,
            rates.low_scores[0] + u_score * (rates.low_scores[1] - rates.low_scores[0]),
            rates.high_scores[0] + u_score * (rates.high_scores[1] - rates.high_scores[0]),
        )
        box = np.clip(clipped + jitter, 0, limits)
        found &= (box[:, 2] - box[:, 0] > 2) & (box[:, 3] - box[:, 1] > 2)
        mix = np.where(occluder >= 0, rates.embedding_mix * share, 0.0)[:, None]
        vector = (1 - mix) * objects.appearance + mix * objects.appearance[occluder] + noise
        dets = _rows(f + 1, ids[found], box[found], score[found])
        vectors = vector[found]
        k = int(fp_rng.poisson(rates.false_positives))
        if k:
            dets, vectors = _add_false(fp_rng, k, f + 1, size, rates, dets, vectors)
        order = det_rng.permutation(len(dets))  # no tracker may learn from the row order
        det_rows.append(dets[order])
        embeddings.append(vectors[order])
    gt = np.concatenate(gt_rows)
    det = np.concatenate(det_rows)
    emb = np.concatenate(embeddings) if embeddings else np.zeros((0, dim))
    return Scene(
        seed=seed,
        frames=frames,
        size=size,
        rates=rates,
        objects=objects,
        truth=truth,
        visible=visible,
        covered=covered,
        gt=_table(f"synthetic-{seed}-gt", gt, frames, ids=True),
        detections=_table(f"synthetic-{seed}-det", det, frames, ids=False),
        embeddings=emb / np.linalg.norm(emb, axis=1, keepdims=True),
        sources=det[:, 1].astype(np.int64),
    )


def _rows(frame: int, ids: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """[frame, id, x1, y1, x2, y2, score] rows."""
    return np.column_stack([np.full(len(ids), frame), ids, boxes, scores]).reshape(-1, 7)


def _add_false(
    rng: np.random.Generator,
    k: int,
    frame: int,
    size: tuple[int, int],
    rates: Rates,
    dets: np.ndarray,
    vectors: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    h = rng.uniform(*HEIGHTS, k) * min(1.0, size[1] / 540)
    w = h * rng.uniform(*ASPECTS, k)
    x = rng.uniform(0, size[0] - w)
    y = rng.uniform(0, np.maximum(1.0, size[1] - h))
    high = rng.random(k) < rates.false_high
    score = np.where(high, rng.uniform(0.6, 0.8, k), rng.uniform(0.1, 0.5, k))
    boxes = np.stack([x, y, x + w, np.minimum(y + h, size[1])], axis=1)
    false = _rows(frame, np.zeros(k), boxes, score)
    return np.concatenate([dets, false]), np.concatenate(
        [vectors, rng.normal(size=(k, vectors.shape[1]))]
    )


def _table(source: str, rows: np.ndarray, frames: int, *, ids: bool) -> MotTable:
    return MotTable(
        source=source,
        frames=rows[:, 0].astype(np.int64),
        ids=rows[:, 1].astype(np.int64) if ids else np.full(len(rows), -1, dtype=np.int64),
        boxes=np.column_stack([rows[:, 2:4], rows[:, 4:6] - rows[:, 2:4]]),
        scores=rows[:, 6].copy(),
        extent=frames,
    )


# -- statistics -----------------------------------------------------------------------------


def scene_statistics(scene: Scene) -> dict[str, float]:
    """What a scene asks of a tracker: objects, crossings (episodes of two visible objects'
    boxes overlapping), occlusions (episodes of an object hidden below `Rates.hidden` by a
    nearer one) and their mean length in frames, ground truth boxes without a detection, the
    share of true detections scoring under HIGH_SCORE, false detections a frame."""
    inside = scene.visible > 0
    boxes = scene.truth
    low = np.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    high = np.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    touching = (high > low).all(axis=3) & inside[:, :, None] & inside[:, None, :]
    upper = np.triu(np.ones(touching.shape[1:], dtype=bool), 1)
    crossings = _episodes(touching[:, upper])
    hidden = inside & (scene.covered > 1 - scene.rates.hidden)
    occlusions = _episodes(hidden)
    true = scene.sources > 0
    detected = {
        (int(f), int(s)) for f, s in zip(scene.detections.frames[true], scene.sources[true])
    }
    found = sum((int(f), int(i)) in detected for f, i in zip(scene.gt.frames, scene.gt.ids))
    return {
        "objects": float(len(np.unique(scene.gt.ids))),
        "crossings": float(crossings),
        "occlusions": float(occlusions),
        "occluded frames": float(hidden.sum() / max(occlusions, 1)),
        "gt boxes": float(len(scene.gt)),
        "undetected": float(1 - found / max(len(scene.gt), 1)),
        "low-score share": float(np.mean(scene.detections.scores[true] < HIGH_SCORE)),
        "false a frame": float(np.count_nonzero(~true) / scene.frames),
    }


def _episodes(flags: np.ndarray) -> int:
    """Runs of True along axis 0, summed over the other axes."""
    flags = flags.reshape(len(flags), -1).astype(np.int8)
    starts = np.diff(flags, axis=0, prepend=np.zeros((1, flags.shape[1]), dtype=np.int8)) == 1
    return int(starts.sum())


# -- evaluation -----------------------------------------------------------------------------

# a tracker step: one frame's detections (N, 5) x1, y1, x2, y2, score and their embeddings
# (N, D) in, the frame's tracks (M, 5) x1, y1, x2, y2, id out
Step = Callable[[np.ndarray, np.ndarray], np.ndarray]
# a contender tracks a whole scene: its results as a MotTable
Contender = Callable[[Scene], MotTable]


def track(scene: Scene, step: Step, *, min_score: float = 0.0) -> MotTable:
    """The results of feeding `step` every frame of `scene`'s detections (empty frames too),
    those scoring under `min_score` left out, as a MotTable (frame, id, x, y, w, h, 1)."""
    det = scene.detections
    keep = det.scores >= min_score
    frames, scores, emb = det.frames[keep], det.scores[keep], scene.embeddings[keep]
    corners = np.column_stack([det.boxes[keep, :2], det.boxes[keep, :2] + det.boxes[keep, 2:]])
    rows = np.column_stack([corners, scores])
    starts = np.searchsorted(frames, np.arange(1, scene.frames + 2))
    out: list[np.ndarray] = []
    for f in range(1, scene.frames + 1):
        part = slice(starts[f - 1], starts[f])
        tracks = np.asarray(step(rows[part], emb[part]), dtype=np.float64).reshape(-1, 5)
        out.append(_rows(f, tracks[:, 4], tracks[:, :4], np.ones(len(tracks))))
    return _table(f"{det.source}-results", np.concatenate(out), scene.frames, ids=True)


def sort_contender(*, min_score: float = 0.0, **kwargs: Any) -> Contender:
    """A contender running a fresh `Sort(**kwargs)` over each scene, on the detections
    scoring at least `min_score`; with `max_cosine_distance` among `kwargs` the embeddings go
    to `update` too."""
    Sort(**kwargs)  # a bad argument fails here, not in the middle of an evaluation
    appearance = "max_cosine_distance" in kwargs

    def run(scene: Scene) -> MotTable:
        tracker: Any = Sort(**kwargs)
        if appearance:
            return track(scene, tracker.update, min_score=min_score)
        return track(scene, lambda dets, _: tracker.update(dets), min_score=min_score)

    return run


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A contender's scores (keras_zoo.track.metrics.Scores), one per scene, and the seconds
    its tracking of each scene took (scoring not included)."""

    name: str
    scores: tuple[Any, ...]
    seconds: tuple[float, ...]
    frames: int

    def values(self, field: str) -> np.ndarray:
        """One score field (mota, idf1, hota, id_switches, ...) over the scenes, as floats
        (NaN where a score is missing)."""
        return np.array([np.nan if (v := getattr(s, field)) is None else v for s in self.scores])


def evaluate(
    scenes: Sequence[Scene], contenders: Mapping[str, Contender], *, hota: bool = True
) -> list[Outcome]:
    """Every contender over every scene, each scene scored alone against its ground truth
    (`score_sequences`, with HOTA where `hota` and TrackEval is installed)."""
    from keras_zoo.track.metrics import score_sequences

    if not scenes or not contenders:
        raise ValueError("scenes, contenders: expected at least one of each")
    names = [f"seed{s.seed}" for s in scenes]
    if len(set(names)) != len(names):
        raise ValueError(f"scenes: expected distinct seeds, got {names}")
    outcomes = []
    for name, contender in contenders.items():
        results, seconds = [], []
        for scene in scenes:
            start = time.perf_counter()
            results.append(contender(scene))
            seconds.append(time.perf_counter() - start)
        scored = score_sequences(
            [(n, s.gt, r) for n, s, r in zip(names, scenes, results)], hota=hota
        )
        outcomes.append(
            Outcome(
                name=name,
                scores=tuple(scored[n] for n in names),
                seconds=tuple(seconds),
                frames=sum(s.frames for s in scenes),
            )
        )
    return outcomes


COLUMNS = [
    ("MOTA", "mota", 100.0, 1),
    ("MOTP", "motp", 100.0, 1),
    ("IDF1", "idf1", 100.0, 1),
    ("HOTA", "hota", 100.0, 1),
    ("IDsw", "id_switches", 1.0, 1),
    ("FP", "false_positives", 1.0, 0),
    ("FN", "misses", 1.0, 0),
]


def report(outcomes: Sequence[Outcome]) -> list[str]:
    """A table: per contender each measure's mean +- std over the scenes (percent for MOTA,
    MOTP (the mean IoU of matched boxes), IDF1, HOTA; counts per scene for the rest) and its
    frames per second."""
    width = max(len(o.name) for o in outcomes)
    cells = [f"{'contender':<{width}}"] + [f"{label:>13}" for label, *_ in COLUMNS]
    lines = ["  ".join([*cells, f"{'frames/s':>9}"])]
    for outcome in outcomes:
        row = [f"{outcome.name:<{width}}"]
        for _, field, scale, digits in COLUMNS:
            values = outcome.values(field) * scale
            if np.isnan(values).all():
                row.append(f"{'-':>13}")
                continue
            row.append(f"{np.mean(values):{6}.{digits}f} ± {np.std(values):<{4}.{digits}f}")
        row.append(f"{outcome.frames / sum(outcome.seconds):9.0f}")
        lines.append("  ".join(row))
    return lines
