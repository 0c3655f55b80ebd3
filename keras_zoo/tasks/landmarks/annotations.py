"""Facial-landmark datasets in: WFLW annotation files and image trees with iBUG .pts files.

Two layouts are read (`read_landmarks`, the task's `read`):

- WFLW (98 points): an annotation file such as list_98pt_rect_attr_train.txt, one face per line
  of 207 whitespace-separated fields: 196 coordinates (x0 y0 x1 y1 ...), the face box (x_min
  y_min x_max y_max), 6 attribute flags (pose, expression, illumination, make-up, occlusion,
  blur; 0 or 1) and the image path relative to the images folder. WFLW ships
  WFLW/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt
  beside WFLW/WFLW_images/; a folder holding the two files (WFLW/ or a folder above it) is read
  as training and validation data.
- 300W, iBUG, Helen, LFPW, AFW (68 points): a folder of images, each with a same-stem .pts file
  beside it (`read_pts`), searched recursively; where the folder holds train/ beside val/,
  validation/ or test/ (`keras_zoo.data.split_layout`), those are the training and validation
  data.

Coordinates are pixels of the image, x to the right and y down, as the files give them. A
horizontal flip (x -> width - x) turns a face's left side into its right: `MIRROR[K]` says which
of the original's points each of the flipped face's points is.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Sequence

import numpy as np

from keras_zoo.data import _some, _walk_images, split_layout, verify_images

# The horizontal-flip index tables: after x -> width - x, the flipped face's point i is the
# original's point MIRROR[K][i] (each table is its own inverse). 98: WFLW's (as PFLD's
# Mirror98.txt gives it); 68: the iBUG/300W layout.
# fmt: off
MIRROR: dict[int, tuple[int, ...]] = {
    98: (
        *range(32, -1, -1),  # jaw, ear to ear through the chin (16)
        46, 45, 44, 43, 42, 50, 49, 48, 47,  # eyebrows 33-41 <-> 42-50
        37, 36, 35, 34, 33, 41, 40, 39, 38,
        51, 52, 53, 54,  # nose ridge
        59, 58, 57, 56, 55,  # nostrils (57 the middle)
        72, 71, 70, 69, 68, 75, 74, 73,  # eyes 60-67 <-> 68-75
        64, 63, 62, 61, 60, 67, 66, 65,
        *range(82, 75, -1),  # outer lips 76-82, corner to corner over the top
        *range(87, 82, -1),  # outer lower lip 83-87 (79, 85 the middle)
        *range(92, 87, -1),  # inner lips 88-92, corner to corner (90 the middle)
        95, 94, 93,  # inner lower lip (94 the middle)
        97, 96,  # pupils
    ),
    68: (
        *range(16, -1, -1),  # jaw (8 the chin)
        *range(26, 16, -1),  # eyebrows 17-21 <-> 26-22
        27, 28, 29, 30,  # nose bridge
        *range(35, 30, -1),  # nostrils (33 the middle)
        45, 44, 43, 42, 47, 46,  # eyes 36-41 <-> 45-42, 47, 46
        39, 38, 37, 36, 41, 40,
        *range(54, 47, -1),  # outer lips 48-54, corner to corner over the top
        *range(59, 54, -1),  # outer lower lip 55-59 (51, 57 the middle)
        *range(64, 59, -1),  # inner lips 60-64, corner to corner (62 the middle)
        67, 66, 65,  # inner lower lip (66 the middle)
    ),
}
# fmt: on

WFLW_POINTS = 98
WFLW_FIELDS = 2 * WFLW_POINTS + 4 + 6 + 1
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
ATTRIBUTES = len(WFLW_ATTRIBUTES)  # the flags after the points in a face's target
WFLW_TRAIN = "list_98pt_rect_attr_train.txt"
WFLW_TEST = "list_98pt_rect_attr_test.txt"
WFLW_IMAGES = "WFLW_images"  # beside WFLW_annotations/ in the WFLW folder
WFLW_SUBSETS: tuple[str, str] = ("train", "test")
PTS_SUFFIX = ".pts"
MAX_PTS_BYTES = 4 << 20  # a 68-point .pts file is about 1 KB: larger is not one
_WFLW_DEPTH = 3  # how far below a root folder the WFLW annotation files are looked for
_MAX_LINE = 1 << 16  # characters of one WFLW line (about 2,000 in the real files)
_WFLW_EXPECTED = (
    f"expected {WFLW_FIELDS} fields ({2 * WFLW_POINTS} coordinates, 4 box numbers, "
    f"{len(WFLW_ATTRIBUTES)} attribute flags, the image path)"
)
_LAYOUTS = (
    "a WFLW annotation file (list_98pt_rect_attr_train.txt), a WFLW folder (holding "
    f"WFLW_annotations/list_98pt_rect_attr_train_test/{WFLW_TRAIN} and {WFLW_TEST} beside "
    f"{WFLW_IMAGES}/), or a folder of images each with a same-stem .pts file beside it "
    "(300W, iBUG, Helen, LFPW, AFW), optionally split into train/ and val/ or test/"
)


def point_names(count: int) -> tuple[str, ...]:
    """The names of the outputs of a model of `count` points: "0.x", "0.y", "1.x", ...

    >>> point_names(2)
    ('0.x', '0.y', '1.x', '1.y')
    """
    return tuple(f"{i}.{axis}" for i in range(count) for axis in "xy")


@dataclasses.dataclass(frozen=True)
class LandmarkData:
    """The faces of a landmark dataset (facial landmarks' `keras_zoo.tasks.TaskData`): face i
    is in image files[i] (an image with several faces appears once per face), its K points
    points[i] in pixels (x, y); WFLW gives each face's box (x_min, y_min, x_max, y_max) in
    `boxes` and its 6 attribute flags (`WFLW_ATTRIBUTES`) in `attributes`, None elsewhere.
    Data that comes split has `subsets`, the names of its training and validation data, and
    its first `training_images` faces are the training data's."""

    root: str
    files: tuple[str, ...]
    points: np.ndarray
    boxes: np.ndarray | None = None
    attributes: np.ndarray | None = None
    subsets: tuple[str, str] | None = None
    training_images: int = 0

    def __post_init__(self) -> None:
        n = len(self.files)
        if self.points.ndim != 3 or self.points.shape[0] != n or self.points.shape[2] != 2:
            raise ValueError(f"points: expected ({n}, K, 2), one (x, y) per point and face")
        for name, value, width in (("boxes", self.boxes, 4), ("attributes", self.attributes, 6)):
            if value is not None and value.shape != (n, width):
                raise ValueError(f"{name}: expected ({n}, {width}), found {value.shape}")

    @property
    def num_points(self) -> int:
        """K, the points of each face."""
        return int(self.points.shape[1])

    @property
    def targets(self) -> np.ndarray:
        """Each face's points and attribute flags as one row (N, 2K + 6) of x0, y0, x1, y1,
        ... in pixels, then WFLW's 6 flags (zeros for data without them)."""
        flags = (
            np.zeros((len(self.files), ATTRIBUTES), np.float32)
            if self.attributes is None
            else self.attributes.astype(np.float32)
        )
        points = self.points.reshape(len(self.files), -1)
        return np.concatenate([points, flags], 1).astype(np.float32)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the model's 2K outputs: "0.x", "0.y", "1.x", ... (`point_names`)."""
        return point_names(self.num_points)

    @property
    def mirror(self) -> tuple[int, ...] | None:
        """The horizontal-flip index table of these points (`MIRROR`), None for a K without
        one."""
        return MIRROR.get(self.num_points)

    def split(self, validation_split: float | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and validation faces: those of its training and validation
        data where it comes split (`subsets`; validation_split and seed do not apply), else the
        faces shuffled with `seed` and round(n * validation_split) of them (at least one, at
        most n - 1) held out."""
        n = len(self.files)
        if self.subsets is not None:
            return np.arange(self.training_images), np.arange(self.training_images, n)
        if validation_split is None:
            raise ValueError(f"data {self.root!r} does not come split: give a validation_split")
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split: expected a fraction in (0, 1), {validation_split}")
        if n < 2:
            raise ValueError(f"data {self.root!r} holds {n} face(s): holding one out needs two")
        order = np.random.default_rng(seed).permutation(n)
        n_val = min(n - 1, max(1, round(n * validation_split)))
        return np.sort(order[n_val:]), np.sort(order[:n_val])


def read_pts(path: str | os.PathLike, points: int | None = None) -> np.ndarray:
    """The points of an iBUG .pts file as (K, 2) float32 pixels (x, y): a header of "key:
    value" lines that says "n_points: K", then "{", K lines "x y", "}". With `points` (the
    model's K), a file of another K is an error. ValueError whose first line names the file
    (and the line) and what was expected; a file over `MAX_PTS_BYTES` is refused unread."""
    path = os.fspath(path)
    lines = _read_text(path).splitlines()
    count: int | None = None
    count_line = 0
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line == "{":
            break
        key, colon, value = line.partition(":")
        if not colon:
            raise ValueError(
                f"{path}, line {i}: expected a header line 'key: value' (version: 1, "
                f"n_points: K) or '{{', found {_shown(line)}"
            )
        if key.strip().lower() == "n_points":
            count, count_line = _whole(value), i
            if count is None or count < 1:
                raise ValueError(
                    f"{path}, line {i}: expected 'n_points: K', K a whole number above 0, "
                    f"found {_shown(line)}"
                )
    else:
        raise ValueError(
            f"{path}: expected '{{' after the header (version: 1, n_points: K), found none"
        )
    if count is None:
        raise ValueError(f"{path}: expected an 'n_points: K' line before '{{' (line {i})")
    coords: list[tuple[float, float]] = []
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line == "}":
            break
        fields = line.split()
        x, y = (_number(f) for f in fields) if len(fields) == 2 else (None, None)
        if x is None or y is None:
            raise ValueError(
                f"{path}, line {i}: expected a point 'x y' (two finite numbers), "
                f"found {_shown(line)}"
            )
        coords.append((x, y))
    else:
        raise ValueError(
            f"{path}: expected '}}' after the points, the file ends at line {len(lines)}"
        )
    extra = next((j for j in range(i, len(lines)) if lines[j].strip()), None)
    if extra is not None:
        raise ValueError(
            f"{path}, line {extra + 1}: expected nothing after '}}', found {_shown(lines[extra])}"
        )
    if len(coords) != count:
        raise ValueError(
            f"{path}: expected {count} points (n_points, line {count_line}), the file has "
            f"{len(coords)} point lines"
        )
    if points is not None and count != points:
        raise ValueError(f"{path}: {points} points expected, the file has {count}")
    return np.array(coords, np.float32)


def read_wflw(path: str | os.PathLike, images: str | os.PathLike | None = None) -> LandmarkData:
    """The faces of a WFLW annotation file (see the module's docstring), their image paths
    relative to `images`; without it, to the first of the file's folder and each of its
    ancestors' WFLW_images folder that holds the first line's image. ValueError whose first
    line names the file (and the line) for a line of another field count, a field that is not
    a number or a flag not 0 or 1, and for images that are missing (the first of them, and how
    many)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    lines: list[int] = []
    relative: list[str] = []
    numbers: list[np.ndarray] = []
    flags: list[list[int]] = []
    with open(path, encoding="utf-8-sig") as f:
        number = 0
        while True:
            number += 1
            try:
                line = f.readline(_MAX_LINE)
            except UnicodeDecodeError:
                raise ValueError(f"{path}, line {number}: not UTF-8 text") from None
            if not line:
                break
            if len(line) == _MAX_LINE and not line.endswith("\n"):
                raise ValueError(
                    f"{path}, line {number}: over {_MAX_LINE} characters; {_WFLW_EXPECTED}"
                )
            fields = line.split()
            if not fields:
                continue
            if len(fields) != WFLW_FIELDS:
                raise ValueError(f"{path}, line {number}: {_WFLW_EXPECTED}, found {len(fields)}")
            numbers.append(_wflw_numbers(fields[: 2 * WFLW_POINTS + 4], path, number))
            flags.append(_wflw_flags(fields[2 * WFLW_POINTS + 4 : -1], path, number))
            relative.append(fields[-1])
            lines.append(number)
    if not relative:
        raise ValueError(f"{path}: no faces; {_WFLW_EXPECTED} on each line")
    if images is None:
        folder = _wflw_images(path, relative[0])
    else:
        folder = os.fspath(images)
        if not os.path.isdir(folder):
            raise ValueError(f"images {folder!r}: no such folder")
    files = [os.path.join(folder, name) for name in relative]
    present = {file: os.path.isfile(file) for file in files}
    missing = [file for file, found in present.items() if not found]
    if missing:
        first = files.index(missing[0])
        raise ValueError(
            f"{path}, line {lines[first]}: image {relative[first]} is not in {folder} "
            f"({len(missing)} of the file's {len(present)} images are missing)"
        )
    table = np.stack(numbers)
    return LandmarkData(
        root=path,
        files=tuple(files),
        points=table[:, : 2 * WFLW_POINTS].reshape(-1, WFLW_POINTS, 2).astype(np.float32),
        boxes=table[:, 2 * WFLW_POINTS :].astype(np.float32),
        attributes=np.array(flags, np.int8),
    )


def read_landmarks(
    root: str | os.PathLike,
    *,
    argument: str = "data",
    points: int | None = None,
    verify: bool = True,
) -> LandmarkData:
    """The landmark dataset at `root` (the layouts of the module's docstring): a WFLW
    annotation file (`read_wflw`); a WFLW folder, WFLW/ or a folder up to a few levels above
    its annotation files, whose training and test files are the training and validation data;
    or a folder of images with same-stem .pts files (`read_pts`), an image without one left
    out with a warning, split where it holds train/ beside val/, validation/ or test/.
    Every face has the same K points, `points` where given (the model's). With verify=True
    every image is decoded as the input pipeline decodes it (`keras_zoo.data.verify_images`).
    ValueError naming `argument` (or the file at fault) and what was expected."""
    root = os.fspath(root)
    wflw_points = f"{argument} {root!r}: {points} points expected, WFLW's faces have {WFLW_POINTS}"
    if os.path.isfile(root):
        if root.lower().endswith(PTS_SUFFIX):
            raise ValueError(
                f"{argument} {root!r} is one face's .pts file: give the folder of the images "
                "and their .pts files"
            )
        if not root.lower().endswith(".txt"):
            raise ValueError(f"{argument} {root!r}: expected {_LAYOUTS}")
        if points not in (None, WFLW_POINTS):
            raise ValueError(wflw_points)
        data = read_wflw(root)
    elif os.path.isdir(root):
        folder = _wflw_folder(root, argument)
        if folder is None:
            data = _read_pts_tree(root, argument, points)
        elif points not in (None, WFLW_POINTS):
            raise ValueError(wflw_points)
        else:
            data = _wflw_pair(root, folder)
    else:
        raise ValueError(f"{argument} {root!r}: no such file or folder")
    if verify:
        verify_images(list(dict.fromkeys(data.files)))  # an image of several faces once
    return data


def _wflw_pair(root: str, folder: str) -> LandmarkData:
    """The training and test files of the WFLW annotation `folder` as one dataset."""
    train, test = (read_wflw(os.path.join(folder, name)) for name in (WFLW_TRAIN, WFLW_TEST))
    assert train.boxes is not None and test.boxes is not None  # read_wflw gives them
    assert train.attributes is not None and test.attributes is not None
    return LandmarkData(
        root=root,
        files=train.files + test.files,
        points=np.concatenate([train.points, test.points]),
        boxes=np.concatenate([train.boxes, test.boxes]),
        attributes=np.concatenate([train.attributes, test.attributes]),
        subsets=WFLW_SUBSETS,
        training_images=len(train.files),
    )


def _wflw_folder(root: str, argument: str) -> str | None:
    """The folder at most `_WFLW_DEPTH` levels below `root` (root itself included) that holds
    WFLW's training and test annotation files; None where none holds either. ValueError where
    one holds only one of them, or several hold them."""
    found: list[tuple[str, set[str]]] = []
    level = [root]
    for _ in range(_WFLW_DEPTH + 1):
        below: list[str] = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue  # unreadable: not where the annotations are
            names = {e.name for e in entries if e.name in (WFLW_TRAIN, WFLW_TEST) and e.is_file()}
            if names:
                found.append((folder, names))
            # the images folder holds thousands of images, not annotations
            below += [
                e.path
                for e in entries
                if e.is_dir() and not e.name.startswith(".") and e.name != WFLW_IMAGES
            ]
        level = below
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(
            f"{argument} {root!r} holds WFLW annotation files in several folders "
            f"({_some([folder for folder, _ in found])}): give one of them"
        )
    folder, names = found[0]
    if len(names) == 1:
        (have,) = names
        lacking = WFLW_TEST if have == WFLW_TRAIN else WFLW_TRAIN
        raise ValueError(
            f"{argument} {root!r}: {folder} holds {have} but not {lacking}: a WFLW folder holds "
            f"both; or give {argument} {os.path.join(folder, have)!r}, the one file"
        )
    return folder


def _read_pts_tree(root: str, argument: str, points: int | None) -> LandmarkData:
    """A folder of images with same-stem .pts files, split where `split_layout` says so."""
    try:
        subsets = split_layout(root, argument)
    except ValueError:
        found = ", ".join(
            f"{d}/" for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d))
        )
        raise ValueError(
            f"{argument} {root!r} holds the split folder(s) {found} without their pair: data "
            "that comes split holds train/ beside val/, validation/ or test/, each with images "
            "and their .pts files"
        ) from None
    folders = [root] if subsets is None else [os.path.join(root, name) for name in subsets]
    faces: list[tuple[list[str], list[str]]] = []
    unannotated: list[str] = []
    orphans: list[str] = []
    for folder in folders:
        files, annotations, lone_images, lone_pts = _pts_pairs(folder)
        if not files:
            if subsets is None:
                raise ValueError(f"{argument} {root!r} holds no landmark data: expected {_LAYOUTS}")
            raise ValueError(
                f"{argument}: {folder!r} holds no images with a same-stem .pts file beside them"
            )
        faces.append((files, annotations))
        unannotated += lone_images
        orphans += lone_pts
    for left_out, why in (
        (unannotated, "image(s) without a same-stem .pts file"),
        (orphans, ".pts file(s) without a same-stem image"),
    ):
        if left_out:
            warnings.warn(
                f"{argument}: left out {len(left_out)} {why}: {_some(left_out)}", stacklevel=3
            )
    files = [file for group, _ in faces for file in group]
    annotations = [pts for _, group in faces for pts in group]
    coords = [read_pts(pts, points) for pts in annotations]
    for pts, xy in zip(annotations, coords):
        if len(xy) != len(coords[0]):
            raise ValueError(
                f"{pts}: {len(xy)} points, where {annotations[0]} has {len(coords[0])}: every "
                f"face of {argument} {root!r} needs the same points"
            )
    return LandmarkData(
        root=root,
        files=tuple(files),
        points=np.stack(coords),
        subsets=subsets,
        training_images=len(faces[0][0]) if subsets is not None else 0,
    )


def _pts_pairs(folder: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """The images under `folder` that have a same-stem .pts file beside them and those files,
    then the images without one and the .pts files without an image."""
    images, others = _walk_images(folder)
    annotations = {os.path.splitext(p)[0]: p for p in others if p.lower().endswith(PTS_SUFFIX)}
    files: list[str] = []
    paired: list[str] = []
    lone: list[str] = []
    for image in images:
        pts = annotations.pop(os.path.splitext(image)[0], None)
        if pts is None:
            lone.append(image)
        else:
            files.append(image)
            paired.append(pts)
    return files, paired, lone, sorted(annotations.values())


def _wflw_images(path: str, first: str) -> str:
    """The images folder of the WFLW annotation file `path`: the first of its folder and its
    ancestors' WFLW_images folders that holds `first`, its first line's image."""
    here = os.path.dirname(os.path.abspath(path))
    candidates = [here]
    folder = here
    while True:
        candidates.append(os.path.join(folder, WFLW_IMAGES))
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, first)):
            return candidate
    raise ValueError(
        f"{path}: the image of its first line, {first}, is neither beside the file nor in a "
        f"{WFLW_IMAGES} folder above it (WFLW holds WFLW_annotations/ beside {WFLW_IMAGES}/): "
        "give the folder that the image paths are relative to"
    )


