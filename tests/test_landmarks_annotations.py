"""The readers of facial-landmark datasets (keras_zoo.tasks.landmarks.annotations): the WFLW
annotation file and folder, trees of images with iBUG .pts files, the errors each gives for bad
input, and the horizontal-flip tables of 68 and 98 points."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from keras_zoo.tasks.landmarks.annotations import (
    MAX_PTS_BYTES,
    MIRROR,
    WFLW_TEST,
    WFLW_TRAIN,
    LandmarkData,
    read_landmarks,
    read_pts,
    read_wflw,
)

WFLW_EXPECTED = (
    "expected 207 fields (196 coordinates, 4 box numbers, 6 attribute flags, the image path)"
)
# PFLD-pytorch's data/Mirror98.txt, the table WFLW's flips use
PFLD_MIRROR98 = [
    32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
    9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 46, 45, 44, 43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33, 41, 40,
    39, 38, 51, 52, 53, 54, 59, 58, 57, 56, 55, 72, 71, 70, 69, 68, 75, 74, 73, 64, 63, 62, 61,
    60, 67, 66, 65, 82, 81, 80, 79, 78, 77, 76, 87, 86, 85, 84, 83, 92, 91, 90, 89, 88, 95, 94,
    93, 97, 96,
]  # fmt: skip
MIDLINE = {  # the points on a face's midline: the nose, the chin, the middle of the lips
    68: {8, 27, 28, 29, 30, 33, 51, 57, 62, 66},
    98: {16, 51, 52, 53, 54, 57, 79, 85, 90, 94},
}
WIDTH = 100.0  # of the synthetic faces' images: the midline is x = 50


# Synthetic faces built from each layout's description, not from its mirror table: every
# feature is a run of points along an arc around its centre, at angles measured anticlockwise
# from the right (y pointing down in the image). A feature on the left of the face mirrors one
# on the right at angles 180 - a, one on the midline mirrors itself.


def _arc(cx: float, cy: float, rx: float, ry: float, angles) -> np.ndarray:
    a = np.deg2rad(np.asarray(angles, np.float64))
    return np.stack([cx + rx * np.cos(a), cy - ry * np.sin(a)], 1)


def _steps(count: int, every: float, skip=()) -> list[float]:
    """`count` angles from 180 down by `every` degrees, clockwise on the screen."""
    return [180 - every * j for j in range(count) if j not in skip]


def _column(x: float, ys) -> np.ndarray:
    return np.stack([np.full(len(ys), x), np.asarray(ys, np.float64)], 1)


def face68() -> np.ndarray:
    """A symmetric face in the iBUG layout: the jaw from the left ear through the chin, the
    left brow (17-21) from its outer end, the right (22-26) from its inner end, the bridge of
    the nose, the nostrils left to right, each eye from its left corner clockwise (36 the left
    eye's outer corner, 42 the right eye's inner), the lips from the left corner clockwise."""
    c = WIDTH / 2
    brow = lambda d: 30 - 0.2 * d  # noqa: E731  (a brow's height, by the distance from the midline)
    left_brow = [(c - d, brow(d)) for d in (32, 26, 20, 14, 8)]
    right_brow = [(c + d, brow(d)) for d in (8, 14, 20, 26, 32)]
    return np.concatenate(
        [
            _arc(c, 40, 40, 45, [180 + 180 * i / 16 for i in range(17)]),
            np.array(left_brow + right_brow),
            _column(c, [35, 38, 41, 44]),
            np.stack([c + 4 * np.arange(-2, 3), 50 + np.abs(np.arange(-2, 3))], 1),
            _arc(c - 18, 35, 6, 3, _steps(6, 60)),
            _arc(c + 18, 35, 6, 3, _steps(6, 60)),
            _arc(c, 65, 12, 6, _steps(12, 30)),
            _arc(c, 65, 8, 3, _steps(8, 45)),
        ]
    )


def face98() -> np.ndarray:
    """A symmetric face in WFLW's layout: the jaw from the left ear, each brow as a ring
    clockwise (33 the left brow's outer end, 42 the right's inner upper point; their inner and
    outer tips left out), the nose ridge, the nostrils, each eye from its left corner
    clockwise, the lips from the left corner clockwise, the pupils."""
    c = WIDTH / 2
    return np.concatenate(
        [
            _arc(c, 40, 40, 45, [180 + 180 * i / 32 for i in range(33)]),
            _arc(c - 20, 25, 10, 2, _steps(10, 36, skip=(5,))),
            _arc(c + 20, 25, 10, 2, _steps(10, 36, skip=(0,))),
            _column(c, [33, 36, 39, 42]),
            np.stack([c + 4 * np.arange(-2, 3), 50 + np.abs(np.arange(-2, 3))], 1),
            _arc(c - 18, 35, 6, 3, _steps(8, 45)),
            _arc(c + 18, 35, 6, 3, _steps(8, 45)),
            _arc(c, 65, 12, 6, _steps(12, 30)),
            _arc(c, 65, 8, 3, _steps(8, 45)),
            np.array([[c - 18, 35], [c + 18, 35]]),
        ]
    )


FACES = {68: face68, 98: face98}


# the mirror tables


@pytest.mark.parametrize("k", [68, 98])
def test_mirror_table_is_an_involutive_permutation(k):
    table = np.array(MIRROR[k])
    assert sorted(table) == list(range(k))
    assert (table[table] == np.arange(k)).all()


def test_mirror98_is_pflds_table():
    assert list(MIRROR[98]) == PFLD_MIRROR98


@pytest.mark.parametrize("k", [68, 98])
def test_mirror_table_fixes_the_midline_points(k):
    fixed = {i for i, j in enumerate(MIRROR[k]) if i == j}
    assert fixed == MIDLINE[k]
    face = FACES[k]()
    on_midline = set(np.flatnonzero(np.isclose(face[:, 0], WIDTH / 2, atol=1e-9)).tolist())
    assert on_midline == fixed


@pytest.mark.parametrize("k", [68, 98])
def test_flipping_a_symmetric_face_gives_it_back(k):
    face = FACES[k]()
    assert face.shape == (k, 2)
    flipped = np.stack([WIDTH - face[:, 0], face[:, 1]], 1)
    assert not np.allclose(flipped, face)  # the flip moves the points off their indices ...
    np.testing.assert_allclose(flipped[list(MIRROR[k])], face, atol=1e-9)  # ... and back
    # an asymmetric face: flipping twice with the table is where it started
    rng = np.random.default_rng(0)
    points = face + rng.normal(0, 2, face.shape)
    once = np.stack([WIDTH - points[:, 0], points[:, 1]], 1)[list(MIRROR[k])]
    twice = np.stack([WIDTH - once[:, 0], once[:, 1]], 1)[list(MIRROR[k])]
    np.testing.assert_allclose(twice, points, atol=1e-9)


# .pts files


def _pts_text(points, n_points=None) -> str:
    count = len(points) if n_points is None else n_points
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    return f"version: 1\nn_points:  {count}\n{{\n{body}\n}}\n"


def _write(path, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def _image(path, size=(12, 10), colour=(200, 120, 60)) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return str(path)


def test_read_pts(tmp_path):
    face = face68()
    path = _write(tmp_path / "a.pts", "\ufeff" + _pts_text(face) + "\n\n")
    points = read_pts(path)
    assert points.dtype == np.float32 and points.shape == (68, 2)
    np.testing.assert_allclose(points, face, atol=1e-3)
    np.testing.assert_array_equal(read_pts(path, points=68), points)


def _pts_cases(face):
    lines = _pts_text(face[:3]).splitlines()
    return {
        "count": (_pts_text(face[:3], n_points=4), ": expected 4 points (n_points, line 2), "
                  "the file has 3 point lines"),
        "number": ("\n".join(lines[:4] + ["1.5 y"] + lines[5:]), ", line 5: expected a point "
                   "'x y' (two finite numbers), found '1.5 y'"),
        "three": ("\n".join(lines[:4] + ["1 2 3"] + lines[5:]), ", line 5: expected a point"),
        "nan": ("\n".join(lines[:4] + ["nan 2"] + lines[5:]), ", line 5: expected a point"),
        "open": ("\n".join(lines[:2] + lines[3:]), ", line 3: expected a header line 'key: "
                 "value' (version: 1, n_points: K) or '{', found"),
        "no open": ("version: 1\nn_points: 3\n", ": expected '{' after the header (version: 1, "
                    "n_points: K), found none"),
        "close": ("\n".join(lines[:-1]), ": expected '}' after the points, the file ends at "
                  "line 6"),
        "n_points": ("\n".join(lines[:1] + lines[2:]), ": expected an 'n_points: K' line "
                     "before '{' (line 2)"),
        "bad n_points": ("n_points: three\n" + "\n".join(lines[2:]), ", line 1: expected "
                         "'n_points: K', K a whole number above 0, found 'n_points: three'"),
        "after": ("\n".join(lines) + "\n1 2\n", ", line 8: expected nothing after '}', found "
                  "'1 2'"),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_pts_cases(np.zeros((3, 2)))))
def test_read_pts_errors_name_the_file_and_line(tmp_path, case):
    text, expected = _pts_cases(np.arange(6.0).reshape(3, 2))[case]
    path = _write(tmp_path / "bad.pts", text)
    with pytest.raises(ValueError) as err:
        read_pts(path)
    assert str(err.value).startswith(path + expected), str(err.value)


def test_read_pts_point_count_and_bounds(tmp_path):
    path = _write(tmp_path / "a.pts", _pts_text(face68()))
    with pytest.raises(
        ValueError, match=f"^{re.escape(path)}: 98 points expected, the file has 68$"
    ):
        read_pts(path, points=98)
    big = tmp_path / "big.pts"
    with open(big, "wb") as f:
        f.truncate(MAX_PTS_BYTES + 1)  # sparse: refused by its size, never read
    with pytest.raises(ValueError) as err:
        read_pts(big)
    assert str(err.value).startswith(f"{big}: {MAX_PTS_BYTES + 1} bytes, over the 4 MiB")
    binary = tmp_path / "binary.pts"
    binary.write_bytes(b"\xff\xfe\x00n_points")
    with pytest.raises(ValueError, match="binary.pts: not UTF-8 text"):
        read_pts(binary)
    with pytest.raises(ValueError, match="none.pts: no such file"):
        read_pts(tmp_path / "none.pts")


# WFLW


def _wflw_line(points, box, flags, image: str) -> str:
    numbers = [f"{v:.6f}" for v in np.asarray(points).ravel()] + [str(b) for b in box]
    return " ".join(numbers + [str(f) for f in flags] + [image])


def _wflw(tmp_path, train_faces=3, test_faces=2):
    """A WFLW folder at tmp_path/WFLW: its annotations, training and test, and images (the
    first training image has two faces); the faces' points by subset."""
    root = tmp_path / "WFLW"
    folder = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    base = face98()
    faces = {}
    for name, count in ((WFLW_TRAIN, train_faces), (WFLW_TEST, test_faces)):
        lines, faces[name] = [], []
        for i in range(count):
            points = base + [i, 2 * i]
            image = f"{i // 2}--Event/{name[20:-4]}_{max(i - 1, 0)}.jpg"
            _image(root / "WFLW_images" / image)
            lines.append(_wflw_line(points, (10, 20 + i, 90, 95), (i % 2, 0, 1, 0, 0, 1), image))
            faces[name].append(points)
        _write(folder / name, "\n".join(lines) + "\n")
    return root, folder, faces


