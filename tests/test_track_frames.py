"""`keras-zoo track` with the frames: --embed keeps, end to end, the identities SORT swaps when two
people meet and turn back (the crops embedded by a zoo backbone), equal to the Python API's
tracks; --draw writes every frame with the tracks drawn and a GIF; wrong combinations and
missing frames are one-line errors that write nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_zoo.cli import main

# two people in different clothes: (shirt, trousers)
CLOTHES = [((200, 40, 40), (40, 40, 160)), ((40, 180, 60), (230, 230, 230))]


def boxes_of(f):
    """The two people's boxes at frame f (from 1): they meet at frame 16 and turn back."""
    g = f - 1 if f <= 16 else 31 - f
    xa, xb = 40 + 10 * g, 360 - 10 * g
    return [(xa, 60, xa + 50, 180), (xb, 60, xb + 50, 180)]


HIDDEN = range(13, 20)  # the second person is behind the first here


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """SEQ/img1 frames (the second person drawn first, so the first covers it) and
    SEQ/det/det.txt with both people's boxes, the second's left out while it is hidden."""
    root = tmp_path_factory.mktemp("scene")
    images = root / "walk" / "img1"
    images.mkdir(parents=True)
    (root / "walk" / "det").mkdir()
    lines = []
    rng = np.random.default_rng(0)
    for f in range(1, 41):
        frame = np.full((240, 480, 3), 120, np.uint8)
        frame[:, :, 2] = np.linspace(90, 160, 480).astype(np.uint8)
        for person in (1, 0):
            x1, y1, x2, y2 = boxes_of(f)[person]
            shirt, trousers = CLOTHES[person]
            frame[y1 : (y1 + y2) // 2, x1:x2] = shirt
            frame[(y1 + y2) // 2 : y2, x1:x2] = trousers
            if person == 1 and f in HIDDEN:
                continue
            x, y = x1 + rng.normal(0, 1), y1 + rng.normal(0, 1)
            lines.append(f"{f},-1,{x:.2f},{y:.2f},50,120,0.9")
        Image.fromarray(frame).save(images / f"{f:06d}.png")
    (root / "walk" / "det" / "det.txt").write_text("\n".join(lines) + "\n")
    weights = root / "backbone.weights.h5"
    import keras_zoo

    model = keras_zoo.build(
        "mobilenet_v3_small", include_top=False, pooling="avg", input_shape=(64, 32, 3)
    )
    model.save_weights(weights)
    return root, weights


def read_results(path):
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return rows


def ids_first_and_last(rows):
    """Each person's id (left one, right one) in the first frame and in the last frame where
    both are tracked."""
    both = [f for f in np.unique(rows[:, 0]) if (rows[:, 0] == f).sum() == 2]

    def ids_left_to_right(frame):
        these = rows[rows[:, 0] == frame]
        return these[np.argsort(these[:, 2]), 1].astype(int).tolist()

    first, last = ids_left_to_right(both[0]), ids_left_to_right(both[-1])
    return first, last


def embed_args(weights):
    return ["--embed", "mobilenet_v3_small", "--embed-weights", str(weights)] + [
        "--embed-size",
        "64x32",
    ]


def test_appearance_keeps_the_identities_that_sort_swaps(scene, tmp_path, capsys):
    root, weights = scene
    assert main(["track", str(root), "--out", str(tmp_path / "sort"), "--max-age", "30"]) == 0
    argv = ["track", str(root), "--out", str(tmp_path / "deep"), "--images", str(root)]
    assert main(argv + embed_args(weights)) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "embedding" in line][0].startswith("walk: 40 frames, 2 tracks")
    sort = read_results(tmp_path / "sort" / "walk.txt")
    deep = read_results(tmp_path / "deep" / "walk.txt")
    # both turn back, so the one on the left at the start is on the left at the end
    first, last = ids_first_and_last(sort)
    assert first != last  # SORT lost the hidden one, or gave it the other's id
    first, last = ids_first_and_last(deep)
    assert first == last and len(set(deep[:, 1])) == 2


def test_the_command_tracks_as_the_python_api_does(scene, tmp_path):
    from keras_zoo.track import Sort, mot
    from keras_zoo.track.draw import read_frame
    from keras_zoo.track.embed import Embedder

    root, weights = scene
    argv = ["track", str(root / "walk"), "--out", str(tmp_path), "--images"]
    assert main(argv + [str(root / "walk" / "img1")] + embed_args(weights)) == 0
    embedder = Embedder("mobilenet_v3_small", weights, input_size=(64, 32))
    tracker = Sort(max_age=30, max_cosine_distance=0.2)  # --embed's defaults, DeepSORT's
    table = mot.read_table(root / "walk" / "det" / "det.txt")
    expected = []
    for frame, dets in mot.frames(table):
        image = read_frame(root / "walk" / "img1" / f"{frame:06d}.png")
        expected += mot.result_lines(frame, tracker.update(dets, embedder(image, dets[:, :4])))
    assert (tmp_path / "walk.txt").read_text().splitlines() == expected


def test_draw_writes_every_frame_with_the_tracks_and_a_gif(scene, tmp_path, capsys):
    from keras_zoo.track.draw import id_colour

    root, _ = scene
    argv = ["track", str(root), "--out", str(tmp_path), "--images", str(root), "--draw"]
    assert main(argv) == 0
    frames = sorted(os.listdir(tmp_path / "walk"))
    assert frames == [f"{f:06d}.jpg" for f in range(1, 41)]
    rows = read_results(tmp_path / "walk.txt")
    row = rows[rows[:, 0] == 30][0]  # a track in frame 30, drawn in its id's colour
    drawn = np.asarray(Image.open(tmp_path / "walk" / "000030.jpg").convert("RGB"), int)
    x, y, w, h = row[2:6]
    edge = drawn[int(y + h / 2), int(round(x)) - 2 : int(round(x)) + 3]
    colour = np.array(id_colour(int(row[1])))
    assert np.abs(edge - colour).max(axis=1).min() < 20  # JPEG's error
    inside = drawn[int(y + h / 2), int(round(x + w / 2))]  # the person's own colours
    assert np.abs(inside - colour).max() > 60
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 40
    assert "walk.gif" in capsys.readouterr().out


def test_drawing_loads_no_tensorflow(scene, tmp_path):
    from tests.test_track_cli import LIGHT

    root, _ = scene
    argv = [["track", str(root), "--out", str(tmp_path), "--images", str(root), "--draw"]]
    done = subprocess.run(
        [sys.executable, "-c", LIGHT % (argv,)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"statuses": [0], "heavy": []}
    assert len(os.listdir(tmp_path / "walk")) == 40


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--embed", "mobilenet_v3_small"], "--embed: needs the frames: give --images"),
        (["--draw"], "--draw: needs the frames: give --images"),
        (["--max-cosine-distance", "0.3"], "--max-cosine-distance: applies to --embed only"),
    ],
)
def test_options_that_need_the_frames_say_so(scene, tmp_path, capsys, extra, expected):
    root, _ = scene
    assert main(["track", str(root), "--out", str(tmp_path / "out"), *extra]) == 2
    assert capsys.readouterr().err.splitlines()[0].endswith(expected)
    assert not (tmp_path / "out").exists()


def test_a_missing_frame_is_named_and_nothing_is_written(scene, tmp_path, capsys):
    root, _ = scene
    images = tmp_path / "img1"
    images.mkdir()
    for f in range(1, 41):
        if f != 7:
            os.link(root / "walk" / "img1" / f"{f:06d}.png", images / f"{f:06d}.png")
    argv = ["track", str(root / "walk"), "--out", str(tmp_path / "out"), "--images", str(images)]
    assert main([*argv, "--draw"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert "no image for frame 7 (1 frames missing)" in first and str(images) in first
    assert not (tmp_path / "out").exists()
    argv[5] = str(tmp_path / "out")  # a folder without frames for the sequence
    (tmp_path / "out").mkdir()
    assert main(argv + ["--draw"]) == 2
    assert "no frames for sequence 'walk'" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == []
