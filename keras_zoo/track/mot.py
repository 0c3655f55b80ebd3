"""MOTChallenge text files: detections (`det.txt`), ground truth (`gt.txt`) and tracking results.

Each line is comma-separated numbers, `frame, id, x, y, w, h, score, ...`: frames count from 1,
a box is its top-left corner and its size in pixels, and what follows the 7th column (a
detection's 3D position, ground truth's class and visibility) is checked to be numbers and
left aside. In ground truth the 7th column is a flag, 0 for a box the evaluation ignores.
Results are written as `sort.py` writes them, `frame, id, x, y, w, h, 1, -1, -1, -1`, one
file per sequence, OUT/SEQ.txt.

The reader is strict where a file is wrong and lenient where a box is: a line that is not
numbers, a frame number below 1 or one going backwards is a ValueError naming the file and
line; a box with a non-positive width or height, or a NaN or infinite value, is skipped and
counted (`MotTable.skipped`), since detectors do emit such boxes. Files too large to be
MOTChallenge files (`MAX_FILE_BYTES`, `MAX_LINES`, `MAX_LINE_BYTES`) are refused before they are
read whole.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

# bounds far above any MOTChallenge file (MOT20's largest det.txt is ~1.3 M lines, ~60 MB)
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_LINES = 20_000_000
MAX_LINE_BYTES = 1024
MIN_COLUMNS = 7  # frame, id, x, y, w, h, score (or ground truth's flag)
MAX_COLUMNS = 10
COLUMNS = "frame, id, x, y, w, h, score"
RESULT_FORMAT = "%d,%d,%.2f,%.2f,%.2f,%.2f,1,-1,-1,-1"  # sort.py's line


@dataclasses.dataclass(frozen=True)
class MotTable:
    """The boxes of one MOTChallenge file, in file order (frames non-decreasing).

    frames (N,) int64 from 1, ids (N,) int64 (-1 in detections), boxes (N,4) float64 as
    x, y, w, h, scores (N,) float64 (ground truth's flag), `skipped`, the number of lines
    whose box was left out (non-positive size, NaN or inf), and `extent`, the file's largest
    frame number, that of a skipped line included."""

    source: str
    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    skipped: int = 0
    extent: int = 0

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def last_frame(self) -> int:
        """The largest frame number, a skipped line's included (sort.py's loop runs to it); 0
        for an empty file."""
        return max(self.extent, int(self.frames[-1]) if len(self.frames) else 0)

    def select(self, keep: np.ndarray) -> MotTable:
        """The rows where the boolean mask `keep` is true (the skipped count kept)."""
        return dataclasses.replace(
            self,
            frames=self.frames[keep],
            ids=self.ids[keep],
            boxes=self.boxes[keep],
            scores=self.scores[keep],
        )


def read_table(path: str | os.PathLike, *, frame_order: bool = True) -> MotTable:
    """The boxes of the MOTChallenge file `path` (det.txt, gt.txt or a results file); see the
    module's docstring for what is refused and what is skipped.

    `frame_order`: a frame number going backwards is an error, as it is in a det.txt, whose
    lines a tracker reads frame by frame; False for ground truth and results, which may come
    in any order (MOT16+'s gt.txt goes object by object), and whose rows are sorted by frame."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read the file ({err.strerror or err})") from None
    if size > MAX_FILE_BYTES:
        raise ValueError(
            f"{path}: {size} bytes: expected a MOTChallenge file of at most {MAX_FILE_BYTES} bytes"
        )
    with open(path, "rb") as f:
        return parse_lines(_bounded_lines(f, path), path, frame_order=frame_order)


def _bounded_lines(f, path: str) -> Iterator[bytes]:
    """The lines of the binary file `f`, each read no further than MAX_LINE_BYTES, so that a
    file without line breaks is refused at its first kilobyte rather than read whole."""
    for number in range(1, MAX_LINES + 2):
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if number > MAX_LINES:
            raise ValueError(f"{path}: more than {MAX_LINES} lines: expected a MOTChallenge file")
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise ValueError(
                f"{path}:{number}: line longer than {MAX_LINE_BYTES} bytes: expected "
                f"comma-separated {COLUMNS}"
            )
        yield line


def parse_lines(lines: Iterable[bytes | str], source: str, *, frame_order: bool = True) -> MotTable:
    """The boxes of MOTChallenge lines (bytes or text, line breaks kept or not); `source` names
    them in errors, `SOURCE:LINE: ...`. Blank lines are passed over; `frame_order` as
    `read_table` takes it."""
    frames: list[int] = []
    ids: list[int] = []
    values: list[tuple[float, float, float, float, float]] = []
    skipped = 0
    last = 0
    for number, raw in enumerate(lines, 1):
        where = f"{source}:{number}"
        text = _decoded(raw, where).strip()
        if not text:
            continue
        fields = text.split(",")
        if not MIN_COLUMNS <= len(fields) <= MAX_COLUMNS:
            raise ValueError(
                f"{where}: {len(fields)} columns: expected {MIN_COLUMNS} to {MAX_COLUMNS} "
                f"comma-separated numbers, {COLUMNS}, ...: {_shown(text)}"
            )
        numbers = [_number(field, where, text) for field in fields]
        frame = _integer(numbers[0], "frame", where, text)
        if frame < 1:
            raise ValueError(f"{where}: frame {frame}: expected frame numbers from 1")
        if frame < last and frame_order:
            raise ValueError(
                f"{where}: frame {frame} after frame {last}: expected the lines in frame order"
            )
        last = max(last, frame)
        x, y, w, h, score = numbers[2:7]
        if not all(map(math.isfinite, (x, y, w, h, score))) or w <= 0 or h <= 0:
            skipped += 1  # a degenerate box, not a broken file
            continue
        frames.append(frame)
        ids.append(_integer(numbers[1], "id", where, text))
        values.append((x, y, w, h, score))
    table = np.asarray(values, dtype=np.float64).reshape(-1, 5)
    order = np.argsort(np.asarray(frames, dtype=np.int64), kind="stable")  # in place if ordered
    return MotTable(
        source=source,
        frames=np.asarray(frames, dtype=np.int64)[order],
        ids=np.asarray(ids, dtype=np.int64)[order],
        boxes=table[order, :4],
        scores=table[order, 4],
        skipped=skipped,
        extent=last,
    )


def _decoded(raw: bytes | str, where: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(
            f"{where}: bytes that are not text: expected comma-separated {COLUMNS}"
        ) from None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _number(field: str, where: str, text: str) -> float:
    try:
        return float(field)
    except ValueError:
        raise ValueError(
            f"{where}: {field.strip()!r} is not a number: expected comma-separated {COLUMNS}: "
            f"{_shown(text)}"
        ) from None


def _integer(value: float, what: str, where: str, text: str) -> int:
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{where}: {what} {value!r}: expected a whole number: {_shown(text)}")
    return int(value)


def frames(table: MotTable, last_frame: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame, detections) for every frame from 1 to `last_frame` (default the table's last),
    empty frames included, as sort.py's loop runs: detections (N,5) float64 rows of x1, y1, x2,
    y2, score."""
    end = table.last_frame if last_frame is None else last_frame
    corners = np.concatenate(
        [table.boxes[:, :2], table.boxes[:, :2] + table.boxes[:, 2:], table.scores[:, None]],
        axis=1,
    )
    # the rows are in frame order: each frame's rows are one slice
    starts = np.searchsorted(table.frames, np.arange(1, end + 2), side="left")
    for frame in range(1, end + 1):
        yield frame, corners[starts[frame - 1] : starts[frame]]


def result_lines(frame: int, tracks: np.ndarray) -> list[str]:
    """The result lines of one frame's tracks, (M,5) rows of x1, y1, x2, y2, track id, as
    sort.py writes them."""
    return [
        RESULT_FORMAT % (frame, d[4], d[0], d[1], d[2] - d[0], d[3] - d[1])
        for d in np.asarray(tracks, dtype=np.float64).reshape(-1, 5)
    ]


def write_lines(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """Writes `lines` to `path` in one step (`keras_zoo.files.atomic_file`): a failure leaves
    no file, and an earlier `path` untouched."""
    from keras_zoo.files import atomic_file

    with atomic_file(path) as tmp, open(tmp, "w", encoding="ascii", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def table_lines(table: MotTable) -> list[str]:
    """The lines of a det.txt or gt.txt holding `table`: frame, id, x, y, w, h, score (or
    flag), -1, -1, -1."""
    return [
        f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.6g},-1,-1,-1"
        for f, i, (x, y, w, h), s in zip(table.frames, table.ids, table.boxes, table.scores)
    ]


# -- sequences ------------------------------------------------------------------------------


def write_sequence(
    folder: str | os.PathLike,
    detections: MotTable,
    gt: MotTable | None,
    frame_image: Callable[[int], np.ndarray] | None,
    frames: int,
) -> None:
    """A MOTChallenge sequence folder: det/det.txt, gt/gt.txt (where `gt` is given) and, where
    `frame_image` (frame number -> RGB uint8 array) is given, img1/000001.jpg to `frames`;
    written whole or not at all (`keras_zoo.files.staged_dir`)."""
    from PIL import Image

    from keras_zoo.files import staged_dir

    with staged_dir(folder) as stage:
        parts = [("det", detections)] + ([("gt", gt)] if gt is not None else [])
        for kind, table in parts:
            os.makedirs(os.path.join(stage, kind))
            write_lines(os.path.join(stage, kind, f"{kind}.txt"), table_lines(table))
        if frame_image is not None:
            os.makedirs(os.path.join(stage, IMAGE_FOLDER))
            for frame in range(1, frames + 1):
                path = os.path.join(stage, IMAGE_FOLDER, f"{frame:06d}.jpg")
                Image.fromarray(frame_image(frame)).save(path, quality=95)


@dataclasses.dataclass(frozen=True)
class Sequence:
    """A sequence's name (that of its results file, NAME.txt) and its file of boxes."""

    name: str
    path: str


def find_sequences(path: str | os.PathLike, kind: str = "det") -> list[Sequence]:
    """The sequences at `path`, by name: a file is one (named after its folder: SEQ/det/det.txt
    and SEQ/det.txt are SEQ's, another file is named by its stem); a folder with KIND/KIND.txt
    or KIND.txt in it is one, named after the folder; another folder holds one sequence per
    subfolder laid out so. `kind` is "det" or "gt"."""
    given = os.fspath(path)
    if os.path.isfile(given):
        return [Sequence(_file_sequence_name(given, kind), given)]
    if not os.path.isdir(given):
        raise FileNotFoundError(f"{given}: no such file or folder")
    own = _sequence_file(given, kind)
    if own is not None:
        return [Sequence(_folder_name(given), own)]
    found = []
    for entry in sorted(os.scandir(given), key=lambda e: e.name):
        if entry.is_dir() and (file := _sequence_file(entry.path, kind)) is not None:
            found.append(Sequence(entry.name, file))
    if not found:
        raise ValueError(
            f"{given}: no sequence: expected {kind}.txt, {kind}/{kind}.txt or folders "
            f"SEQ/{kind}/{kind}.txt"
        )
    return found


def match_sequences(path: str | os.PathLike, names: list[str], kind: str = "gt") -> list[str]:
    """The file of each sequence of `names` under `path` (a file where there is one sequence,
    or a folder as `find_sequences` reads it), in that order; ValueError naming `path` and the
    first sequence it lacks."""
    given = os.fspath(path)
    if os.path.isfile(given):
        if len(names) != 1:
            raise ValueError(
                f"{given}: one file for {len(names)} sequences: expected a folder with "
                f"SEQ/{kind}/{kind}.txt for each of {', '.join(names)}"
            )
        return [given]
    found = {s.name: s.path for s in find_sequences(given, kind)}
    if len(names) == 1 and len(found) == 1 and names[0] not in found:
        return list(found.values())  # one sequence each side: a folder's own file
    missing = [name for name in names if name not in found]
    if missing:
        raise ValueError(
            f"{given}: no {kind} file for sequence {missing[0]!r}: expected "
            f"{os.path.join(given, missing[0], kind, kind + '.txt')}"
        )
    return [found[name] for name in names]


IMAGE_FOLDER = "img1"  # MOTChallenge's: SEQ/img1/000001.jpg ...
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def match_image_folders(path: str | os.PathLike, names: list[str]) -> list[str]:
    """The folder of frames of each sequence of `names` under `path`, in that order: for one
    sequence `path` itself when it holds images, else path/img1 or path/SEQ/img1; for several,
    path/SEQ/img1 (or path/SEQ holding the images) for each. ValueError naming `path` and the
    first sequence without one."""
    given = os.fspath(path)
    if not os.path.isdir(given):
        raise ValueError(f"{given}: expected a folder of frames (SEQ/{IMAGE_FOLDER}), not found")
    candidates = [[os.path.join(given, n, IMAGE_FOLDER), os.path.join(given, n)] for n in names]
    if len(names) == 1:
        candidates[0] = [given, os.path.join(given, IMAGE_FOLDER), *candidates[0]]
    folders = []
    for name, options in zip(names, candidates):
        found = next((f for f in options if _has_images(f)), None)
        if found is None:
            raise ValueError(
                f"{given}: no frames for sequence {name!r}: expected images (000001.jpg, ...) "
                f"in {options[-2]}"
            )
        folders.append(found)
    return folders


def _has_images(folder: str) -> bool:
    if not os.path.isdir(folder):
        return False
    return any(e.is_file() and e.name.lower().endswith(_IMAGE_SUFFIXES) for e in os.scandir(folder))


def _sequence_file(folder: str, kind: str) -> str | None:
    for candidate in (
        os.path.join(folder, kind, f"{kind}.txt"),
        os.path.join(folder, f"{kind}.txt"),
    ):
        if os.path.isfile(candidate):
            return candidate
    return None


def _folder_name(folder: str) -> str:
    return os.path.basename(os.path.normpath(os.path.abspath(folder)))


def _file_sequence_name(path: str, kind: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    if name != f"{kind}.txt":
        return os.path.splitext(name)[0]
    if os.path.basename(folder) == kind:  # SEQ/det/det.txt
        folder = os.path.dirname(folder)
    return os.path.basename(folder)
