"""Appearance matching (DeepSORT's step): `Sort(max_cosine_distance=...)` keeps identities where
IoU alone swaps them, reduces to SORT where no embedding is close, and checks its embeddings;
`Embedder` cuts boxes as OpenCV's resize samples them and runs a zoo backbone on them."""

import numpy as np
import pytest

from keras_zoo.track import Sort
from keras_zoo.track.speed import synthetic_sequence


def meet_and_turn_back(hidden=range(12, 19)):
    """Two people walk towards each other, meet at frame 15 (the second one hidden behind the
    first around it) and both turn back; SORT's constant-velocity prediction carries each
    track on into the other's path."""
    rng = np.random.default_rng(0)
    frames = []
    for f in range(40):
        g = f if f <= 15 else 30 - f
        xa, xb = 100 + 10 * g, 420 - 10 * g
        dets = np.array([[xa, 100, xa + 60, 250, 0.9], [xb, 100, xb + 60, 250, 0.9]])
        dets[:, :4] += rng.normal(0, 1, (2, 4))
        frames.append(dets[:1] if f in hidden else dets)
    looks = np.random.default_rng(1).normal(size=(2, 64))
    embeddings = [looks[: len(d)] + 0.1 * rng.normal(size=(len(d), 64)) for d in frames]
    return frames, embeddings


def run(tracker, frames, embeddings=None):
    out = []
    for i, dets in enumerate(frames):
        extra = [] if embeddings is None else [embeddings[i]]
        out.append(tracker.update(dets, *extra))
    return out


def id_of_the_one_ending_right(outputs):
    last = outputs[-1]
    return int(last[np.argmax(last[:, 0]), 4])


def test_appearance_keeps_the_identities_that_iou_alone_swaps():
    frames, embeddings = meet_and_turn_back()
    sort = run(Sort(min_hits=1, max_age=30), frames)
    deep = run(Sort(min_hits=1, max_age=30, max_cosine_distance=0.2), frames, embeddings)
    # the first one (id 1) starts left and ends left; SORT hands its id to the other one
    assert id_of_the_one_ending_right(sort) == 1
    assert id_of_the_one_ending_right(deep) == 2
    assert {int(i) for o in deep for i in o[:, 4]} == {1, 2}


def test_without_a_close_embedding_appearance_matching_is_sort():
    rng = np.random.default_rng(3)
    frames = synthetic_sequence(5, frames=120, objects=6)
    # random directions in 256 dimensions: cosine distances near 1, never under 0.2
    embeddings = [rng.normal(size=(len(d), 256)) for d in frames]
    for kwargs in ({}, {"tracker": "byte", "low_threshold": 0.3, "high_threshold": 0.6}):
        sort = run(Sort(**kwargs), frames)
        deep = run(Sort(max_cosine_distance=0.2, **kwargs), frames, embeddings)
        assert all(np.array_equal(a, b) for a, b in zip(sort, deep))


def test_a_look_alike_far_from_the_prediction_starts_a_new_track():
    tracker = Sort(min_hits=1, max_age=5, max_cosine_distance=0.2)
    look = np.ones((1, 8))
    for x in (100.0, 104.0, 108.0):
        tracker.update(np.array([[x, 100, x + 40, 200, 0.9]]), look)
    # the same embedding 300 px away: outside the gate (1x the box's size), no IoU either,
    # so track 1 is not updated (not reported) and a second track starts
    out = tracker.update(np.array([[420.0, 100, 460, 200, 0.9]]), look)
    assert len(out) == 0 and len(tracker) == 2
    out = tracker.update(np.array([[424.0, 100, 464, 200, 0.9]]), look)
    assert out[:, 4].tolist() == [2.0]


def test_the_embeddings_of_skipped_rows_are_dropped_with_them():
    tracker = Sort(min_hits=1, max_age=5, max_cosine_distance=0.2)
    a, b = np.eye(4)[:1], np.eye(4)[1:2]
    tracker.update(np.array([[100, 100, 140, 200, 0.9], [150, 100, 190, 200, 0.9]]), [*a, *b])
    # the second object steps to overlap the first one's box more than its own (IoU 0.33
    # against 0.14); its row comes after a NaN row
    dets = np.array([[np.nan, 0, 10, 10, 0.9], [120, 100, 160, 200, 0.9]])
    out = tracker.update(dets, np.concatenate([a, b]))
    assert tracker.skipped == 1
    assert out[:, 4].tolist() == [2.0]  # matched to its own look, not by IoU to track 1


