"""How fast `Sort` tracks, beside abewley/sort's sort.py on the same detections, in one run.

`compare` times each tracker over a whole sequence, the contenders alternating round after
round (the order turned each round), and reports frames per second, median (min..max), and the
ratio of the medians. sort.py is the packaged `sort-track` (with filterpy), imported when
present; without it only keras_zoo's tracker is timed. `scripts/bench_track.py` prints it.

>>> frames = synthetic_sequence(0, frames=5, objects=3)
>>> len(frames), frames[0].shape[1]
(5, 5)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from keras_zoo.track.sort import Sort

REFERENCE = "sort.tracker"  # sort-track's module: abewley/sort's sort.py


def synthetic_sequence(seed: int, frames: int = 500, objects: int = 8) -> list[np.ndarray]:
    """Per frame an (N, 5) array [x1, y1, x2, y2, score] of boxes moving at constant speed
    with noise, each missed one time in ten, and about one false detection a frame."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(100, 900, (objects, 2))
    vel = rng.normal(0, 3, (objects, 2))
    size = rng.uniform(30, 90, (objects, 2))
    sequence = []
    for f in range(frames):
        seen = rng.random(objects) >= 0.1
        centre = pos[seen] + vel[seen] * f + rng.normal(0, 2, (seen.sum(), 2))
        boxes = np.hstack([centre - size[seen] / 2, centre + size[seen] / 2])
        clutter_centre = rng.uniform(0, 1000, (rng.poisson(1.0), 2))
        clutter = np.hstack([clutter_centre - 20, clutter_centre + 20])
        rows = np.vstack([boxes, clutter])
        sequence.append(np.hstack([rows, rng.uniform(0.3, 1, (len(rows), 1))]))
    return sequence


def _keras_zoo(sequence: Sequence[np.ndarray]) -> None:
    tracker = Sort()
    for dets in sequence:
        tracker.update(dets)


def _reference() -> Callable[[Sequence[np.ndarray]], None] | None:
    """sort.py over a sequence, or None where sort-track cannot be imported."""
    import importlib

    try:
        ref = importlib.import_module(REFERENCE)
    except ImportError:
        return None

    def run(sequence: Sequence[np.ndarray]) -> None:
        ref.KalmanBoxTracker.count = 0
        tracker = ref.SortTracker()
        for dets in sequence:  # this package takes a class column after the score
            tracker.update(np.hstack([dets, np.zeros((len(dets), 1))]), None)

    return run


def compare(sequence: Sequence[np.ndarray], rounds: int = 5) -> dict[str, tuple[float, ...]]:
    """{contender: frames per second of each round}, "keras_zoo" and, where sort-track is
    installed, "sort.py"; each round runs every contender once over the whole sequence."""
    contenders: dict[str, Callable[[Sequence[np.ndarray]], None]] = {"keras_zoo": _keras_zoo}
    reference = _reference()
    if reference is not None:
        contenders["sort.py"] = reference
    names = list(contenders)
    fps: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[name](sequence)
            fps[name].append(len(sequence) / (time.perf_counter() - start))
    return {name: tuple(values) for name, values in fps.items()}


def report(fps: dict[str, tuple[float, ...]], detections: float) -> list[str]:
    """The printed lines: each contender's frames/s median (min..max), and the ratio."""
    lines = [f"{len(next(iter(fps.values())))} rounds, {detections:.1f} detections a frame"]
    for name, values in fps.items():
        lines.append(
            f"{name:<10} {statistics.median(values):8.0f} frames/s "
            f"({min(values):.0f}..{max(values):.0f})"
        )
    if "sort.py" in fps:
        ratio = statistics.median(fps["keras_zoo"]) / statistics.median(fps["sort.py"])
        lines.append(f"keras_zoo / sort.py: {ratio:.2f}")
    else:
        lines.append("sort.py not timed: pip install --no-deps sort-track==0.0.8 filterpy")
    return lines
