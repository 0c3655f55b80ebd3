"""keras_zoo.track.draw, checked pixel by pixel: a box's outline is its id's colour and its
inside is left as it was, the id's tag sits above the box, a trail runs through the bottom
centres of the last frames and no further back, ids are forgotten after `trail` frames, boxes
out of the frame are cut and never crash; then the frames of an img1 folder, and GIFs and
videos read back, written in one step."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_zoo.track.draw import TrackDrawer, frame_paths, id_colour, write_gif, write_video
from tests.conftest import TEST_EXTRA, require_module


def noise(height: int = 200, width: int = 300, seed: int = 0) -> np.ndarray:
    """A frame of mid-grey noise: no pixel of it is an id colour (whose largest channel is
    255) or the black rim, so a drawn pixel and an untouched one cannot be confused."""
    return np.random.default_rng(seed).integers(60, 200, (height, width, 3), dtype=np.uint8)


def colour_at(image: np.ndarray, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(c) for c in image[y, x])


# -- colours -------------------------------------------------------------------------------


def test_id_colours_are_fixed_bright_and_far_apart():
    assert id_colour(1) == (51, 111, 255)  # the same in every run, not from a seeded RNG
    assert id_colour(np.int64(7)) == id_colour(7)
    colours = np.array([id_colour(i) for i in range(0, 200)], dtype=float)
    assert (colours.max(axis=1) == 255).all()  # full value: none dark on a dark frame
    assert (colours.min(axis=1) <= 60).all()  # saturated: none washed out on a light frame
    neighbours = np.abs(np.diff(colours, axis=0)).max(axis=1)
    assert neighbours.min() >= 150, neighbours.min()  # ids 5 and 6 never look alike
    first = colours[1:13]
    distance = np.abs(first[:, None] - first[None]).max(axis=2) + 1000 * np.eye(12)
    assert distance.min() >= 40, distance.min()  # no two of the first dozen ids alike


@pytest.mark.parametrize("bad", [1.5, "3", True, None])
def test_id_colour_refuses_what_is_not_an_integer(bad):
    with pytest.raises(ValueError, match="^track_id"):
        id_colour(bad)


# -- boxes and tags ------------------------------------------------------------------------


def test_outline_has_the_id_colour_and_the_inside_is_untouched():
    image = noise()
    drawn = TrackDrawer().draw(image, np.array([[40.0, 50.0, 120.0, 150.0, 3.0]]))
    colour = id_colour(3)
    line = 2  # the least width, which a 200-line frame gets
    # the box covers columns 40..119 and rows 50..149; the outline is drawn inwards
    for x, y in [(40, 100), (40 + line - 1, 100), (119, 100), (80, 149), (100, 50), (80, 51)]:
        assert colour_at(drawn, x, y) == colour, (x, y)
    assert colour_at(drawn, 39, 100) == (0, 0, 0)  # the rim outside the line
    assert colour_at(drawn, 38, 100) == colour_at(image, 38, 100)
    inside = (slice(55, 145), slice(45, 115))  # rows, columns: away from lines and the tag
    np.testing.assert_array_equal(drawn[inside], image[inside])
    changed = (drawn != image).any(axis=2)
    assert changed.sum() < 0.15 * changed.size  # an outline and a tag, not a filled box


def tag_above(drawn: np.ndarray, x1: int, y1: int, colour: tuple[int, int, int]) -> int:
    """The inner height of the tag above a box whose top-left pixel is (x1, y1): the run of
    `colour` going up from the row above the tag's bottom rim, in column x1 + 1 (inside the
    tag's padding, clear of its text)."""
    y = y1 - 2
    while y >= 0 and colour_at(drawn, x1 + 1, y) == colour:
        y -= 1
    return y1 - 2 - y


def tag_width(drawn: np.ndarray, x1: int, y1: int, colour: tuple[int, int, int]) -> int:
    """The inner width of that tag: the run of `colour` going right in its bottom padding."""
    x = x1 + 1
    while x < drawn.shape[1] and colour_at(drawn, x, y1 - 2) == colour:
        x += 1
    return x - x1 - 1


