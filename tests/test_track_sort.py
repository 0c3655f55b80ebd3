"""keras_zoo.track.Sort against abewley's SORT as packaged on PyPI (sort-track 0.0.8, with
filterpy's KalmanFilter): every frame's reported boxes, their order and their ids, on synthetic
sequences (crossings, occlusions, missed and false detections, shrinking boxes) and on the real
MOT15 tracker outputs and ground truth that py-motmetrics ships; then ByteTrack's association,
bad input and empty frames. The planted-mistake tests show that the comparison fails when one
rule of the reference is changed."""

import importlib.util
import pathlib

import numpy as np
import pytest

import keras_zoo.track.sort as sort_module
from keras_zoo.track import Sort, iou_matrix
from tests.conftest import TEST_EXTRA, missing_requirement, require_module

# the package's boxes are bit-identical here; the margin allows another BLAS's rounding
BOX_TOLERANCE = 1e-6


def synthetic(seed: int, frames: int = 250, objects: int = 12) -> list[np.ndarray]:
    """Detections of constant-velocity boxes that start and end at random, cross, hide for a
    few frames, are missed one time in ten, grow or shrink (some fast enough that SORT's
    area guard acts), with false detections; rows shuffled, scores in [0.05, 1]."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, frames // 2, objects)
    life = rng.integers(20, frames, objects)
    pos = rng.uniform(100, 500, (objects, 2))
    vel = rng.normal(0, 3, (objects, 2))
    # two objects on one line, moving towards each other: a crossing in every sequence
    pos[:2], vel[:2], start[:2], life[:2] = [[150, 300], [450, 305]], [[4, 0], [-4, 0]], 5, 120
    size = rng.uniform(30, 90, (objects, 2))
    growth = rng.normal(0, 0.1, objects)
    growth[2] = -0.8  # shrinks by 0.8 px a frame, then vanishes: predicted areas go negative
    hidden_from = rng.integers(0, frames, objects)
    hidden_for = rng.integers(1, 6, objects)
    sequence = []
    for f in range(frames):
        rows = []
        for i in range(objects):
            age = f - start[i]
            wh = size[i] + growth[i] * age
            if not 0 <= age < life[i] or (wh < 4).any():
                continue
            if hidden_from[i] <= f < hidden_from[i] + hidden_for[i] or rng.random() < 0.1:
                continue
            centre = pos[i] + vel[i] * age + rng.normal(0, 2, 2)
            wh = wh * (1 + rng.normal(0, 0.05, 2))
            rows.append([*(centre - wh / 2), *(centre + wh / 2), rng.uniform(0.05, 1)])
        for _ in range(rng.poisson(1.0)):
            centre, wh = rng.uniform(0, 600, 2), rng.uniform(10, 60, 2)
            rows.append([*(centre - wh / 2), *(centre + wh / 2), rng.uniform(0.05, 0.7)])
        sequence.append(np.array(rows).reshape(-1, 5)[rng.permutation(len(rows))])
    return sequence


def mot15(sequence: str, name: str) -> list[np.ndarray]:
    """A MOTChallenge file from py-motmetrics' data folder as per-frame [x1, y1, x2, y2, 1]."""
    # found, not imported: only its data folder is needed
    spec = importlib.util.find_spec("motmetrics")
    if spec is None or not spec.submodule_search_locations:
        missing_requirement("no module motmetrics (its MOT15 files)", TEST_EXTRA)
    path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / sequence / name
    rows = np.loadtxt(path, delimiter=",")
    frames = []
    for frame in range(1, int(rows[:, 0].max()) + 1):
        r = rows[rows[:, 0] == frame]
        x, y, w, h = r[:, 2], r[:, 3], r[:, 4], r[:, 5]
        frames.append(np.column_stack([x, y, x + w, y + h, np.ones(len(r))]))
    return frames


@pytest.fixture(scope="module")
def ref():
    """abewley's sort.py as packaged by sort-track (it needs filterpy)."""
    return require_module("sort.tracker", TEST_EXTRA)


def run_reference(ref, sequence: list[np.ndarray], **kwargs) -> list[np.ndarray]:
    # its ids come from a class-wide counter: restart it so each sequence counts from 1
    ref.KalmanBoxTracker.count = 0
    tracker = ref.SortTracker(**kwargs)
    out = []
    for dets in sequence:
        with_class = np.hstack([dets, np.zeros((len(dets), 1))])  # this package wants a class
        out.append(tracker.update(with_class, None)[:, :5])
    return out


