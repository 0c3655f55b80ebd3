"""keras-zoo track DETS --out DIR: multi-object tracking of MOTChallenge detections with SORT (or
ByteTrack's association), one results file per sequence, and with --gt the sequences' MOTA,
MOTP, IDF1, ID switches, false positives and misses (and HOTA where TrackEval is installed).
With the frames (--images), --embed ID adds DeepSORT's appearance matching, a zoo backbone
embedding each box, and --draw writes the frames with the tracks drawn and a GIF of them.

Tracking needs NumPy and SciPy only: without --embed the command runs without TensorFlow. Every
input file is read and checked before the first frame is tracked, and the results files are
written together (`keras_zoo.files.staged_dir`): a run that fails writes none of them.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

DETS_HELP = (
    "MOTChallenge detections: a det.txt (frame, id, x, y, w, h, score, ...), a sequence's "
    "folder (SEQ/det/det.txt or SEQ/det.txt), or a folder of such sequence folders"
)
GT_HELP = (
    "ground truth to score the results against: a gt.txt for one sequence, or a folder laid "
    "out SEQ/gt/gt.txt (or SEQ/gt.txt) with each sequence of DETS, such as DETS itself for "
    "MOTChallenge's train folder; needs py-motmetrics"
)


DEFAULT_EMBED_SIZE = "128x64"
DEFAULT_COSINE_DISTANCE = 0.2  # DeepSORT's
DEFAULT_EMBED_MAX_AGE = 30  # DeepSORT's
GIF_FRAMES = 200
GIF_FPS = 10
GIF_WIDTH = 480


def _size(text: str) -> str:
    """The argparse type of --embed-size: HxW, each at least 32."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 32 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, each >= 32, got {text!r}")
    return text


def count(text: str) -> int:
    """The argparse type of --max-age and --min-hits: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """The argparse type of --iou-threshold: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declares `keras-zoo track`."""
    p = subparsers.add_parser(
        "track", help="track MOTChallenge detections with SORT, scored against ground truth"
    )
    p.add_argument("dets", metavar="DETS", help=DETS_HELP)
    p.add_argument("--out", required=True, help="folder for the results, OUT/SEQ.txt per sequence")
    p.add_argument(
        "--max-age",
        type=count,
        help="frames a track is kept without a detection matched to it (default 1, SORT's; "
        "30 with --embed, DeepSORT's)",
    )
    p.add_argument(
        "--min-hits",
        type=count,
        default=3,
        help="frames in a row a track must be matched before it is reported",
    )
    p.add_argument(
        "--iou-threshold",
        type=fraction,
        default=0.3,
        help="the least intersection over union of a detection and a track to match",
    )
    p.add_argument(
        "--tracker",
        choices=("sort", "byte"),
        default="sort",
        help="the association: SORT's, or ByteTrack's second pass over low-score detections",
    )
    p.add_argument(
        "--high-threshold",
        type=float,
        help="byte: the score from which a detection is associated first and may start a track "
        "(default 0.6)",
    )
    p.add_argument(
        "--low-threshold",
        type=float,
        help="byte: the lowest score of the detections associated second (default 0.1)",
    )
    p.add_argument("--gt", metavar="GT", help=GT_HELP)
    p.add_argument(
        "--images",
        metavar="FRAMES",
        help="the frames (000001.jpg, ...): a sequence's img1 folder, or a folder holding "
        "SEQ/img1 for each sequence (such as DETS itself); needed by --embed and --draw",
    )
    p.add_argument(
        "--embed",
        metavar="ID",
        help="match on appearance too (DeepSORT): a keras_zoo backbone, such as "
        "mobilenet_v3_small, embeds every detection's crop",
    )
    p.add_argument(
        "--embed-weights",
        default="imagenet",
        metavar="W",
        help="the backbone's weights: a weight set, a checkpoint or a Keras weights file "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--embed-size",
        type=_size,
        default=DEFAULT_EMBED_SIZE,
        metavar="HxW",
        help="the size crops are resized to (default: %(default)s, a pedestrian's shape)",
    )
    p.add_argument(
        "--max-cosine-distance",
        type=fraction,
        help="--embed: the largest cosine distance of a detection's embedding to its track's "
        "(default 0.2)",
    )
    p.add_argument(
        "--draw",
        action="store_true",
        help="write OUT/SEQ/ with every frame, the tracks drawn (id colours and trails), and "
        f"OUT/SEQ.gif (at most {GIF_FRAMES} frames, evenly spaced); needs --images",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Tracks each sequence with a new tracker, writes OUT/SEQ.txt for all of them, and prints
    each one's frames, tracks and speed, then its scores where --gt is given."""
    from keras_zoo.files import staged_dir
    from keras_zoo.track import mot

    thresholds = _thresholds(args)
    sequences = mot.find_sequences(args.dets, "det")
    detections = [mot.read_table(s.path) for s in sequences]  # every file checked first
    frames = _frame_files(args, [s.name for s in sequences], detections)
    if args.tracker == "byte":
        for table in detections:
            _warn_no_track_starts(table, thresholds.get("high_threshold"))
    truths = _ground_truths(args.gt, [s.name for s in sequences]) if args.gt else None
    for table in detections:
        _warn_skipped(table)
    embedder = _embedder(args)
    done = []
    with staged_dir(args.out) as stage:
        for i, (sequence, table) in enumerate(zip(sequences, detections)):
            files = frames[i] if frames else None
            lines, seconds, tracks, embedding = _track(table, args, thresholds, embedder, files)
            mot.write_lines(os.path.join(stage, f"{sequence.name}.txt"), lines)
            if args.draw and files is not None:
                _draw(lines, files, table.last_frame, os.path.join(stage, sequence.name))
            done.append((sequence.name, table.last_frame, tracks, seconds, embedding, lines))
    for name, count, tracks, seconds, embedding, _ in done:
        speed = f", {count / seconds:.1f} frames/s" if seconds > 0 else ""
        if embedding > 0:
            speed += f" (embedding {count / embedding:.1f} frames/s)"
        print(f"{name}: {count} frames, {tracks} tracks{speed}")
    for name, *_ in done:
        print(f"wrote {os.path.join(args.out, name + '.txt')}")
        if args.draw:
            drawn = os.path.join(args.out, name)
            print(f"wrote {drawn}{os.sep} (the frames drawn) and {drawn}.gif")
    if truths is not None:
        results = [mot.parse_lines(lines, name, frame_order=False) for name, *_, lines in done]
        _print_scores(list(zip([name for name, *_ in done], truths, results)))
    return 0