def test_the_tag_sits_above_the_box_with_contrasting_text():
    image = noise()
    drawn = TrackDrawer().draw(image, np.array([[40, 80, 120, 150, 6], [180, 80, 260, 150, 2]]))
    for x1, track_id, text in [(40, 6, (255, 255, 255)), (180, 2, (0, 0, 0))]:
        colour = id_colour(track_id)
        height, width = tag_above(drawn, x1, 80, colour), tag_width(drawn, x1, 80, colour)
        assert height >= 8 and width >= 6, (track_id, height, width)
        tag = drawn[80 - height - 1 : 80 - 1, x1 + 1 : x1 + 1 + width].reshape(-1, 3)
        assert (tag == colour).all(axis=1).mean() > 0.5  # a filled tag of the id's colour
        is_text = (np.abs(tag.astype(int) - text).max(axis=1) < 40).sum()
        assert is_text >= 5, (track_id, is_text)  # white on the blue, black on the green
        other = (np.abs(tag.astype(int) - (255 - np.array(text))).max(axis=1) < 40).sum()
        assert other == 0, (track_id, other)


def test_tag_goes_inside_a_box_at_the_top_and_lines_and_text_grow_with_the_frame():
    small = TrackDrawer().draw(noise(240, 320), np.array([[40.0, 0.0, 120.0, 150.0, 6.0]]))
    assert colour_at(small, 42, 5) == id_colour(6)  # no room above: the tag is inside
    big_frame = noise(1080, 1920)
    big = TrackDrawer().draw(big_frame, np.array([[400.0, 300.0, 700.0, 900.0, 6.0]]))
    assert tag_above(big, 400, 300, id_colour(6)) >= 1080 / 40  # readable at full size
    assert colour_at(big, 404, 600) == id_colour(6)  # a line 5 px wide or more
    assert colour_at(big, 410, 600) == colour_at(big_frame, 410, 600)


def test_the_input_is_left_as_it_was_and_the_result_is_a_new_array():
    image = noise()
    before = image.copy()
    drawer = TrackDrawer()
    for x in (10.0, 30.0, 50.0):
        rows = np.array([[x, 20.0, x + 60, 120.0, 1.0], [150.0, 60.0, 280.0, 190.0, 2.0]])
        drawn = drawer.draw(image, rows)
    np.testing.assert_array_equal(image, before)
    assert drawn.dtype == np.uint8 and drawn.shape == image.shape
    assert not np.shares_memory(drawn, image)
    assert (drawn != image).any()


# -- trails --------------------------------------------------------------------------------


def moving(drawer: TrackDrawer, image: np.ndarray, frames: int) -> np.ndarray:
    """Draws id 4 moving 30 px right a frame, box k at columns 10+30k..30+30k, rows 40..100:
    its bottom centres are (20 + 30k, 100)."""
    for k in range(frames):
        drawn = drawer.draw(image, np.array([[10.0 + 30 * k, 40.0, 30.0 + 30 * k, 100.0, 4.0]]))
    return drawn


def test_the_trail_joins_the_bottom_centres_of_earlier_frames():
    image = noise()
    drawer = TrackDrawer(trail=30)
    drawn = moving(drawer, image, 5)
    assert drawer.trail_points(4) == [(20.0 + 30 * k, 100.0) for k in range(5)]
    colour = id_colour(4)
    for x in (35, 65, 95, 125):  # between each pair of frames, where no box is now
        assert colour_at(drawn, x, 100) == colour, x
    assert colour_at(drawn, 35, 85) == colour_at(image, 35, 85)  # off the line
    assert colour_at(drawn, 12, 100) == colour_at(image, 12, 100)  # before its first point


def test_the_trail_reaches_back_trail_frames_and_no_further():
    image = noise()
    drawer = TrackDrawer(trail=2)
    drawn = moving(drawer, image, 5)
    assert len(drawer.trail_points(4)) == 3  # this frame and the two before
    assert colour_at(drawn, 95, 100) == id_colour(4)  # frames 3 to 4
    assert colour_at(drawn, 35, 100) == colour_at(image, 35, 100)  # frames 1 to 2: gone
    assert colour_at(drawn, 65, 100) == colour_at(image, 65, 100)
    no_trail = moving(TrackDrawer(trail=0), image, 5)
    assert colour_at(no_trail, 125, 100) == colour_at(image, 125, 100)