def run_ours(sequence: list[np.ndarray], **kwargs) -> list[np.ndarray]:
    tracker = Sort(**kwargs)
    return [tracker.update(dets) for dets in sequence]


def assert_same_tracks(expected: list[np.ndarray], got: list[np.ndarray]) -> float:
    """Same rows per frame in the same order, boxes within BOX_TOLERANCE, and ids that map one
    to one over the whole sequence; returns the largest box difference."""
    ids: dict[float, float] = {}
    largest = 0.0
    for frame, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert a.shape == b.shape, f"frame {frame}: {a.shape} tracks expected, got {b.shape}"
        if len(a):
            diff = np.abs(a[:, :4] - b[:, :4])
            largest = max(largest, float(np.nanmax(diff)) if not np.isnan(diff).all() else 0.0)
            np.testing.assert_allclose(b[:, :4], a[:, :4], atol=BOX_TOLERANCE, rtol=0)
        for id_a, id_b in zip(a[:, 4], b[:, 4]):
            assert ids.setdefault(id_a, id_b) == id_b, f"frame {frame}: id {id_a} split"
    assert len(set(ids.values())) == len(ids), "two reference ids map to one"
    return largest


SETTINGS = [
    {},
    {"max_age": 3, "min_hits": 2, "iou_threshold": 0.2},
    {"max_age": 0, "min_hits": 0, "iou_threshold": 0.5},
]


@pytest.mark.parametrize("seed", range(4))
def test_synthetic_sequences_match_the_reference(ref, seed):
    sequence = synthetic(seed)
    for kwargs in SETTINGS:
        largest = assert_same_tracks(
            run_reference(ref, sequence, **kwargs), run_ours(sequence, **kwargs)
        )
        assert largest <= BOX_TOLERANCE


@pytest.mark.parametrize("sequence", ["TUD-Campus", "TUD-Stadtmitte"])
@pytest.mark.parametrize("name", ["test.txt", "gt.txt"])
def test_mot15_boxes_match_the_reference(ref, sequence, name):
    frames = mot15(sequence, name)
    assert len(frames) in (71, 179)
    for kwargs in SETTINGS[:2]:
        assert_same_tracks(run_reference(ref, frames, **kwargs), run_ours(frames, **kwargs))


def test_the_sequences_reach_every_rule():
    """The synthetic sequences take both association paths and the area guard (which
    _shrinking needs to change the output), so the comparisons above check them."""
    paths = {"unambiguous": 0, "assignment": 0}
    guard = 0
    original_lsa = None

    def counting_associate(det_boxes, trk_boxes, threshold):
        if len(det_boxes) and len(trk_boxes):
            above = sort_module._iou(det_boxes, trk_boxes) > threshold
            one = above.sum(1).max() == 1 and above.sum(0).max() == 1
            paths["unambiguous" if one else "assignment"] += 1
        return original_lsa(det_boxes, trk_boxes, threshold)

    original_lsa, sort_module._associate = sort_module._associate, counting_associate
    try:
        tracker = Sort(max_age=3)
        for dets in synthetic(0):
            x = tracker._x
            guard += int(np.count_nonzero(x[:, 6] + x[:, 2] <= 0))
            tracker.update(dets)
    finally:
        sort_module._associate = original_lsa
    assert paths["unambiguous"] > 10 and paths["assignment"] > 10, paths
    assert guard > 0


def _associate_without_shortcut(det_boxes, trk_boxes, threshold):
    from scipy.optimize import linear_sum_assignment

    n = len(det_boxes)
    if n == 0 or len(trk_boxes) == 0:
        return np.empty((0, 2), dtype=np.intp), np.arange(n)
    iou = sort_module._iou(det_boxes, trk_boxes)
    pairs = np.stack(linear_sum_assignment(-iou), axis=1)
    weak = iou[pairs[:, 0], pairs[:, 1]] < threshold
    unpaired = np.ones(n, dtype=bool)
    unpaired[pairs[:, 0]] = False
    return pairs[~weak], np.concatenate([np.flatnonzero(unpaired), pairs[weak, 0]])


