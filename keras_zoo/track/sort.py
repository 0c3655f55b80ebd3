"""SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016, arXiv 1602.00763), and
ByteTrack's two-round association (Zhang et al., ECCV 2022, arXiv 2110.06864) on the same filter.

`Sort.update` computes what the reference implementation (abewley/sort's `Sort.update`, with
filterpy's `KalmanFilter`) computes, frame by frame: the same constant-velocity Kalman filter on
(centre x, centre y, area, aspect ratio) with the same noise settings, the same association, the
same rule for which tracks a frame reports and in which order, the same deletion. The Kalman
steps of all tracks run as one batched computation that reproduces filterpy's arithmetic
(equal to the bit where tested; tests/test_track_sort.py allows 1e-6 px). Where this module
departs from the reference, on purpose:

- Track ids start at 1 for every `Sort` object. The reference counts ids in a class attribute
  shared by every tracker in the process, so a second sequence's ids continue the first's.
- Detection rows with a non-finite value or a non-positive width or height are left out (and
  counted in `Sort.skipped`); the reference feeds them to its filter, where a zero height makes
  an infinite aspect ratio.
- A track whose predicted box is infinite (not only NaN) is removed. The reference drops such a
  row from its association matrix but keeps the track, so its indices shift from then on.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["Sort", "iou_matrix"]

# The reference's filter settings (filterpy's identity defaults, then scaled): the measurement
# noise of area and aspect ratio x10, the initial covariance x10 with the unobserved velocities
# x1000 more, the process noise of the velocities x0.01 and of the area's velocity x0.01 again.
# The products are written as the reference computes them so that every bit agrees.
_R_DIAG = np.array([1.0, 1.0, 10.0, 10.0])
_P0_DIAG = np.array([10.0, 10.0, 10.0, 10.0, 1000.0 * 10.0, 1000.0 * 10.0, 1000.0 * 10.0])
_Q_DIAG = np.array([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 1.0 * 0.01 * 0.01])
_Q = np.diag(_Q_DIAG)
_R = np.diag(_R_DIAG)
_EYE7 = np.eye(7)

# ByteTrack's thresholds (FoundationVision/ByteTrack, yolox/tracker/byte_tracker.py): boxes
# scoring above 0.1 take part, new tracks start from boxes scoring at least 0.6
# (track_thresh 0.5 + 0.1), and a low-score box needs an IoU above 0.5 with its track.
BYTE_LOW_THRESHOLD = 0.1
BYTE_HIGH_THRESHOLD = 0.6
BYTE_LOW_IOU_THRESHOLD = 0.5


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """The intersection over union of every box in `boxes_a` (N, 4) with every box in `boxes_b`
    (M, 4), both [x1, y1, x2, y2] (further columns are ignored): an (N, M) array, NaN for two
    boxes without area."""
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    for arg, boxes in (("boxes_a", a), ("boxes_b", b)):
        if boxes.ndim != 2 or boxes.shape[1] < 4:
            raise ValueError(f"{arg}: expected an (N, 4) array of boxes, got shape {boxes.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _iou(a, b)


def _iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """iou_matrix without checks, in the reference's order of operations, so that association
    decisions agree with it to the bit."""
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    w = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    h = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def _boxes_to_z(boxes: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2] rows -> the measurement [centre x, centre y, area, width / height]."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    z = np.empty((len(boxes), 4))
    z[:, 0] = boxes[:, 0] + w / 2.0
    z[:, 1] = boxes[:, 1] + h / 2.0
    z[:, 2] = w * h
    z[:, 3] = w / h
    return z


def _state_to_boxes(x: np.ndarray) -> np.ndarray:
    """Kalman states (n, 7) -> [x1, y1, x2, y2] rows; NaN where the area times the aspect
    ratio is negative (the reference then removes the track)."""
    w = np.sqrt(x[:, 2] * x[:, 3])
    h = x[:, 2] / w
    boxes = np.empty((len(x), 4))
    boxes[:, 0] = x[:, 0] - w / 2.0
    boxes[:, 1] = x[:, 1] - h / 2.0
    boxes[:, 2] = x[:, 0] + w / 2.0
    boxes[:, 3] = x[:, 1] + h / 2.0
    return boxes


def _associate(
    det_boxes: np.ndarray, trk_boxes: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (k, 2) of [detection, track] indices and the unmatched detections, in the order
    the reference creates new tracks from them (which fixes the ids they get).

    Where every detection and every track has at most one partner above `threshold`, those
    pairs are taken as they are; otherwise one assignment maximises the summed IoU. Either
    way, pairs under the threshold are then undone."""
    n_det = len(det_boxes)
    if len(trk_boxes) == 0 or n_det == 0:
        return np.empty((0, 2), dtype=np.intp), np.arange(n_det)
    iou = _iou(det_boxes, trk_boxes)
    above = iou > threshold
    if above.sum(axis=1).max() == 1 and above.sum(axis=0).max() == 1:
        pairs = np.argwhere(above)  # row-major, as the reference's np.where
    else:
        # imported on first use: scipy.optimize takes a third of a second to load, which
        # importing the package (or a command's --help) need not pay
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-iou)
        pairs = np.stack([rows, cols], axis=1)
    # weak by `<` (not kept by `>=`): a pair whose IoU is NaN stays, as in the reference
    weak = iou[pairs[:, 0], pairs[:, 1]] < threshold
    unpaired = np.ones(n_det, dtype=bool)
    unpaired[pairs[:, 0]] = False
    # the reference lists the never-paired detections first, then those of undone pairs
    unmatched = np.concatenate([np.flatnonzero(unpaired), pairs[weak, 0]])
    return pairs[~weak], unmatched