def test_an_id_unseen_for_more_than_trail_frames_is_forgotten():
    image = noise()
    drawer = TrackDrawer(trail=3)
    drawer.draw(image, np.array([[10.0, 40.0, 30.0, 100.0, 1.0]]))
    for _ in range(3):
        drawer.draw(image, np.zeros((0, 5)))
    assert drawer.ids == [1]  # unseen for 3 frames: its point is still in the trail's reach
    drawer.draw(image, [])
    assert drawer.ids == [] and drawer.trail_points(1) == []
    drawn = drawer.draw(image, np.array([[250.0, 40.0, 270.0, 100.0, 1.0]]))
    assert drawer.trail_points(1) == [(260.0, 100.0)]
    assert colour_at(drawn, 140, 100) == colour_at(image, 140, 100)  # no line to the old place
    # an id missed for fewer frames is bridged
    drawer.draw(image, [])
    drawn = drawer.draw(image, np.array([[190.0, 40.0, 210.0, 100.0, 1.0]]))
    assert colour_at(drawn, 230, 100) == id_colour(1)


def test_memory_stays_bounded_over_a_long_sequence():
    drawer = TrackDrawer(trail=5)
    image = np.zeros((48, 64, 3), np.uint8)
    for frame in range(1, 151):  # a new id every frame, and id 0 throughout
        drawer.draw(image, np.array([[10, 10, 20, 30, 0], [30, 10, 40, 30, 1000 + frame]]))
        assert len(drawer.ids) <= 7
    assert len(drawer.trail_points(0)) == 6


# -- out of the frame and bad input --------------------------------------------------------


def test_boxes_out_of_the_frame_are_cut_and_never_crash():
    image = noise()
    height, width = image.shape[:2]
    rows = np.array(
        [
            [-500.0, -500.0, -400.0, -400.0, 1],  # wholly out, each side
            [400.0, 50.0, 500.0, 100.0, 2],
            [50.0, 300.0, 100.0, 400.0, 3],
            [-1e12, -1e12, 1e12, 1e12, 4],  # around the whole frame
            [250.0, 50.0, 400.0, 150.0, 5],  # partly out on the right
            [-60.0, -40.0, 40.0, 60.0, 6],  # partly out at the top-left
            [80.0, 80.0, 80.0, 80.0, 7],  # no size
            [150.0, 150.0, 120.0, 120.0, 8],  # corners swapped
            [np.nan, 0.0, 10.0, 10.0, 9],  # not finite: passed over
            [0.0, np.inf, 10.0, 10.0, 10],
        ]
    )
    drawer = TrackDrawer()
    drawn = drawer.draw(image, rows)
    assert drawn.shape == image.shape
    # the box reaching out on the right has no outline at the frame's border
    assert colour_at(drawn, width - 1, 100) == colour_at(image, width - 1, 100)
    assert colour_at(drawn, 250, 100) == id_colour(5)
    # the one out at the top-left shows its right and bottom edges and its tag in the frame
    assert colour_at(drawn, 39, 30) == id_colour(6)
    assert colour_at(drawn, 20, 59) == id_colour(6)
    assert colour_at(drawn, 1, 1) == id_colour(6)
    # trails to far-away points are cut, not walked
    drawer.draw(image, rows[:8] + [1e9, 1e9, 1e9, 1e9, 0])
    drawn = drawer.draw(image, rows)
    assert drawn.shape == image.shape
    assert 9 not in drawer.ids and 10 not in drawer.ids


def test_bad_arguments_name_themselves():
    drawer = TrackDrawer()
    frame = noise(20, 30)
    for bad in (frame.astype(np.float32), frame[:, :, 0], frame[:, :, :2], frame.tolist()):
        with pytest.raises(ValueError, match="^image: expected an \\(H, W, 3\\) uint8"):
            drawer.draw(bad, np.zeros((0, 5)))
    for bad in (np.zeros((2, 4)), [["a", "b", "c", "d", "e"]], [[1, 2, 3, 4, 5], [1, 2]]):
        with pytest.raises(ValueError, match="^tracks: expected an \\(M, 5\\) array"):
            drawer.draw(frame, bad)
    with pytest.raises(ValueError, match="^tracks: id 2.5 in column 4"):
        drawer.draw(frame, [[1, 2, 3, 4, 2.5]])
    for bad in (-1, 2.0, True, "30"):
        with pytest.raises(ValueError, match="^trail must be an integer >= 0"):
            TrackDrawer(trail=bad)
    assert drawer.frame_count == 0  # a refused frame is not counted
    assert drawer.draw(frame, []).shape == frame.shape


# -- frames of a folder --------------------------------------------------------------------


def test_frame_paths_reads_frame_numbers_in_order(tmp_path):
    names = ["000010.PNG", "000002.jpg", "000001.jpeg", "3.bmp", "notes.txt", "000004.gif"]
    for name in [*names, "abc.jpg", "0005a.jpg", "².jpg"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "000006.jpg").mkdir()  # a folder, not a frame
    found = frame_paths(tmp_path)
    assert list(found) == [1, 2, 3, 10]
    assert found[1] == os.path.join(str(tmp_path), "000001.jpeg")
    assert found[10] == os.path.join(str(tmp_path), "000010.PNG")