def test_read_wflw_finds_the_images_folder(tmp_path):
    root, folder, faces = _wflw(tmp_path)
    data = read_wflw(folder / WFLW_TRAIN)
    images = os.path.join(os.path.abspath(root), "WFLW_images")
    assert data.root == str(folder / WFLW_TRAIN)
    assert data.files == tuple(
        os.path.join(images, f) for f in ("0--Event/train_0.jpg", "0--Event/train_0.jpg",
                                          "1--Event/train_1.jpg")
    )  # fmt: skip
    assert data.points.dtype == np.float32 and data.points.shape == (3, 98, 2)
    np.testing.assert_allclose(data.points, np.array(faces[WFLW_TRAIN]), atol=1e-4)
    np.testing.assert_array_equal(
        data.boxes, [[10, 20, 90, 95], [10, 21, 90, 95], [10, 22, 90, 95]]
    )
    assert data.boxes.dtype == np.float32
    assert data.attributes.dtype == np.int8
    np.testing.assert_array_equal(data.attributes[:, 0], [0, 1, 0])
    assert data.subsets is None and data.num_points == 98 and data.mirror == MIRROR[98]
    assert data.targets.shape == (3, 196 + 6) and data.targets.dtype == np.float32
    np.testing.assert_array_equal(data.targets[:, 196:], data.attributes)
    np.testing.assert_array_equal(data.targets[1, :4], data.points[1, :2].ravel())
    assert data.names == tuple(f"{i}.{axis}" for i in range(98) for axis in "xy")
    # given: the folder the paths are relative to
    given = read_wflw(folder / WFLW_TRAIN, images=root / "WFLW_images")
    assert given.files[0] == os.path.join(str(root / "WFLW_images"), "0--Event/train_0.jpg")
    # the images beside the file
    beside = tmp_path / "beside"
    _image(beside / "0--Event" / "a.jpg")
    path = _write(
        beside / "list.txt", _wflw_line(face98(), (0, 0, 9, 9), [0] * 6, "0--Event/a.jpg")
    )
    assert read_wflw(path).files == (os.path.join(os.path.abspath(beside), "0--Event/a.jpg"),)


