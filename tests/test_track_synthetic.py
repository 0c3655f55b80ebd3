"""keras_zoo.track.synthetic: scenes are deterministic per seed, objects move as documented,
the visible fraction and the detector's rules hold on hand-made crossings, the rates come out as
documented, rendering puts the nearer object in front, and the evaluation ranks the tracker
options where a scene is made to tell them apart (max_age over long occlusions, ByteTrack over
thresholded SORT where partly hidden objects score low)."""

import dataclasses
import math
import os

import numpy as np
import pytest
from PIL import Image

from keras_zoo.track import synthetic
from keras_zoo.track.synthetic import (
    HIGH_SCORE,
    make_scene,
    place_objects,
    simulate,
    visible_fractions,
)
from tests.conftest import TEST_EXTRA, require_module

SIZE = (960, 540)


def crossing(frames: int = 80, **rates) -> synthetic.Scene:
    """Two figures walking at each other along one line, their centres together at frame 40:
    object 1 (nearer, and larger) hides object 2 completely there."""
    objects = place_objects(
        centre=[[480, 400], [480, 410]],
        velocity=[[2.0, 0.0], [-2.0, 0.0]],
        size=[[64, 160], [48, 120]],
        depth=[1.0, 2.0],
        anchor_frame=40,
    )
    return simulate(objects, frames, SIZE, seed=1, **rates)


def test_a_scene_is_the_same_for_the_same_seed():
    a, b, other = make_scene(3, frames=60), make_scene(3, frames=60), make_scene(4, frames=60)
    for table in ("gt", "detections"):
        for field in ("frames", "ids", "boxes", "scores"):
            np.testing.assert_array_equal(
                getattr(getattr(a, table), field), getattr(getattr(b, table), field)
            )
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_array_equal(a.sources, b.sources)
    np.testing.assert_array_equal(a.render(30), b.render(30))
    assert not np.array_equal(a.truth, other.truth)
    # a detector rate leaves the motion alone
    np.testing.assert_array_equal(a.truth, make_scene(3, frames=60, miss=0.5).truth)


def test_ground_truth_moves_at_constant_velocity_within_the_noise():
    scene = make_scene(5, frames=200, objects=8)
    noise = scene.rates.motion_noise
    t = np.arange(1, scene.frames + 1, dtype=np.float64)
    for i in range(len(scene.objects)):
        rows = scene.gt.ids == i + 1
        boxes, frames = scene.gt.boxes[rows], scene.gt.frames[rows]
        whole = (boxes[:, 2:] >= scene.objects.size[i] - 1e-9).all(axis=1)  # not clipped
        if whole.sum() < 20:
            continue
        boxes, frames = boxes[whole], frames[whole]
        np.testing.assert_allclose(
            boxes[:, 2:], np.broadcast_to(scene.objects.size[i], (len(boxes), 2))
        )
        centre = boxes[:, :2] + boxes[:, 2:] / 2
        for axis in (0, 1):
            slope, offset = np.polyfit(frames, centre[:, axis], 1)
            residual = centre[:, axis] - (slope * frames + offset)
            assert abs(slope - scene.objects.velocity[i, axis]) < 0.05, (i, axis)
            assert 0.5 * noise < residual.std() < 1.5 * noise, (i, axis, residual.std())
    # gt is the truth clipped to the image, in the frames an object shows at all
    assert len(scene.gt) == np.count_nonzero(scene.visible > 0)
    assert len(t) == scene.frames


def test_visible_fraction_of_hand_made_boxes():
    boxes = [[100, 100, 200, 300], [150, 100, 250, 300]]
    np.testing.assert_allclose(visible_fractions(boxes, [1.0, 2.0], SIZE), [1.0, 0.5])
    np.testing.assert_allclose(visible_fractions(boxes, [2.0, 1.0], SIZE), [0.5, 1.0])
    # half outside the image; and two nearer boxes that overlap each other count once
    assert visible_fractions([[-50, 0, 50, 100]], [1.0], SIZE)[0] == pytest.approx(0.5)
    three = [[0, 0, 100, 100], [50, 0, 150, 100], [60, 0, 160, 100]]
    np.testing.assert_allclose(visible_fractions(three, [3.0, 1.0, 2.0], SIZE), [0.5, 1, 0.1])