@pytest.mark.parametrize(
    "kwargs, embeddings, expected",
    [
        ({"max_cosine_distance": 0.2}, None, "embeddings: required"),
        ({}, np.ones((1, 4)), "embeddings: given, but this tracker has no max_cosine_distance"),
        ({"max_cosine_distance": 0.2}, np.ones((2, 4)), r"embeddings: expected an \(1, D\)"),
        ({"max_cosine_distance": 0.2}, np.full((1, 4), np.nan), "embeddings: expected finite"),
        ({"max_cosine_distance": 0.2}, [["a"]], "embeddings: expected an"),
    ],
)
def test_wrong_embeddings_name_the_argument(kwargs, embeddings, expected):
    tracker = Sort(**kwargs)
    with pytest.raises(ValueError, match=expected):
        tracker.update(np.array([[0, 0, 10, 10, 0.9]]), embeddings)


def test_embeddings_keep_their_dimension_and_the_distance_is_checked():
    tracker = Sort(max_cosine_distance=0.2)
    tracker.update(np.array([[0, 0, 10, 10, 0.9]]), np.ones((1, 4)))
    with pytest.raises(ValueError, match="embeddings: expected 4 values a row, as before, got 8"):
        tracker.update(np.array([[0, 0, 10, 10, 0.9]]), np.ones((1, 8)))
    assert len(tracker.update(np.zeros((0, 5)), np.zeros((0, 4)))) == 0
    with pytest.raises(ValueError, match="max_cosine_distance must be between 0 and 1"):
        Sort(max_cosine_distance=1.5)


# -- the backbone ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder():
    from keras_zoo.track.embed import Embedder

    return Embedder("mobilenet_v3_small", input_size=(64, 32), batch_size=3)


def test_crops_sample_the_box_as_opencvs_resize_does(embedder):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), (5, 5), 2)
    boxes = np.array([[10, 20, 40, 100], [0, 0, 160, 120], [30, 50, 130, 70]], float)
    crops, inside = embedder._crops(frame, boxes)
    assert inside.all()
    for crop, (x1, y1, x2, y2) in zip(crops, boxes.astype(int)):
        expected = cv2.resize(frame[y1:y2, x1:x2].astype(np.float32), (32, 64))
        # OpenCV repeats the box's edge pixels where the crop reads the frame's beyond them:
        # the samples within half a pixel of the box's edge, more of them where it enlarges
        my, mx = (
            max(1, int(np.ceil(0.5 * n / size - 0.5))) for n, size in ((64, y2 - y1), (32, x2 - x1))
        )
        inner = (slice(my, -my), slice(mx, -mx))
        np.testing.assert_allclose(crop[inner], expected[inner], atol=1e-3)
    # a box that is the whole frame reads nothing beyond it: equal to the edge
    np.testing.assert_allclose(crops[1], cv2.resize(frame.astype(np.float32), (32, 64)), atol=1e-3)


def test_a_box_of_one_colour_embeds_as_the_backbone_sees_that_colour(embedder):
    frame = np.full((120, 160, 3), 40, np.uint8)
    frame[30:90, 50:80] = (200, 30, 90)
    got = embedder(frame, np.array([[50.0, 30.0, 80.0, 90.0], [500, 500, 600, 600]]))
    alone = np.asarray(embedder.model(np.full((1, 64, 32, 3), (200, 30, 90), np.float32)))
    np.testing.assert_allclose(got[0], alone[0], rtol=1e-5, atol=1e-6)
    assert not got[1].any()  # nothing of the box inside the frame: a zero row
    assert got.shape == (2, embedder.dimension) and got.dtype == np.float32


def test_a_sequence_batches_crops_across_frames_as_single_frames_give_them(embedder):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(4)]
    boxes = [rng.uniform(0, 60, (n, 2)) for n in (2, 0, 4, 1)]
    boxes = [np.concatenate([b, b + 30], axis=1) for b in boxes]
    together = list(embedder.sequence(zip(frames, boxes)))
    assert [len(e) for e in together] == [2, 0, 4, 1]
    for frame, b, got in zip(frames, boxes, together):
        np.testing.assert_allclose(got, embedder(frame, b), rtol=1e-5, atol=1e-6)


def test_embedder_arguments_are_checked():
    from keras_zoo.track.embed import Embedder

    with pytest.raises(ValueError, match="input_size: expected"):
        Embedder("mobilenet_v3_small", input_size=(16, 16))
    with pytest.raises(ValueError, match="frame: expected an"):
        Embedder("mobilenet_v3_small", input_size=(32, 32))(np.zeros((4, 4)), np.zeros((0, 4)))