def test_read_landmarks_reads_wflw_files_and_folders(tmp_path):
    root, folder, faces = _wflw(tmp_path)
    single = read_landmarks(folder / WFLW_TEST)  # the file: not split
    assert single.subsets is None and len(single.files) == 2
    for given in (root, tmp_path):  # WFLW/ and the folder above it
        data = read_landmarks(given, verify=False)
        assert data.root == str(given)
        assert data.subsets == ("train", "test") and data.training_images == 3
        assert len(data.files) == 5 and data.points.shape == (5, 98, 2)
        np.testing.assert_allclose(
            data.points, np.array(faces[WFLW_TRAIN] + faces[WFLW_TEST]), atol=1e-4
        )
        assert data.boxes.shape == (5, 4) and data.attributes.shape == (5, 6)
        train, val = data.split(0.5, seed=1)  # the subsets: the split and seed do not apply
        assert train.tolist() == [0, 1, 2] and val.tolist() == [3, 4]
    assert read_landmarks(root, verify=True, points=98).files == data.files
    with pytest.raises(ValueError, match=r"^data '.*WFLW': 68 points expected, WFLW's faces"):
        read_landmarks(root, points=68)


def test_read_wflw_errors_name_the_file_and_line(tmp_path):
    root, folder, _ = _wflw(tmp_path)
    path = str(folder / WFLW_TRAIN)
    with open(path) as f:
        good = f.read().splitlines()

    def error(lines, **kwargs) -> str:
        _write(path, "\n".join(lines) + "\n")
        with pytest.raises(ValueError) as err:
            read_wflw(path, **kwargs)
        return str(err.value)

    fields = good[1].split()
    assert error([good[0], " ".join(fields[1:])]).startswith(
        f"{path}, line 2: {WFLW_EXPECTED}, found 206"
    )
    assert error([good[0], "", good[1] + " extra"]).startswith(
        f"{path}, line 3: {WFLW_EXPECTED}, found 208"
    )
    assert error([" ".join(["x"] + fields[1:])]).startswith(
        f"{path}, line 1: field 1 (coordinate) is 'x', not a finite number; {WFLW_EXPECTED}"
    )
    assert error([" ".join(fields[:197] + ["inf"] + fields[198:])]).startswith(
        f"{path}, line 1: field 198 (box number) is 'inf', not a finite number"
    )
    assert error([" ".join(fields[:204] + ["2"] + fields[205:])]).startswith(
        f"{path}, line 1: field 205 (the occlusion flag) is '2': expected 0 or 1"
    )
    missing = fields[:-1] + ["9--None/gone.jpg"]
    assert error([good[0], good[1], " ".join(missing), " ".join(missing[:-1] + ["x.jpg"])]) == (
        f"{path}, line 3: image 9--None/gone.jpg is not in "
        f"{os.path.abspath(root / 'WFLW_images')} (2 of the file's 3 images are missing)"
    )
    assert error([" ".join(missing)]).startswith(
        f"{path}: the image of its first line, 9--None/gone.jpg, is neither beside the file nor "
        "in a WFLW_images folder above it"
    )
    assert error(good, images=tmp_path / "nowhere").startswith("images ")
    assert error(["", " "]).startswith(f"{path}: no faces; {WFLW_EXPECTED}")