def test_a_crossing_hides_the_far_object_and_lowers_its_scores():
    scene = crossing(miss=0.0, false_positives=0.0, jitter=0.0)
    far = scene.visible[:, 1]
    assert far[39] == 0.0 and scene.visible[:, 0].min() == 1.0  # frame 40: wholly behind
    scores = {int(f): s for f, s, src in zip(*_det(scene)) if src == 2}
    near = {int(f): s for f, s, src in zip(*_det(scene)) if src == 1}
    assert len(near) == scene.frames and min(near.values()) >= HIGH_SCORE
    cases = {"hidden": 0, "partial": 0, "clear": 0}
    for frame in range(1, scene.frames + 1):
        v = far[frame - 1]
        if v < scene.rates.hidden:
            assert frame not in scores, (frame, v)
            cases["hidden"] += 1
        elif v < scene.rates.partial:
            assert 0.15 <= scores[frame] <= 0.55, (frame, v)
            cases["partial"] += 1
        else:
            assert scores[frame] >= HIGH_SCORE, (frame, v)
            cases["clear"] += 1
    assert all(n >= 3 for n in cases.values()), cases


def _det(scene):
    return scene.detections.frames, scene.detections.scores, scene.sources


def test_rates_come_out_as_documented():
    scenes = [make_scene(seed) for seed in (0, 1)]
    clear = missed = fp = fp_low = frames = 0
    low_vis, high_vis, jitter = [], [], []
    for s in scenes:
        rates = s.rates
        frames += s.frames
        found = {(int(f), int(i)) for f, i in zip(s.detections.frames, s.sources) if i}
        vis = {(int(f), int(i)): s.visible[f - 1, i - 1] for f, i in zip(s.gt.frames, s.gt.ids)}
        for key, v in vis.items():
            if v >= rates.partial:
                clear += 1
                missed += key not in found
        true = s.sources > 0
        fp += np.count_nonzero(~true)
        fp_low += np.count_nonzero(s.detections.scores[~true] < 0.5)
        v = s.visible[s.detections.frames[true] - 1, s.sources[true] - 1]
        score = s.detections.scores[true]
        low_vis.append(v[score < HIGH_SCORE])
        high_vis.append(v[score >= HIGH_SCORE])
        assert v.min() >= rates.hidden
        # a detection's box against its object's: sd about `jitter` times the size
        gt = {(int(f), int(i)): b for f, i, b in zip(s.gt.frames, s.gt.ids, s.gt.boxes)}
        for f, i, b in zip(s.detections.frames[true], s.sources[true], s.detections.boxes[true]):
            g = gt[(int(f), int(i))]
            if s.visible[f - 1, i - 1] == 1.0:  # inside the image: no clipping
                jitter.append((b[:2] - g[:2]) / s.objects.size[i - 1])
        # appearance: a clear detection's vector is near its object's; a false one is not
        own = np.sum(s.embeddings[true] * s.objects.appearance[s.sources[true] - 1], axis=1)
        assert np.median(own[v >= rates.partial]) > 0.9
        assert np.median(np.abs(s.embeddings[~true] @ s.objects.appearance.T)) < 0.4
        heights = s.objects.size[:, 1]
        assert heights.min() >= 0.9 * 60 and heights.max() <= 1.1 * 200
        assert np.all(
            (s.objects.size[:, 0] / heights >= 0.35 - 1e-9)
            & (s.objects.size[:, 0] / heights <= 0.45 + 1e-9)
        )
    assert 0.02 < missed / clear < 0.09, missed / clear
    assert 0.35 < fp / frames < 0.65
    assert fp_low / fp > 0.65
    assert np.concatenate(low_vis).max() < scenes[0].rates.partial
    assert np.concatenate(high_vis).min() >= scenes[0].rates.partial
    assert np.std(np.concatenate(jitter)) == pytest.approx(0.03, rel=0.25)
    stats = synthetic.scene_statistics(scenes[0])
    assert stats["crossings"] >= 3 and stats["occlusions"] >= 1  # 3 pairs aimed at each other
    assert 0.05 < stats["low-score share"] < 0.5


