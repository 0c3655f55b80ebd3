"""SORT (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016, arXiv 1602.00763),
ByteTrack's two-round association (Zhang et al., ECCV 2022, arXiv 2110.06864) and DeepSORT's
appearance matching (Wojke et al., ICIP 2017, arXiv 1703.07402) on the same filter.

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

# Appearance: a track's embedding is a moving average of its matched detections' (StrongSORT's
# momentum, in place of DeepSORT's gallery of the last 100), and a detection may be matched on
# appearance only where its centre lies within this many times the predicted box's size
# (square root of its area) of the predicted centre, times the square root of the frames since
# the track's last match (the spread of a random walk: an object hidden for a while may have
# turned). DeepSORT gates by the Mahalanobis distance instead; SORT's filter, whose noise
# settings are in pixels whatever the box (1 px^2 on the centre, 10 px^4 on the area), is far
# too sure of itself for that: most true detections of a large box would fall outside.
APPEARANCE_MOMENTUM = 0.9
APPEARANCE_GATE = 1.0
# A match on appearance must also be clear: its distance at least this much below that of any
# other detection or track in the gate of either, as a ratio test keeps only distinct matches
# of image features. An embedding that does not tell these objects apart (a backbone that was
# not trained to, or look-alikes) then leaves their association to IoU, rather than pairing
# neighbours at random (scripts/bench_track_quality.py measures a random-weight backbone's).
APPEARANCE_MARGIN = 0.1


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
        max_cosine_distance: switches on appearance matching (DeepSORT): `update` then takes
            an embedding per detection, and detections are first matched to tracks by the
            cosine distance of their embedding to the track's (at most this much, DeepSORT's
            default 0.2), near the track's predicted box (`APPEARANCE_GATE`), where the match is
            clear of the other near ones (`APPEARANCE_MARGIN`); those left
            are then matched by IoU as above. With "byte" only the high-score detections are
            matched on appearance. Appearance lets a track be found again after an occlusion
            or a crossing, so it goes with a `max_age` longer than the default (DeepSORT: 30).

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
        max_cosine_distance: float | None = None,
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
        self.max_cosine_distance = (
            None
            if max_cosine_distance is None
            else _check_fraction(max_cosine_distance, "max_cosine_distance")
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
        self._features: np.ndarray | None = None  # (tracks, D) unit rows, with appearance

    def __len__(self) -> int:
        """The number of live tracks, reported or not."""
        return len(self._ids)

    def update(self, detections: Any, embeddings: Any = None) -> np.ndarray:
        """Advance one frame.

        Args:
            detections: an (N, 5) array of [x1, y1, x2, y2, score] rows; (0, 5) (or any empty
                array) for a frame without detections. Call once per frame, also for empty
                frames. The score matters only to tracker="byte".
            embeddings: with `max_cosine_distance` only, and then required: an (N, D) array,
                an appearance embedding per detection row (any scale; they are normalised).

        Returns:
            The tracks confirmed in this frame, an (M, 5) float array of [x1, y1, x2, y2,
            track id] rows: the filter's corrected boxes, newest track first.
        """
        dets, valid = self._valid_rows(detections)
        features = self._embeddings(embeddings, len(valid))
        if features is not None:
            features = features[valid]
        # a state gone wrong (an overflowing area) gives NaN boxes, which are then dropped
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self._step(dets, features)

    def _step(self, dets: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        """One frame of valid detections: predict, associate, correct, start, report."""
        self.frame_count += 1
        predicted = self._predict()
        if self.tracker == "byte":
            assert self.high_threshold is not None and self.low_threshold is not None
            high = dets[:, 4] >= self.high_threshold
            first_rows = np.flatnonzero(high)
            second = dets[~high & (dets[:, 4] >= self.low_threshold)]
        else:
            first_rows, second = np.arange(len(dets)), dets[:0]
        first = dets[first_rows]
        if features is None:
            pairs, new = _associate(first[:, :4], predicted, self.iou_threshold)
        else:
            features = features[first_rows]
            pairs, new = self._associate_appearance(first[:, :4], features, predicted)
        matched_tracks, matched_boxes = pairs[:, 1], first[pairs[:, 0], :4]
        if features is not None:
            self._blend_features(matched_tracks, features[pairs[:, 0]])
        if len(second):
            free = np.ones(len(predicted), dtype=bool)
            free[matched_tracks] = False
            free_tracks = np.flatnonzero(free)
            assert self.low_iou_threshold is not None
            pairs2, _ = _associate(second[:, :4], predicted[free_tracks], self.low_iou_threshold)
            matched_tracks = np.concatenate([matched_tracks, free_tracks[pairs2[:, 1]]])
            matched_boxes = np.concatenate([matched_boxes, second[pairs2[:, 0], :4]])
        self._correct(matched_tracks, matched_boxes)
        self._start(first[new, :4], None if features is None else features[new])
        return self._report_and_prune()

    def _associate_appearance(
        self, boxes: np.ndarray, features: np.ndarray, predicted: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """DeepSORT's two steps: pairs of detection and track whose embeddings are close and
        whose boxes are near, by one assignment on the cosine distance; then SORT's IoU
        association of the detections and tracks left. Returns _associate's pair."""
        n, m = len(boxes), len(predicted)
        if n == 0 or m == 0:
            return np.empty((0, 2), dtype=np.intp), np.arange(n)
        assert self._features is not None and self.max_cosine_distance is not None
        from scipy.optimize import linear_sum_assignment

        distance = 1.0 - features @ self._features.T
        centre = (boxes[:, None, :2] + boxes[:, None, 2:4]) / 2.0
        predicted_centre = (predicted[None, :, :2] + predicted[None, :, 2:4]) / 2.0
        size = np.sqrt((predicted[:, 2] - predicted[:, 0]) * (predicted[:, 3] - predicted[:, 1]))
        reach = APPEARANCE_GATE * size * np.sqrt(self._since_update)
        near = np.linalg.norm(centre - predicted_centre, axis=2) <= reach
        allowed = near & (distance <= self.max_cosine_distance) & _clear(near, distance)
        rows, cols = linear_sum_assignment(np.where(allowed, distance, 2.0 + m))
        kept = allowed[rows, cols]
        rows, cols = rows[kept], cols[kept]
        left = np.setdiff1d(np.arange(n), rows)
        free = np.setdiff1d(np.arange(m), cols)
        pairs, unmatched = _associate(boxes[left], predicted[free], self.iou_threshold)
        pairs = np.concatenate(
            [np.stack([rows, cols], axis=1), np.stack([left[pairs[:, 0]], free[pairs[:, 1]]], 1)]
        )
        return pairs, left[unmatched]

    def _blend_features(self, tracks: np.ndarray, features: np.ndarray) -> None:
        """The matched tracks' embeddings moved towards their detections' (a moving average)."""
        if len(tracks) == 0:
            return
        assert self._features is not None
        blended = APPEARANCE_MOMENTUM * self._features[tracks] + (1.0 - APPEARANCE_MOMENTUM) * (
            features
        )
        self._features[tracks] = _unit_rows(blended)

    def _embeddings(self, embeddings: Any, rows: int) -> np.ndarray | None:
        """The embeddings as float64 unit rows, checked against the detections' rows and the
        tracker's settings (and their dimension against the tracks')."""
        if self.max_cosine_distance is None:
            if embeddings is not None:
                raise ValueError("embeddings: given, but this tracker has no max_cosine_distance")
            return None
        if embeddings is None:
            raise ValueError(
                "embeddings: required when max_cosine_distance is set (one row per detection)"
            )
        try:
            e = np.asarray(embeddings, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"embeddings: expected an (N, D) array of numbers: {err}") from None
        if rows == 0 and e.size == 0:
            dim = 0 if self._features is None else self._features.shape[1]
            return np.zeros((0, dim))
        if e.ndim != 2 or len(e) != rows or e.shape[1] == 0:
            raise ValueError(
                f"embeddings: expected an ({rows}, D) array, a row per detection, got shape "
                f"{e.shape}"
            )
        if not np.isfinite(e).all():
            raise ValueError("embeddings: expected finite values, got NaN or infinity")
        if self._features is not None and len(self._ids) and e.shape[1] != self._features.shape[1]:
            raise ValueError(
                f"embeddings: expected {self._features.shape[1]} values a row, as before, "
                f"got {e.shape[1]}"
            )
        return _unit_rows(e)

    def _valid_rows(self, detections: Any) -> tuple[np.ndarray, np.ndarray]:
        """The detections as float64 (N, 5), less the rows the filter cannot take, and the
        mask of the rows kept."""
        try:
            dets = np.asarray(detections, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"detections: expected an (N, 5) array of [x1, y1, x2, y2, score] rows: {err}"
            ) from None
        if dets.size == 0:
            return np.zeros((0, 5)), np.zeros(0, dtype=bool)
        if dets.ndim != 2 or dets.shape[1] != 5:
            raise ValueError(
                "detections: expected an (N, 5) array of [x1, y1, x2, y2, score] rows, "
                f"got shape {dets.shape}"
            )
        valid = (
            np.isfinite(dets).all(axis=1) & (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
        )
        self.skipped += int(len(dets) - np.count_nonzero(valid))
        return dets[valid], valid

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

    def _start(self, boxes: np.ndarray, features: np.ndarray | None) -> None:
        """New tracks at the given boxes (with their embeddings), appended in order, with the
        next ids."""
        n = len(boxes)
        if n == 0:
            return
        if features is not None:
            if self._features is None or not len(self._ids):
                self._features = np.zeros((0, features.shape[1]))
            self._features = np.concatenate([self._features, features])
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
        if self._features is not None:
            self._features = self._features[mask]


def _clear(near: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Where a detection's distance to a track is at least APPEARANCE_MARGIN below its
    distance to every other track near it, and below every other near detection's distance
    to that track (the runner-up of its row and of its column among the gated pairs)."""
    gated = np.where(near, distance, np.inf)
    clear = np.ones(gated.shape, dtype=bool)
    for axis in (1, 0):
        ordered = np.sort(gated, axis=axis)
        best = np.take(ordered, [0], axis=axis)
        runner_up = np.take(ordered, [1], axis=axis) if gated.shape[axis] > 1 else np.inf
        # the nearest other: the runner-up for the best pair, the best for every other pair
        other = np.where(gated == best, runner_up, best)
        clear &= gated + APPEARANCE_MARGIN <= other
    return clear


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero: it is near nothing)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)