def test_read_landmarks_wants_both_wflw_files(tmp_path):
    root, folder, _ = _wflw(tmp_path)
    os.remove(folder / WFLW_TEST)
    with pytest.raises(ValueError) as err:
        read_landmarks(root, argument="train_data")
    assert str(err.value).startswith(
        f"train_data {str(root)!r}: {folder} holds {WFLW_TRAIN} but not {WFLW_TEST}"
    )


# trees of images with .pts files


def _pts_tree(root, layout: dict[str, int], k: int = 68) -> dict[str, list[np.ndarray]]:
    """Images with .pts files beside them, `layout[folder]` of them in each folder."""
    faces: dict[str, list[np.ndarray]] = {}
    for folder, count in layout.items():
        faces[folder] = []
        for i in range(count):
            points = FACES[k]() + i
            _image(root / folder / f"face_{i}.png")
            _write(root / folder / f"face_{i}.pts", _pts_text(points))
            faces[folder].append(points)
    return faces


def test_read_landmarks_reads_a_split_pts_tree(tmp_path):
    faces = _pts_tree(tmp_path, {"train/helen": 2, "train/lfpw": 1, "test/ibug": 2})
    _image(tmp_path / "train" / "helen" / "no_points.jpg")
    _write(tmp_path / "test" / "ibug" / "no_image.pts", _pts_text(face68()))
    _write(tmp_path / "test" / "readme.txt", "300W")
    with pytest.warns(UserWarning) as caught:
        data = read_landmarks(tmp_path, argument="train_data", points=68)
    messages = [str(w.message) for w in caught]
    assert messages[0].startswith("train_data: left out 1 image(s) without a same-stem .pts file")
    assert messages[0].endswith("no_points.jpg")
    assert messages[1].startswith("train_data: left out 1 .pts file(s) without a same-stem image")
    assert isinstance(data, LandmarkData)
    assert data.subsets == ("train", "test") and data.training_images == 3
    assert [os.path.relpath(f, tmp_path) for f in data.files] == [
        "train/helen/face_0.png", "train/helen/face_1.png", "train/lfpw/face_0.png",
        "test/ibug/face_0.png", "test/ibug/face_1.png",
    ]  # fmt: skip
    expected = faces["train/helen"] + faces["train/lfpw"] + faces["test/ibug"]
    np.testing.assert_allclose(data.points, np.array(expected), atol=1e-3)
    assert data.boxes is None and data.attributes is None
    assert data.targets.shape == (5, 136 + 6) and data.mirror == MIRROR[68]
    assert not data.targets[:, 136:].any()  # no attribute flags in .pts data
    train, val = data.split(None, seed=0)
    assert train.tolist() == [0, 1, 2] and val.tolist() == [3, 4]