def _frame_files(args: argparse.Namespace, names: list[str], tables: list) -> list | None:
    """Each sequence's {frame: image file}, checked to have every frame with detections (and,
    to draw, every frame), or None without --images; ValueError for --embed or --draw
    without --images, or a sequence missing frames."""
    if args.images is None:
        for option in ("embed", "draw"):
            if getattr(args, option):
                raise ValueError(f"--{option}: needs the frames: give --images")
        if args.max_cosine_distance is not None:
            raise ValueError("--max-cosine-distance: applies to --embed only")
        return None
    if args.max_cosine_distance is not None and not args.embed:
        raise ValueError("--max-cosine-distance: applies to --embed only")
    from keras_zoo.track import draw, mot

    out = []
    for folder, table in zip(mot.match_image_folders(args.images, names), tables):
        files = draw.frame_paths(folder)
        needed = set(range(1, table.last_frame + 1)) if args.draw else set(table.frames.tolist())
        missing = sorted(needed - set(files))
        if missing:
            raise ValueError(
                f"{folder}: no image for frame {missing[0]} ({len(missing)} frames missing) of "
                f"{table.source}"
            )
        out.append(files)
    return out


def _embedder(args: argparse.Namespace):
    """The backbone that embeds detections, for --embed (its weights loaded before any
    tracking)."""
    if not args.embed:
        return None
    from keras_zoo.track.embed import Embedder

    height, width = (int(v) for v in args.embed_size.lower().split("x"))
    return Embedder(args.embed, args.embed_weights, input_size=(height, width))


def _ground_truths(path: str, names: list[str]) -> list:
    """Each sequence's scored ground truth rows, read and checked before any tracking (with
    py-motmetrics' presence, so that a missing library fails the run before its work)."""
    from keras_zoo.track import metrics, mot

    metrics.motmetrics_module()
    tables = [mot.read_table(f, frame_order=False) for f in mot.match_sequences(path, names)]
    for table in tables:
        _warn_skipped(table)
    return [metrics.ground_truth(t) for t in tables]


def _warn_skipped(table) -> None:
    if table.skipped:
        warnings.warn(
            f"{table.source}: {table.skipped} boxes skipped: a width or height not above 0, "
            "or a NaN or infinite value",
            stacklevel=3,
        )


def _thresholds(args: argparse.Namespace) -> dict:
    """ByteTrack's score thresholds given, as Sort's keywords; ValueError naming one given for
    --tracker sort."""
    given = {"high_threshold": args.high_threshold, "low_threshold": args.low_threshold}
    given = {k: v for k, v in given.items() if v is not None}
    if given and args.tracker != "byte":
        first = next(iter(given)).replace("_", "-")
        raise ValueError(f"{first}: a threshold of ByteTrack's; give --tracker byte")
    return given