def _wflw_numbers(fields: Sequence[str], path: str, number: int) -> np.ndarray:
    """A WFLW line's coordinates and box numbers; ValueError naming the first that is not a
    finite number."""
    values = [_number(f) for f in fields]
    for j, value in enumerate(values):
        if value is None:
            what = "box number" if j >= 2 * WFLW_POINTS else "coordinate"
            raise ValueError(
                f"{path}, line {number}: field {j + 1} ({what}) is {_shown(fields[j])}, not a "
                f"finite number; {_WFLW_EXPECTED}"
            )
    return np.array(values, np.float64)


def _wflw_flags(fields: Sequence[str], path: str, number: int) -> list[int]:
    """A WFLW line's attribute flags; ValueError naming the first that is not 0 or 1."""
    for j, (value, name) in enumerate(zip(fields, WFLW_ATTRIBUTES)):
        if value not in ("0", "1"):
            raise ValueError(
                f"{path}, line {number}: field {2 * WFLW_POINTS + 5 + j} (the {name} flag) is "
                f"{_shown(value)}: expected 0 or 1; {_WFLW_EXPECTED}"
            )
    return [int(value) for value in fields]


def _read_text(path: str) -> str:
    """The text of the .pts file `path`, refused unread where it is larger than one can be."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    size = os.path.getsize(path)
    if size > MAX_PTS_BYTES:
        raise ValueError(
            f"{path}: {size} bytes, over the {MAX_PTS_BYTES >> 20} MiB a .pts landmark file "
            "may hold"
        )
    with open(path, "rb") as f:
        data = f.read(MAX_PTS_BYTES + 1)  # bounded, should it have grown since
    if len(data) > MAX_PTS_BYTES:
        raise ValueError(f"{path}: over the {MAX_PTS_BYTES >> 20} MiB a .pts file may hold")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}): not a .pts file") from None


def _number(text: str) -> float | None:
    """`text` as a finite float; None where it is not one."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _whole(text: str) -> int | None:
    """`text` as an int; None where it is not one."""
    try:
        return int(text.strip())
    except ValueError:
        return None


def _shown(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, cut at `limit` characters."""
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")