def test_an_unsplit_pts_tree_holds_out_faces_at_random(tmp_path):
    _pts_tree(tmp_path, {"afw": 5, "lfpw/trainset": 3})
    data = read_landmarks(tmp_path, verify=False)
    assert data.subsets is None and len(data.files) == 8
    train, val = data.split(0.25, seed=3)
    assert len(val) == 2 and len(train) == 6
    assert sorted(train.tolist() + val.tolist()) == list(range(8))
    again = data.split(0.25, seed=3)
    assert again[0].tolist() == train.tolist() and again[1].tolist() == val.tolist()
    assert len(data.split(0.01, seed=0)[1]) == 1 and len(data.split(0.99, seed=0)[0]) == 1
    with pytest.raises(ValueError, match="does not come split: give a validation_split"):
        data.split(None, seed=0)


def test_faces_of_a_dataset_have_the_same_points(tmp_path):
    _pts_tree(tmp_path, {"a": 2})
    odd = _write(tmp_path / "a" / "face_1.pts", _pts_text(face68()[:5]))
    with pytest.raises(ValueError) as err:
        read_landmarks(tmp_path, verify=False)
    assert str(err.value).startswith(
        f"{odd}: 5 points, where {tmp_path / 'a' / 'face_0.pts'} has 68: every face of data"
    )
    with pytest.raises(ValueError) as err:
        read_landmarks(tmp_path, points=98, verify=False)
    assert str(err.value) == f"{tmp_path / 'a' / 'face_0.pts'}: 98 points expected, the file has 68"