def test_frame_paths_errors_name_the_folder(tmp_path):
    missing = tmp_path / "img1"
    with pytest.raises(ValueError, match=f"^{missing}: not a readable folder"):
        frame_paths(missing)
    missing.mkdir()
    (missing / "readme.txt").write_text("")
    with pytest.raises(ValueError, match=f"^{missing}: no images"):
        frame_paths(missing)
    (missing / "000001.jpg").write_bytes(b"")
    (missing / "1.png").write_bytes(b"")
    with pytest.raises(ValueError, match=f"^{missing}: 000001.jpg and 1.png are both frame 1"):
        frame_paths(missing)


# -- writing -------------------------------------------------------------------------------

SOLID = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (250, 250, 0), (40, 40, 40)]


def solid_frames(height: int = 100, width: int = 300):
    """A generator of frames of one colour each, as a drawing loop would yield them."""
    for colour in SOLID:
        yield np.full((height, width, 3), colour, dtype=np.uint8)


def test_write_gif_reads_back_frame_by_frame(tmp_path):
    path = tmp_path / "seq.gif"
    write_gif(solid_frames(), path, fps=4, max_width=120)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(SOLID)
        assert gif.size == (120, 40)  # 300x100 shrunk, its aspect kept
        assert gif.info["loop"] == 0
        for index, colour in enumerate(SOLID):
            gif.seek(index)
            assert gif.info["duration"] == 250
            pixel = np.asarray(gif.convert("RGB"))[20, 60]
            assert np.abs(pixel.astype(int) - colour).max() <= 8, (index, pixel)
    assert os.listdir(tmp_path) == ["seq.gif"]
    # narrower frames keep their size; 30 fps is 30 ms, GIF's hundredths
    write_gif(solid_frames(30, 50), path, fps=30)
    with Image.open(path) as gif:
        assert gif.size == (50, 30) and gif.info["duration"] == 30


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "seq.gif"

    def broken():
        frames = solid_frames()
        yield next(frames)
        yield next(frames)
        raise RuntimeError("reader failed")

    with pytest.raises(RuntimeError, match="reader failed"):
        write_gif(broken(), path)
    assert os.listdir(tmp_path) == []
    path.write_bytes(b"earlier")
    frames = list(solid_frames())
    frames[3] = frames[3][:50]
    with pytest.raises(ValueError, match="^frames\\[3\\]: shape \\(50, 300, 3\\)"):
        write_gif(frames, path)
    with pytest.raises(ValueError, match="^frames: no frames"):
        write_gif([], path)
    with pytest.raises(ValueError, match="^frames\\[0\\]: expected an \\(H, W, 3\\) uint8"):
        write_gif([frames[0].astype(float)], path)
    assert os.listdir(tmp_path) == ["seq.gif"] and path.read_bytes() == b"earlier"
    for fps in (0, -1, 60, float("nan"), True):
        with pytest.raises(ValueError, match="^fps must be a number in \\(0, 50\\]"):
            write_gif(frames, path, fps=fps)
    with pytest.raises(ValueError, match="^max_width must be an integer >= 1"):
        write_gif(frames, path, max_width=0)


def test_write_video_reads_back(tmp_path):
    cv2 = require_module("cv2", TEST_EXTRA)
    path = tmp_path / "seq.mp4"
    write_video(solid_frames(65, 91), path, fps=5)  # odd sizes, cut to even ones
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 90
        assert capture.get(cv2.CAP_PROP_FRAME_HEIGHT) == 64
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
        read = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            read.append(frame[32, 45, ::-1].astype(int))  # BGR back to RGB
    finally:
        capture.release()
    assert len(read) == len(SOLID)
    for pixel, colour in zip(read, SOLID):
        assert np.abs(pixel - colour).max() <= 24, (pixel, colour)
    with pytest.raises(ValueError, match="^frames: no frames"):
        write_video([], tmp_path / "empty.mp4")
    assert sorted(os.listdir(tmp_path)) == ["seq.mp4"]


# -- imports -------------------------------------------------------------------------------


def test_importing_the_module_loads_neither_tensorflow_nor_keras_nor_opencv():
    code = (
        "import sys, keras_zoo.track.draw; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'cv2'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
