"""Tracking results scored against ground truth: the CLEAR MOT and identity measures (MOTA, MOTP,
IDF1, ID switches, false positives and misses) through py-motmetrics, and HOTA through
TrackEval where it is installed.

Boxes are matched as MOTChallenge matches them (py-motmetrics' `compare_to_groundtruth` with
"iou", distth=0.5): a pair counts when its intersection over union is at least 0.5. Ground
truth rows whose flag (7th column) is 0 are left out, as MOTChallenge's evaluation ignores them;
TrackEval's MOT16+ step that also drops the results matched to distractor classes is not taken,
so figures on MOT16/17/20 can differ a little from the benchmark's. MOTP is given as
MOTChallenge publishes it, the mean IoU of the matched pairs (py-motmetrics' `motp` is the mean
distance, 1 - IoU).

Both libraries are imported when a score is asked for, not with this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from keras_zoo.track.mot import MotTable

MOTMETRICS = "motmetrics==1.4.0"
TRACKEVAL = "trackeval==1.3.0"
IOU_THRESHOLD = 0.5
OVERALL = "OVERALL"


@dataclasses.dataclass(frozen=True)
class Scores:
    """One sequence's scores (or all sequences' together): mota, motp (mean IoU of matches),
    idf1 as fractions; counts of ID switches, false positives and misses (false negatives);
    hota, None where TrackEval is not installed."""

    mota: float
    motp: float
    idf1: float
    id_switches: int
    false_positives: int
    misses: int
    frames: int
    objects: int  # ground truth boxes
    hota: float | None = None


def motmetrics_module() -> Any:
    """py-motmetrics, imported, or ImportError in one line naming the pip command."""
    try:
        with _numpy_for_motmetrics():
            import motmetrics
    except ImportError:
        raise ImportError(
            f"scoring against ground truth needs py-motmetrics: pip install {MOTMETRICS}"
        ) from None
    return motmetrics


@contextlib.contextmanager
def _numpy_for_motmetrics() -> Iterator[None]:
    """NumPy's `asfarray` for the length of the block, where NumPy (2.0 on) lacks it:
    py-motmetrics 1.4.0's `distances.iou_matrix` calls it. Only while motmetrics runs, so that
    no other code sees a function NumPy removed."""
    if hasattr(np, "asfarray"):
        yield
        return

    def asfarray(a: Any, dtype: Any = np.float64) -> np.ndarray:
        # NumPy 1's asfarray: an array of `dtype`, float64 where `dtype` is not a float type
        dtype = np.dtype(dtype)
        return np.asarray(a, dtype=dtype if np.issubdtype(dtype, np.inexact) else np.float64)

    np.asfarray = asfarray  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del np.asfarray  # type: ignore[attr-defined]


def ground_truth(table: MotTable) -> MotTable:
    """The rows of a gt.txt that are scored: those whose flag is not 0."""
    return table.select(table.scores != 0)


def score_sequences(
    pairs: Sequence[tuple[str, MotTable, MotTable]], *, hota: bool = True
) -> dict[str, Scores]:
    """Each sequence's scores from (name, ground truth, results) triples, and all of them
    together under `OVERALL` (the summed events, as py-motmetrics' `generate_overall`). The
    ground truth is taken as given: `ground_truth` drops its ignored rows. `hota`: add HOTA
    where TrackEval is installed."""
    mm = motmetrics_module()
    names = [name for name, _, _ in pairs]
    if len(set(names)) != len(names) or OVERALL in names:
        raise ValueError(f"sequences: expected distinct names other than {OVERALL!r}: {names}")
    wanted = ["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses"]
    wanted += ["num_frames", "num_objects"]
    with _numpy_for_motmetrics(), warnings.catch_warnings():
        # pandas' notices about py-motmetrics' own calls, which the user can do nothing about
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        accumulators = [_accumulator(mm, gt, res) for _, gt, res in pairs]
        summary = mm.metrics.create().compute_many(
            accumulators, metrics=wanted, names=names, generate_overall=True
        )
    hotas = _hota_scores(pairs) if hota else {}
    out = {}
    for name in [*names, OVERALL]:
        row = summary.loc[name]
        out[name] = Scores(
            mota=float(row["mota"]),
            motp=1.0 - float(row["motp"]) if not math.isnan(row["motp"]) else math.nan,
            idf1=float(row["idf1"]),
            id_switches=int(row["num_switches"]),
            false_positives=int(row["num_false_positives"]),
            misses=int(row["num_misses"]),
            frames=int(row["num_frames"]),
            objects=int(row["num_objects"]),
            hota=hotas.get(name),
        )
    return out


def _accumulator(mm: Any, gt: MotTable, results: MotTable) -> Any:
    """py-motmetrics' events of one sequence: every frame that either side has, in order, as
    `compare_to_groundtruth` walks them."""
    acc = mm.MOTAccumulator()
    gt_rows, res_rows = _rows_by_frame(gt), _rows_by_frame(results)
    for frame in sorted(set(gt_rows) | set(res_rows)):
        g = gt_rows.get(frame, slice(0, 0))
        r = res_rows.get(frame, slice(0, 0))
        distances = mm.distances.iou_matrix(
            gt.boxes[g], results.boxes[r], max_iou=1.0 - IOU_THRESHOLD
        )
        acc.update(gt.ids[g], results.ids[r], distances, frameid=frame)
    return acc


def _rows_by_frame(table: MotTable) -> dict[int, slice]:
    """frame -> the slice of its rows (the rows are sorted by frame)."""
    values, starts = np.unique(table.frames, return_index=True)
    ends = [*starts[1:], len(table.frames)]
    return {int(f): slice(int(s), int(e)) for f, s, e in zip(values, starts, ends)}


# -- HOTA -----------------------------------------------------------------------------------


def trackeval_hota() -> Any:
    """TrackEval's HOTA class, or None where TrackEval is not installed."""
    try:
        # trackeval's package import prints a line about its optional datasets' modules
        with contextlib.redirect_stdout(io.StringIO()):
            from trackeval.metrics import HOTA
    except ImportError:
        return None
    return HOTA


def _hota_scores(pairs: Sequence[tuple[str, MotTable, MotTable]]) -> dict[str, float]:
    """name -> HOTA (mean over TrackEval's IoU thresholds 0.05..0.95), with OVERALL: empty
    where TrackEval is not installed."""
    hota_class = trackeval_hota()
    if hota_class is None:
        return {}
    metric = hota_class()
    per_sequence = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for name, gt, results in pairs:
            per_sequence[name] = metric.eval_sequence(_trackeval_data(gt, results))
        combined = metric.combine_sequences(per_sequence)
    out = {name: float(np.mean(res["HOTA"])) for name, res in per_sequence.items()}
    out[OVERALL] = float(np.mean(combined["HOTA"]))
    return out


def _trackeval_data(gt: MotTable, results: MotTable) -> dict[str, Any]:
    """One sequence as TrackEval's metrics take it: per frame, the ground truth and tracker
    ids renumbered 0..n-1 and their IoU matrix."""
    gt_ids = np.unique(gt.ids, return_inverse=True)[1].reshape(-1)
    res_ids = np.unique(results.ids, return_inverse=True)[1].reshape(-1)
    gt_rows, res_rows = _rows_by_frame(gt), _rows_by_frame(results)
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    last = max(gt.last_frame, results.last_frame)
    for frame in range(1, last + 1):
        g = gt_rows.get(frame, slice(0, 0))
        r = res_rows.get(frame, slice(0, 0))
        data["gt_ids"].append(gt_ids[g])
        data["tracker_ids"].append(res_ids[r])
        data["similarity_scores"].append(box_iou(gt.boxes[g], results.boxes[r]))
    data.update(
        num_timesteps=last,
        num_gt_ids=len(np.unique(gt.ids)),
        num_tracker_ids=len(np.unique(results.ids)),
        num_gt_dets=len(gt),
        num_tracker_dets=len(results),
    )
    return data


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The (N,M) intersection over union of boxes `a` (N,4) and `b` (M,4), each x, y, w, h."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    union = np.prod(a[:, 2:], axis=1)[:, None] + np.prod(b[:, 2:], axis=1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