def test_read_landmarks_checks_the_images(tmp_path):
    _pts_tree(tmp_path, {"a": 2})
    assert len(read_landmarks(tmp_path, verify=True).files) == 2
    (tmp_path / "a" / "face_1.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"face_1.png is not a readable image"):
        read_landmarks(tmp_path, verify=True)
    assert len(read_landmarks(tmp_path, verify=False).files) == 2


def test_read_landmarks_names_the_layouts_it_reads(tmp_path):
    layouts = "expected a WFLW annotation file (list_98pt_rect_attr_train.txt), a WFLW folder"
    _image(tmp_path / "images" / "a.png")
    for root in (tmp_path / "images", tmp_path / "images" / "a.png"):
        with pytest.raises(ValueError) as err:
            read_landmarks(root, argument="train_data")
        assert str(err.value).startswith(f"train_data {str(root)!r}"), str(err.value)
        assert layouts in str(err.value)
    with pytest.raises(ValueError, match="^data '.*nowhere': no such file or folder"):
        read_landmarks(tmp_path / "nowhere")
    pts = _write(tmp_path / "one" / "a.pts", _pts_text(face68()))
    with pytest.raises(ValueError, match="^data '.*a.pts' is one face's .pts file"):
        read_landmarks(pts)
    _pts_tree(tmp_path / "only", {"train": 1})
    with pytest.raises(ValueError, match=r"^data '.*only' holds the split folder\(s\) train/ "):
        read_landmarks(tmp_path / "only")
    _pts_tree(tmp_path / "empty", {"train": 1})
    os.makedirs(tmp_path / "empty" / "val")
    with pytest.raises(ValueError, match="^data: '.*val' holds no images with a same-stem .pts"):
        read_landmarks(tmp_path / "empty")


def test_landmark_data_checks_its_shapes():
    with pytest.raises(ValueError, match=r"points: expected \(2, K, 2\)"):
        LandmarkData("r", ("a", "b"), np.zeros((2, 68, 3), np.float32))
    with pytest.raises(ValueError, match=r"boxes: expected \(1, 4\)"):
        LandmarkData("r", ("a",), np.zeros((1, 5, 2), np.float32), boxes=np.zeros((2, 4)))
    data = LandmarkData("r", ("a",), np.zeros((1, 5, 2), np.float32))
    assert data.mirror is None and data.num_points == 5
    with pytest.raises(ValueError, match="holds 1 face"):
        data.split(0.5, seed=0)