def _warn_no_track_starts(table, high: float | None) -> None:
    """A warning where no detection of a file reaches ByteTrack's high threshold (result files
    used as detections score -1; some detectors' scores are not in [0, 1])."""
    from keras_zoo.track.sort import BYTE_HIGH_THRESHOLD

    high = BYTE_HIGH_THRESHOLD if high is None else high
    scores = table.scores
    if len(scores) and not (scores >= high).any():
        warnings.warn(
            f"{table.source}: no detection scores {high:g} or more (its scores run from "
            f"{scores.min():g} to {scores.max():g}), so ByteTrack starts no track: set "
            "--high-threshold and --low-threshold for these scores",
            stacklevel=3,
        )


def _track(
    table, args: argparse.Namespace, thresholds: dict, embedder=None, files=None
) -> tuple[list[str], float, int, float]:
    """The result lines of one sequence tracked frame by frame from frame 1 (empty frames too,
    as sort.py runs), the seconds its tracker's updates took, the number of tracks, and the
    seconds the embeddings took (0 without --embed)."""
    import numpy as np

    from keras_zoo.track import Sort, mot

    appearance = {}
    if embedder is not None:
        given = args.max_cosine_distance
        appearance["max_cosine_distance"] = DEFAULT_COSINE_DISTANCE if given is None else given
    max_age = args.max_age
    if max_age is None:
        max_age = DEFAULT_EMBED_MAX_AGE if embedder is not None else 1
    tracker = Sort(
        max_age=max_age,
        min_hits=args.min_hits,
        iou_threshold=args.iou_threshold,
        tracker=args.tracker,
        **thresholds,
        **appearance,
    )
    sequence = list(mot.frames(table))
    embeddings = _embeddings(embedder, sequence, files)
    lines: list[str] = []
    ids: set[int] = set()
    seconds = embedding = 0.0
    for frame, dets in sequence:
        extra = []
        if embeddings is not None:
            start = time.perf_counter()
            extra.append(next(embeddings))
            embedding += time.perf_counter() - start
        start = time.perf_counter()
        tracks = np.asarray(tracker.update(dets, *extra))
        seconds += time.perf_counter() - start
        lines.extend(mot.result_lines(frame, tracks))
        ids.update(int(i) for i in tracks.reshape(-1, 5)[:, 4])
    return lines, seconds, len(ids), embedding


def _embeddings(embedder, sequence: list, files):
    """An iterator of each frame's embeddings (frames read as they are needed), or None."""
    if embedder is None:
        return None
    import numpy as np

    from keras_zoo.track.draw import read_frame

    def pairs():
        for frame, dets in sequence:
            # a frame without detections needs no image
            image = read_frame(files[frame]) if len(dets) else np.zeros((1, 1, 3), np.uint8)
            yield image, dets[:, :4]

    return embedder.sequence(pairs())


def _draw(lines: list[str], files: dict, last_frame: int, folder: str) -> None:
    """Every frame with its tracks drawn, as FOLDER/NNNNNN.jpg, and FOLDER.gif of at most
    GIF_FRAMES of them, evenly spaced, at GIF_FPS."""
    import numpy as np
    from PIL import Image

    from keras_zoo.track import draw, mot

    results = mot.parse_lines(lines, folder)  # written frame by frame
    tracks = np.concatenate(
        [results.boxes[:, :2], results.boxes[:, :2] + results.boxes[:, 2:], results.ids[:, None]],
        axis=1,
    )
    starts = np.searchsorted(results.frames, np.arange(1, last_frame + 2))
    os.makedirs(folder)
    drawer = draw.TrackDrawer()
    stride = -(-last_frame // GIF_FRAMES)

    def drawn():
        for frame in range(1, last_frame + 1):
            shown = tracks[starts[frame - 1] : starts[frame]]
            image = drawer.draw(draw.read_frame(files[frame]), shown)
            # full-resolution colour (no 4:2:0 subsampling), which keeps thin lines their id's
            Image.fromarray(image).save(
                os.path.join(folder, f"{frame:06d}.jpg"), quality=90, subsampling=0
            )
            if (frame - 1) % stride == 0:
                yield image

    draw.write_gif(drawn(), folder + ".gif", fps=GIF_FPS, max_width=GIF_WIDTH)


def _print_scores(pairs: list) -> None:
    """The scores table: a row per sequence and one for all of them."""
    from keras_zoo.track import metrics

    scores = metrics.score_sequences(pairs)
    width = max(len(name) for name in scores)
    header = ["MOTA", "MOTP", "IDF1", "IDsw", "FP", "FN", "HOTA"]
    print(f"{'sequence':<{width}} " + " ".join(f"{h:>7}" for h in header))
    for name, s in scores.items():
        cells = [_percent(s.mota), _percent(s.motp), _percent(s.idf1)]
        cells += [str(s.id_switches), str(s.false_positives), str(s.misses)]
        cells.append("-" if s.hota is None else _percent(s.hota))
        print(f"{name:<{width}} " + " ".join(f"{c:>7}" for c in cells))
    if metrics.trackeval_hota() is None:
        print(f"HOTA needs TrackEval: pip install {metrics.TRACKEVAL}")


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"