def _check_fraction(value: Any, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"{arg} must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{arg} must be between 0 and 1, got {value!r}")
    return float(value)


def _check_count(value: Any, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{arg} must be an integer >= 0, got {value!r}")
    return int(value)


class Sort:
    """A multi-object tracker over per-frame detections.

    Args:
        max_age: frames a track survives without a matched detection before it is removed.
        min_hits: consecutive matched frames before a track is reported (every track is
            reported during the first `min_hits` frames of the sequence).
        iou_threshold: the least IoU between a detection and a track's predicted box for
            them to be matched.
        tracker: "sort" matches every detection in one round. "byte" is ByteTrack's
            association: detections scoring at least `high_threshold` are matched first;
            the tracks left over are then matched to the detections scoring in
            [`low_threshold`, `high_threshold`) with `low_iou_threshold`; new tracks start
            only from unmatched high-score detections, and lower scores are dropped. With
            `low_threshold == high_threshold` it is SORT on the detections scoring at least
            that much.
        low_threshold, high_threshold: "byte" only; default 0.1 and 0.6, ByteTrack's values
            (its code associates from 0.5 but starts tracks only from 0.6; here one threshold
            does both). Unlike ByteTrack's code, tracks are matched by IoU alone (no weighting
            by score) and every track still alive takes part in the second round, as in the
            paper's algorithm.
        low_iou_threshold: "byte" only; the least IoU for a low-score match (ByteTrack: 0.5).

    Attributes:
        frame_count: frames seen so far.
        skipped: detection rows left out so far (a non-finite value, or a non-positive width
            or height).

    >>> tracker = Sort(min_hits=1)
    >>> tracker.update(np.array([[10.0, 10.0, 50.0, 90.0, 0.9]]))
    array([[10., 10., 50., 90.,  1.]])
    """

    def __init__(
        self,
        max_age: int = 1,
        min_hits: int = 3,
        iou_threshold: float = 0.3,
        *,
        tracker: Literal["sort", "byte"] = "sort",
        low_threshold: float | None = None,
        high_threshold: float | None = None,
        low_iou_threshold: float | None = None,
    ) -> None:
        self.max_age = _check_count(max_age, "max_age")
        self.min_hits = _check_count(min_hits, "min_hits")
        self.iou_threshold = _check_fraction(iou_threshold, "iou_threshold")
        if tracker not in ("sort", "byte"):
            raise ValueError(f"tracker must be 'sort' or 'byte', got {tracker!r}")
        self.tracker = tracker
        if tracker == "sort":
            for arg, value in [
                ("low_threshold", low_threshold),
                ("high_threshold", high_threshold),
                ("low_iou_threshold", low_iou_threshold),
            ]:
                if value is not None:
                    raise ValueError(f"{arg} applies to tracker='byte' only, got {value!r}")
            self.low_threshold = self.high_threshold = self.low_iou_threshold = None
        else:
            low = BYTE_LOW_THRESHOLD if low_threshold is None else low_threshold
            high = BYTE_HIGH_THRESHOLD if high_threshold is None else high_threshold
            self.low_threshold = _check_fraction(low, "low_threshold")
            self.high_threshold = _check_fraction(high, "high_threshold")
            if self.low_threshold > self.high_threshold:
                raise ValueError(
                    f"low_threshold must be at most high_threshold ({self.high_threshold}), "
                    f"got {self.low_threshold}"
                )
            self.low_iou_threshold = _check_fraction(
                BYTE_LOW_IOU_THRESHOLD if low_iou_threshold is None else low_iou_threshold,
                "low_iou_threshold",
            )
        self.frame_count = 0
        self.skipped = 0
        self._next_id = 1
        # one row per live track, in the reference's list order (creation order)
        self._x = np.zeros((0, 7))
        self._p = np.zeros((0, 7, 7))
        self._ids = np.zeros(0, dtype=np.int64)
        self._since_update = np.zeros(0, dtype=np.int64)
        self._hit_streak = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        """The number of live tracks, reported or not."""
        return len(self._ids)

    def update(self, detections: Any) -> np.ndarray:
        """Advance one frame.

        Args:
            detections: an (N, 5) array of [x1, y1, x2, y2, score] rows; (0, 5) (or any empty
                array) for a frame without detections. Call once per frame, also for empty
                frames. The score matters only to tracker="byte".

        Returns:
            The tracks confirmed in this frame, an (M, 5) float array of [x1, y1, x2, y2,
            track id] rows: the filter's corrected boxes, newest track first.
        """
        dets = self._valid_rows(detections)
        # a state gone wrong (an overflowing area) gives NaN boxes, which are then dropped
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self._step(dets)

    def _step(self, dets: np.ndarray) -> np.ndarray:
        """One frame of valid detections: predict, associate, correct, start, report."""
        self.frame_count += 1
        predicted = self._predict()
        if self.tracker == "byte":
            assert self.high_threshold is not None and self.low_threshold is not None
            high = dets[:, 4] >= self.high_threshold
            first = dets[high]
            second = dets[~high & (dets[:, 4] >= self.low_threshold)]
        else:
            first, second = dets, dets[:0]
        pairs, new = _associate(first[:, :4], predicted, self.iou_threshold)
        matched_tracks, matched_boxes = pairs[:, 1], first[pairs[:, 0], :4]
        if len(second):
            free = np.ones(len(predicted), dtype=bool)
            free[matched_tracks] = False
            free_tracks = np.flatnonzero(free)
            assert self.low_iou_threshold is not None
            pairs2, _ = _associate(second[:, :4], predicted[free_tracks], self.low_iou_threshold)
            matched_tracks = np.concatenate([matched_tracks, free_tracks[pairs2[:, 1]]])
            matched_boxes = np.concatenate([matched_boxes, second[pairs2[:, 0], :4]])
        self._correct(matched_tracks, matched_boxes)
        self._start(first[new, :4])
        return self._report_and_prune()

    def _valid_rows(self, detections: Any) -> np.ndarray:
        """The detections as float64 (N, 5), less the rows the filter cannot take."""
        try:
            dets = np.asarray(detections, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"detections: expected an (N, 5) array of [x1, y1, x2, y2, score] rows: {err}"
            ) from None
        if dets.size == 0:
            return np.zeros((0, 5))
        if dets.ndim != 2 or dets.shape[1] != 5:
            raise ValueError(
                "detections: expected an (N, 5) array of [x1, y1, x2, y2, score] rows, "
                f"got shape {dets.shape}"
            )
        valid = (
            np.isfinite(dets).all(axis=1) & (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
        )
        self.skipped += int(len(dets) - np.count_nonzero(valid))
        return dets[valid]

    def _predict(self) -> np.ndarray:
        """filterpy's predict with the reference's F and Q on every track, the reference's
        bookkeeping, and removal of tracks whose predicted box is not finite. F adds each
        velocity to its position, so F P F' is written as those sums: the same additions in
        the same order as the matrix products, hence the same bits."""
        x, p = self._x, self._p
        # an area about to turn negative stops shrinking (the reference zeroes its velocity)
        shrinking = x[:, 6] + x[:, 2] <= 0
        x[shrinking, 6] *= 0.0
        x[:, :3] = x[:, :3] + x[:, 4:7]
        fp = p.copy()
        fp[:, :3, :] = p[:, :3, :] + p[:, 4:7, :]
        fpf = fp.copy()
        fpf[:, :, :3] = fp[:, :, :3] + fp[:, :, 4:7]
        self._p = fpf + _Q
        self._hit_streak[self._since_update > 0] = 0
        self._since_update += 1
        boxes = _state_to_boxes(x)
        finite = np.isfinite(boxes).all(axis=1)
        if not finite.all():
            self._keep(finite)
            boxes = boxes[finite]
        return boxes

    def _correct(self, tracks: np.ndarray, boxes: np.ndarray) -> None:
        """filterpy's update (the Joseph form of the covariance) of the given tracks with
        their matched boxes, batched; H picks the first four state entries, so H P H' and
        P H' are slices and K R a column scaling."""
        if len(tracks) == 0:
            return
        x, p = self._x[tracks], self._p[tracks]
        z = _boxes_to_z(boxes)
        gain = p[:, :, :4] @ np.linalg.inv(p[:, :4, :4] + _R)
        x = x + (gain @ (z - x[:, :4])[:, :, None])[:, :, 0]
        i_kh = np.repeat(_EYE7[None], len(tracks), axis=0)
        i_kh[:, :, :4] -= gain
        kr = gain * _R_DIAG
        p = (i_kh @ p) @ i_kh.transpose(0, 2, 1) + kr @ gain.transpose(0, 2, 1)
        self._x[tracks] = x
        self._p[tracks] = p
        self._since_update[tracks] = 0
        self._hit_streak[tracks] += 1

    def _start(self, boxes: np.ndarray) -> None:
        """New tracks at the given boxes, appended in order, with the next ids."""
        n = len(boxes)
        if n == 0:
            return
        x = np.zeros((n, 7))
        x[:, :4] = _boxes_to_z(boxes)
        self._x = np.concatenate([self._x, x])
        self._p = np.concatenate([self._p, np.repeat(np.diag(_P0_DIAG)[None], n, axis=0)])
        self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        self._since_update = np.concatenate([self._since_update, np.zeros(n, dtype=np.int64)])
        self._hit_streak = np.concatenate([self._hit_streak, np.zeros(n, dtype=np.int64)])

    def _report_and_prune(self) -> np.ndarray:
        """The reference's output (updated tracks on a long enough streak, or all updated
        tracks early in the sequence; newest first), then removal of tracks unmatched for
        more than max_age frames."""
        reported = (self._since_update < 1) & (
            (self._hit_streak >= self.min_hits) | (self.frame_count <= self.min_hits)
        )
        order = np.flatnonzero(reported)[::-1]
        out = np.concatenate(
            [_state_to_boxes(self._x[order]), self._ids[order, None].astype(np.float64)], axis=1
        )
        alive = self._since_update <= self.max_age
        if not alive.all():
            self._keep(alive)
        return out

    def _keep(self, mask: np.ndarray) -> None:
        self._x = self._x[mask]
        self._p = self._p[mask]
        self._ids = self._ids[mask]
        self._since_update = self._since_update[mask]
        self._hit_streak = self._hit_streak[mask]