def _predict_without_guard(self):
    from sort.tracker import convert_x_to_bbox

    self.kf.predict()  # the reference's predict, less its zeroing of a shrinking area's speed
    self.age += 1
    if self.time_since_update > 0:
        self.hit_streak = 0
    self.time_since_update += 1
    self.history.append(convert_x_to_bbox(self.kf.x))
    return self.history[-1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference without its guard
def test_planted_mistakes_are_caught(ref, monkeypatch):
    sequences = [synthetic(seed) for seed in range(2)]
    expected = [run_reference(ref, s) for s in sequences]

    def caught(run) -> bool:
        for sequence, reference in zip(sequences, expected):
            try:
                assert_same_tracks(reference, run(sequence))
            except AssertionError:
                return True
        return False

    assert not caught(run_ours)
    assert caught(lambda s: run_ours(s, min_hits=4))
    assert caught(lambda s: run_ours(s, max_age=2))
    with monkeypatch.context() as patch:
        patch.setattr(sort_module, "_associate", _associate_without_shortcut)
        assert caught(run_ours)
    # the area guard, planted on the reference's side
    sequences = [_shrinking()]
    expected = [run_reference(ref, s, max_age=3) for s in sequences]
    assert not caught(lambda s: run_ours(s, max_age=3))
    with monkeypatch.context() as patch:
        patch.setattr(ref.KalmanBoxTracker, "predict", _predict_without_guard)
        expected = [run_reference(ref, s, max_age=3) for s in sequences]
    assert caught(lambda s: run_ours(s, max_age=3))


def _shrinking() -> list[np.ndarray]:
    """A square shrinking by 12 px a frame, hidden for two frames, back at 20 px: its area
    would be predicted negative, which SORT prevents by stopping the shrinking."""
    sequence = []
    for f in range(16):
        side = 100.0 - 12 * f if f < 7 else 20.0
        box = [300 - side / 2, 300 - side / 2, 300 + side / 2, 300 + side / 2, 0.9]
        sequence.append(np.array([] if f in (7, 8) else [box]).reshape(-1, 5))
    return sequence


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's overflow
def test_overflowing_boxes_are_dropped_like_the_reference(ref):
    """A box whose area overflows makes NaN states: reported once as NaN (as the reference
    does), then removed when its prediction is NaN."""
    huge = np.array([[0.0, 0.0, 1e160, 1e160, 1.0], [10.0, 10.0, 50.0, 90.0, 1.0]])
    sequence = [huge, huge[1:], huge[1:], huge[1:]]
    expected, got = run_reference(ref, sequence), run_ours(sequence)
    assert np.isnan(got[0][:, :4]).any()
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(b, a)


def test_ids_start_at_one_for_every_tracker():
    sequence = synthetic(1, frames=60)
    first, second = run_ours(sequence), run_ours(sequence)
    assert min(np.concatenate(first)[:, 4]) == 1
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_byte_with_one_threshold_is_sort(threshold):
    for seed in range(2):
        sequence = synthetic(seed)
        kept = [d[d[:, 4] >= threshold] for d in sequence]
        byte = run_ours(sequence, tracker="byte", low_threshold=threshold, high_threshold=threshold)
        for a, b in zip(run_ours(kept), byte, strict=True):
            np.testing.assert_array_equal(b, a)


def _walker(frames: int, low_frames: range) -> list[np.ndarray]:
    """One person walking right, whose detector score drops to 0.3 while half hidden, and a
    persistent low-score false detection far away."""
    sequence = []
    for f in range(frames):
        score = 0.3 if f in low_frames else 0.9
        person = [100.0 + 5 * f, 100.0, 160.0 + 5 * f, 260.0, score]
        clutter = [500.0, 400.0, 530.0, 440.0, 0.2]
        sequence.append(np.array([person, clutter]))
    return sequence


def test_byte_keeps_a_track_through_low_scores():
    sequence = _walker(14, range(6, 9))
    byte = run_ours(sequence, tracker="byte")
    # SORT fed the confident detections, the usual practice: the person's track breaks
    confident = run_ours([d[d[:, 4] >= 0.6] for d in sequence])
    byte_ids = [set(out[:, 4]) for out in byte]
    assert all(ids == {1.0} for ids in byte_ids), byte_ids  # no track for the clutter either
    assert all(len(out) == 1 for out in byte[6:9])  # reported while its score is low
    confident_ids = set(np.concatenate(confident)[:, 4])
    assert len(confident_ids) == 2 and all(len(out) == 0 for out in confident[6:9])
    # SORT fed everything keeps the person, but also tracks the clutter
    everything = run_ours(sequence)
    assert len(set(np.concatenate(everything)[:, 4])) == 2 and len(everything[-1]) == 2


def test_bad_rows_are_skipped_and_counted():
    sequence = synthetic(2, frames=40)
    bad = np.array(
        [
            [np.nan, 0.0, 10.0, 10.0, 0.9],
            [0.0, 0.0, np.inf, 10.0, 0.9],
            [10.0, 0.0, 10.0, 20.0, 0.9],  # no width
            [0.0, 20.0, 10.0, 5.0, 0.9],  # upside down
            [0.0, 0.0, 10.0, 10.0, np.nan],
        ]
    )
    tracker = Sort()
    for clean, out in zip(sequence, run_ours(sequence), strict=True):
        np.testing.assert_array_equal(tracker.update(np.concatenate([bad, clean])), out)
    assert tracker.skipped == 5 * len(sequence)


def test_empty_frames():
    tracker = Sort(max_age=1, min_hits=0)
    for empty in (np.empty((0, 5)), [], np.zeros((0,))):
        assert tracker.update(empty).shape == (0, 5)
    box = np.array([[10.0, 10.0, 50.0, 90.0, 0.9]])
    assert tracker.update(box)[:, 4].tolist() == [1.0]
    assert tracker.update(np.empty((0, 5))).shape == (0, 5)  # missed once: kept, not reported
    assert len(tracker) == 1
    assert tracker.update(box)[:, 4].tolist() == [1.0]
    tracker.update([]), tracker.update([])
    assert len(tracker) == 0 and tracker.frame_count == 8


@pytest.mark.parametrize(
    "detections", [np.zeros((3, 4)), np.zeros((2, 5, 1)), np.zeros(5), [[1, 2, 3], [1, 2]], "a"]
)
def test_wrong_detections_name_the_argument(detections):
    with pytest.raises(ValueError, match="^detections"):
        Sort().update(detections)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"max_age": -1}, "max_age"),
        ({"min_hits": 1.5}, "min_hits"),
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"tracker": "deep"}, "tracker"),
        ({"low_threshold": 0.1}, "low_threshold"),
        ({"tracker": "byte", "low_threshold": 0.7, "high_threshold": 0.6}, "low_threshold"),
        ({"tracker": "byte", "high_threshold": 2}, "high_threshold"),
    ],
)
def test_wrong_settings_name_the_argument(kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        Sort(**kwargs)


def test_iou_matrix():
    a = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0]])
    np.testing.assert_allclose(iou_matrix(a, a[:1]), [[1.0], [25 / 175]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)
    with pytest.raises(ValueError, match="^boxes_b"):
        iou_matrix(a, np.zeros(4))


def test_the_speed_comparison_times_every_tracker_alternating(ref, capsys):
    import runpy

    from keras_zoo.track import speed

    sequence = speed.synthetic_sequence(1, frames=20, objects=4)
    assert len(sequence) == 20 and all(d.shape[1] == 5 for d in sequence)
    # the sequence tracks the same in keras_zoo and sort.py: the figures are of the same work
    for want, got in zip(run_reference(ref, sequence), run_ours(sequence)):
        np.testing.assert_allclose(got, want, atol=BOX_TOLERANCE)
    has_trackers = all(importlib.util.find_spec(m) for m in ("trackers", "supervision"))
    names = ["keras_zoo", "sort.py", "trackers SORT", "keras_zoo byte", "trackers ByteTrack"]
    if not has_trackers:
        names = [n for n in names if not n.startswith("trackers")]
    fps = speed.compare(sequence, rounds=3)
    assert list(fps) == names
    assert all(len(v) == 3 and min(v) > 0 for v in fps.values())
    script = pathlib.Path(__file__).parents[1] / "scripts" / "bench_track.py"
    main = runpy.run_path(str(script))["main"]
    assert main(["--frames", "10", "--rounds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 rounds, ")
    timed, ratios = lines[1 : 1 + len(names)], lines[1 + len(names) :]
    assert [line.split(" frames/s")[0].rsplit(None, 1)[0] for line in timed] == names
    if has_trackers:
        expected = ["keras_zoo / trackers SORT", "keras_zoo byte / trackers ByteTrack"]
    else:
        expected = ["trackers not timed"]
    assert [line.rsplit(": ", 1)[0] for line in ratios] == ["keras_zoo / sort.py", *expected]
    # a package left out is named with its pip line
    lines = speed.report({"keras_zoo": (10.0, 12.0), "keras_zoo byte": (8.0, 9.0)}, 3.0)
    assert lines == [
        "2 rounds, 3.0 detections a frame",
        "keras_zoo                11 frames/s (10..12)",
        "keras_zoo byte            8 frames/s (8..9)",
        f"sort.py not timed: {speed.SORT_PY_INSTALL}",
        f"trackers not timed: {speed.TRACKERS_INSTALL}",
    ]
