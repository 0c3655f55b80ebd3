"""How fast `Sort` tracks, beside abewley/sort's sort.py and Roboflow's `trackers` on the same
detections, in one run.

`compare` times each tracker over a whole sequence, the contenders alternating round after
round (the order turned each round), and reports frames per second, median (min..max), and the
ratios of the medians. The contenders: keras_zoo's `Sort` and sort.py (the packaged
`sort-track`, with filterpy), whose tracks are the same; `trackers.SORTTracker` beside them;
and `Sort(tracker="byte")` beside `trackers.ByteTrackTracker`. The `trackers` ones are set as
keras_zoo's defaults where a setting corresponds (`TRACKERS_SORT`, `TRACKERS_BYTE`), so that
tracks start, match and end alike; they are other implementations, whose tracks differ (its
SORT reports a track again as soon as it is matched after a miss, where sort.py waits for
`min_hits` matches in a row). A package that is not installed is left out, and `report` prints
its pip line.

Each contender is given the detections in the form its users hold them, made before the clock
starts: (N, 5) arrays for keras_zoo; (N, 6) arrays with sort-track's class column; for
`trackers`, a `supervision.Detections` per frame, which is what supervision-based detectors
return. What a tracker does with them, converting included, is timed.
`scripts/bench_track.py` prints it.

>>> frames = synthetic_sequence(0, frames=5, objects=3)
>>> len(frames), frames[0].shape[1]
(5, 5)
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from keras_zoo.track.sort import Sort

REFERENCE = "sort.tracker"  # sort-track's module: abewley/sort's sort.py
KERAS_ZOO, KERAS_ZOO_BYTE = "keras_zoo", "keras_zoo byte"
SORT_PY = "sort.py"
TRACKERS_SORT_NAME, TRACKERS_BYTE_NAME = "trackers SORT", "trackers ByteTrack"
SORT_PY_INSTALL = "pip install --no-deps sort-track==0.0.8 filterpy"
TRACKERS_INSTALL = "pip install trackers==2.6.1"
# (numerator, denominator) of the ratios `report` prints
RATIOS = [
    (KERAS_ZOO, SORT_PY),
    (KERAS_ZOO, TRACKERS_SORT_NAME),
    (KERAS_ZOO_BYTE, TRACKERS_BYTE_NAME),
]
# trackers' settings as Sort's defaults: a track dropped after 1 frame unmatched (its buffer
# counts 30 fps frames, and the frame rate is 30), reported after 3 matched frames, matched
# from an IoU of 0.3; SORT starts a track from any detection, ByteTrack from a score of 0.6,
# which is also where its second, low-score round begins.
TRACKERS_SORT = {
    "lost_track_buffer": 1,
    "minimum_consecutive_frames": 3,
    "minimum_iou_threshold": 0.3,
    "track_activation_threshold": 0.0,
}
TRACKERS_BYTE = {
    "lost_track_buffer": 1,
    "minimum_consecutive_frames": 3,
    "minimum_iou_threshold": 0.3,
    "high_conf_det_threshold": 0.6,
    "track_activation_threshold": 0.6,
}

Run = Callable[[], None]  # one pass of a tracker over the whole sequence, its input made


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


def _keras_zoo(sequence: Sequence[np.ndarray], tracker: Literal["sort", "byte"] = "sort") -> Run:
    def run() -> None:
        tracks = Sort(tracker=tracker)
        for dets in sequence:
            tracks.update(dets)

    return run


def _sort_py(sequence: Sequence[np.ndarray]) -> Run | None:
    """sort.py over the sequence, or None where sort-track cannot be imported."""
    try:
        ref = importlib.import_module(REFERENCE)
    except ImportError:
        return None
    # sort-track takes a class column after the score, as YOLO-style detectors give it
    with_class = [np.hstack([dets, np.zeros((len(dets), 1))]) for dets in sequence]

    def run() -> None:
        ref.KalmanBoxTracker.count = 0
        tracker = ref.SortTracker()
        for dets in with_class:
            tracker.update(dets, None)

    return run


def _trackers(sequence: Sequence[np.ndarray]) -> dict[str, Run]:
    """trackers' SORT and ByteTrack over the sequence, or {} where trackers (or its
    supervision) cannot be imported."""
    try:
        supervision: Any = importlib.import_module("supervision")
        trackers: Any = importlib.import_module("trackers")
    except ImportError:
        return {}
    frames = [
        supervision.Detections(
            xyxy=dets[:, :4].copy(),
            confidence=dets[:, 4].copy(),
            class_id=np.zeros(len(dets), dtype=int),
        )
        for dets in sequence
    ]

    def runner(make: Callable[[], Any]) -> Run:
        def run() -> None:
            tracker = make()
            for detections in frames:
                tracker.update(detections)

        return run

    return {
        TRACKERS_SORT_NAME: runner(lambda: trackers.SORTTracker(**TRACKERS_SORT)),
        TRACKERS_BYTE_NAME: runner(lambda: trackers.ByteTrackTracker(**TRACKERS_BYTE)),
    }


def compare(sequence: Sequence[np.ndarray], rounds: int = 5) -> dict[str, tuple[float, ...]]:
    """{contender: frames per second of each round}: "keras_zoo", "sort.py" where sort-track
    is installed, "trackers SORT" where trackers is, "keras_zoo byte", "trackers ByteTrack";
    each round runs every contender once over the whole sequence."""
    contenders: dict[str, Run] = {KERAS_ZOO: _keras_zoo(sequence)}
    reference = _sort_py(sequence)
    if reference is not None:
        contenders[SORT_PY] = reference
    others = _trackers(sequence)
    if TRACKERS_SORT_NAME in others:
        contenders[TRACKERS_SORT_NAME] = others[TRACKERS_SORT_NAME]
    contenders[KERAS_ZOO_BYTE] = _keras_zoo(sequence, "byte")
    if TRACKERS_BYTE_NAME in others:
        contenders[TRACKERS_BYTE_NAME] = others[TRACKERS_BYTE_NAME]
    names = list(contenders)
    fps: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            fps[name].append(len(sequence) / (time.perf_counter() - start))
    return {name: tuple(values) for name, values in fps.items()}


def report(fps: dict[str, tuple[float, ...]], detections: float) -> list[str]:
    """The printed lines: each contender's frames/s median (min..max), the ratios of the
    medians, and the pip line of a package left out."""
    lines = [f"{len(next(iter(fps.values())))} rounds, {detections:.1f} detections a frame"]
    for name, values in fps.items():
        lines.append(
            f"{name:<18} {statistics.median(values):8.0f} frames/s "
            f"({min(values):.0f}..{max(values):.0f})"
        )
    for mine, theirs in RATIOS:
        if mine in fps and theirs in fps:
            ratio = statistics.median(fps[mine]) / statistics.median(fps[theirs])
            lines.append(f"{mine} / {theirs}: {ratio:.2f}")
    if SORT_PY not in fps:
        lines.append(f"sort.py not timed: {SORT_PY_INSTALL}")
    if TRACKERS_SORT_NAME not in fps:
        lines.append(f"trackers not timed: {TRACKERS_INSTALL}")
    return lines