def test_render_puts_the_nearer_object_in_front():
    scene = crossing(frames=80)
    frame = 50  # object 2 a third out from behind object 1
    image = scene.render(frame)
    assert image.shape == (540, 960, 3) and image.dtype == np.uint8
    near, far = scene.truth[frame - 1]
    assert 0.2 < scene.visible[frame - 1, 1] < 0.8
    colours = scene.objects.colours.astype(int)

    def closest(x: float) -> int:
        """The object one of whose colours is closest to the pixel at x, in the torsos."""
        pixel = image[int(far[1] + 0.4 * (far[3] - far[1])), int(x)].astype(int)
        return int(np.argmin(np.abs(colours - pixel).sum(axis=2).min(axis=1)))

    # the middle of the overlap shows the near object; the far one's uncovered part, itself
    assert closest((max(near[0], far[0]) + min(near[2], far[2])) / 2) == 0
    exposed = (far[0], near[0]) if far[0] < near[0] else (near[2], far[2])
    assert closest(sum(exposed) / 2) == 1
    # with the depths swapped the other one is in front
    swapped = dataclasses.replace(
        scene, objects=dataclasses.replace(scene.objects, depth=scene.objects.depth[::-1].copy())
    )
    image = swapped.render(frame)
    assert closest((max(near[0], far[0]) + min(near[2], far[2])) / 2) == 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="^frames"):
        make_scene(0, frames=0)
    with pytest.raises(ValueError, match="^blur: not a rate"):
        make_scene(0, blur=1.0)
    with pytest.raises(ValueError, match="^miss"):
        make_scene(0, miss=2.0)
    with pytest.raises(ValueError, match="^frame must"):
        make_scene(0, frames=5).render(6)


def _scores(outcome, field):
    values = outcome.values(field)
    assert np.isfinite(values).all(), (outcome.name, field, values)
    return values


def test_max_age_bridges_occlusions():
    require_module("motmetrics", TEST_EXTRA)
    # every object in a crossing pair, no random misses: the switches are occlusions'
    scenes = [make_scene(s, frames=200, objects=8, crossing=1.0, miss=0.0) for s in (0, 1)]
    assert all(synthetic.scene_statistics(s)["occlusions"] >= 2 for s in scenes)
    outcomes = synthetic.evaluate(
        scenes,
        {
            "max_age=1": synthetic.sort_contender(),
            "max_age=30": synthetic.sort_contender(max_age=30),
        },
        hota=False,
    )
    short, long = outcomes
    for field in ("mota", "idf1", "false_positives", "misses"):
        _scores(short, field), _scores(long, field)
    assert np.all(_scores(long, "id_switches") < _scores(short, "id_switches"))
    assert np.all(_scores(long, "idf1") > _scores(short, "idf1"))
    lines = synthetic.report(outcomes)
    assert len(lines) == 3 and lines[1].startswith("max_age=1") and "±" in lines[1]


def test_byte_recovers_partly_hidden_objects():
    require_module("motmetrics", TEST_EXTRA)
    # an object 5% or more hidden scores low: many low-score boxes, which a score cut drops
    scenes = [make_scene(s, frames=200, objects=8, partial=0.95, hidden=0.2) for s in (2, 3)]
    assert all(synthetic.scene_statistics(s)["low-score share"] > 0.15 for s in scenes)
    outcomes = synthetic.evaluate(
        scenes,
        {
            "sort": synthetic.sort_contender(max_age=30, min_score=HIGH_SCORE),
            "byte": synthetic.sort_contender(max_age=30, tracker="byte"),
        },
        hota=False,
    )
    sort, byte = outcomes
    assert np.all(_scores(byte, "misses") < _scores(sort, "misses"))
    assert np.all(_scores(byte, "mota") > _scores(sort, "mota"))
    assert math.isnan(sort.values("hota")[0])  # not asked for


