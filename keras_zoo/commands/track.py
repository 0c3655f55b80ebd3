"""keras-zoo track DETS --out DIR: multi-object tracking of MOTChallenge detections with SORT (or
ByteTrack's association), one results file per sequence, and with --gt the sequences' MOTA,
MOTP, IDF1, ID switches, false positives and misses (and HOTA where TrackEval is installed).

Tracking needs NumPy and SciPy only: the command runs without TensorFlow. Every input file is
read and checked before the first frame is tracked, and the results files are written together
(`keras_zoo.files.staged_dir`): a run that fails writes none of them.
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
        default=1,
        help="frames a track is kept without a detection matched to it",
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
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Tracks each sequence with a new tracker, writes OUT/SEQ.txt for all of them, and prints
    each one's frames, tracks and speed, then its scores where --gt is given."""
    from keras_zoo.files import staged_dir
    from keras_zoo.track import mot

    thresholds = _thresholds(args)
    sequences = mot.find_sequences(args.dets, "det")
    detections = [mot.read_table(s.path) for s in sequences]  # every file checked first
    if args.tracker == "byte":
        for table in detections:
            _warn_no_track_starts(table, thresholds.get("high_threshold"))
    truths = _ground_truths(args.gt, [s.name for s in sequences]) if args.gt else None
    for table in detections:
        _warn_skipped(table)
    done = []
    with staged_dir(args.out) as stage:
        for sequence, table in zip(sequences, detections):
            lines, seconds, tracks = _track(table, args, thresholds)
            mot.write_lines(os.path.join(stage, f"{sequence.name}.txt"), lines)
            done.append((sequence.name, table.last_frame, tracks, seconds, lines))
    for name, frames, tracks, seconds, _ in done:
        speed = f", {frames / seconds:.1f} frames/s" if seconds > 0 else ""
        print(f"{name}: {frames} frames, {tracks} tracks{speed}")
    for name, *_ in done:
        print(f"wrote {os.path.join(args.out, name + '.txt')}")
    if truths is not None:
        results = [mot.parse_lines(lines, name, frame_order=False) for name, *_, lines in done]
        _print_scores(list(zip([name for name, *_ in done], truths, results)))
    return 0


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


def _track(table, args: argparse.Namespace, thresholds: dict) -> tuple[list[str], float, int]:
    """The result lines of one sequence tracked frame by frame from frame 1 (empty frames too,
    as sort.py runs), the seconds its tracker's updates took, and the number of tracks."""
    import numpy as np

    from keras_zoo.track import Sort, mot

    tracker = Sort(
        max_age=args.max_age,
        min_hits=args.min_hits,
        iou_threshold=args.iou_threshold,
        tracker=args.tracker,
        **thresholds,
    )
    lines: list[str] = []
    ids: set[int] = set()
    seconds = 0.0
    for frame, dets in mot.frames(table):
        start = time.perf_counter()
        tracks = np.asarray(tracker.update(dets))
        seconds += time.perf_counter() - start
        lines.extend(mot.result_lines(frame, tracks))
        ids.update(int(i) for i in tracks.reshape(-1, 5)[:, 4])
    return lines, seconds, len(ids)


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