def test_appearance_finds_again_the_objects_that_turned_while_hidden():
    require_module("motmetrics", TEST_EXTRA)
    # every object in a pair that meets and turns back, the farther one hidden as they turn:
    # the hidden one's track runs on the wrong way, so IoU alone finds it no more
    scenes = [make_scene(s, frames=200, objects=8, crossing=1.0, turn_back=1.0) for s in (0, 1)]
    assert all(s.objects.turns is not None and s.objects.turns.all() for s in scenes)
    outcomes = synthetic.evaluate(
        scenes,
        {
            "iou": synthetic.sort_contender(max_age=30),
            "appearance": synthetic.sort_contender(max_age=30, max_cosine_distance=0.2),
        },
        hota=False,
    )
    iou, appearance = outcomes
    assert np.all(_scores(appearance, "id_switches") < _scores(iou, "id_switches"))
    assert np.all(_scores(appearance, "idf1") > _scores(iou, "idf1"))


def test_objects_that_turn_walk_back_the_way_they_came():
    scene = make_scene(4, frames=120, objects=4, crossing=1.0, turn_back=1.0, motion_noise=0.0)
    same = make_scene(4, frames=120, objects=4, crossing=1.0, motion_noise=0.0)
    anchor = scene.objects.anchor_frame
    for i in range(4):
        step = np.diff((scene.truth[:, i, 0] + scene.truth[:, i, 2]) / 2)  # frame t to t + 1
        t = np.arange(1, 120)
        vx = scene.objects.velocity[i, 0]
        np.testing.assert_allclose(step[t + 1 <= anchor[i]], vx, atol=1e-9)  # towards the meeting
        np.testing.assert_allclose(step[t >= anchor[i]], -vx, atol=1e-9)  # and back
        early = np.arange(120) + 1 <= anchor[i]
        np.testing.assert_allclose(scene.truth[early, i], same.truth[early, i])


def test_a_scene_written_as_a_sequence_reads_back_through_the_motchallenge_reader(tmp_path):
    from keras_zoo.track import mot

    scene = make_scene(5, frames=12, objects=3)
    scene.write(tmp_path / "walk")
    det = mot.read_table(tmp_path / "walk" / "det" / "det.txt")
    gt = mot.read_table(tmp_path / "walk" / "gt" / "gt.txt", frame_order=False)
    for written, table in ((det, scene.detections), (gt, scene.gt)):
        np.testing.assert_array_equal(written.frames, table.frames)
        np.testing.assert_allclose(written.boxes, table.boxes, atol=5e-3)  # 2 decimals
        np.testing.assert_allclose(written.scores, table.scores, rtol=1e-5)
    np.testing.assert_array_equal(gt.ids, scene.gt.ids)
    images = sorted(os.listdir(tmp_path / "walk" / "img1"))
    assert images == [f"{f:06d}.jpg" for f in range(1, 13)]
    with Image.open(tmp_path / "walk" / "img1" / "000007.jpg") as image:
        seen = np.asarray(image.convert("RGB"), dtype=int)
    assert seen.shape == (540, 960, 3)
    assert np.abs(seen - scene.render(7)).mean() < 5  # JPEG's error on the grain


def test_an_embedding_that_tells_no_one_apart_leaves_the_association_to_iou(monkeypatch):
    require_module("motmetrics", TEST_EXTRA)
    # every detection's embedding is one vector give or take a little: all close, all alike
    scenes = []
    for s in (0, 1):
        scene = make_scene(s, frames=200, objects=8, crossing=1.0, turn_back=1.0)
        rng = np.random.default_rng(s)
        alike = np.ones((len(scene.embeddings), 32)) + 0.05 * rng.normal(
            size=(len(scene.embeddings), 32)
        )
        scenes.append(dataclasses.replace(scene, embeddings=alike))
    contenders = {
        "iou": synthetic.sort_contender(max_age=30),
        "appearance": synthetic.sort_contender(max_age=30, max_cosine_distance=0.2),
    }
    iou, appearance = synthetic.evaluate(scenes, contenders, hota=False)
    assert np.all(_scores(appearance, "id_switches") <= _scores(iou, "id_switches") + 1)
    assert np.all(_scores(appearance, "idf1") >= _scores(iou, "idf1") - 0.02)
    # matching on every close embedding, as without the margin, pairs neighbours at random
    monkeypatch.setattr("keras_zoo.track.sort.APPEARANCE_MARGIN", 0.0)
    _, careless = synthetic.evaluate(scenes, contenders, hota=False)
    assert np.all(_scores(careless, "id_switches") > _scores(iou, "id_switches") + 3)
