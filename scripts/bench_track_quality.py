"""Tracking quality of each tracker option on synthetic scenes with known ground truth, one run:

    python scripts/bench_track_quality.py [--seeds 5] [--frames 300] [--objects 10]

Every contender tracks the same detections of the scenes `keras_zoo.track.synthetic.make_scene`
makes for seeds 0..N-1 (pedestrian-like boxes whose paths cross, hiding one another, with low
scores for partly hidden ones), twice: pairs that walk through one another, then pairs that
meet and turn back (`turn_back=1.0`); for each, the script prints the scenes' statistics, then
per contender
MOTA, IDF1, HOTA (with TrackEval), ID switches, false positives and misses per scene as mean
+- std over the scenes, and frames per second. The contenders: keras_zoo's `Sort` with its
defaults (max_age=1, min_hits=3), with max_age=30 on all detections and on those scoring at
least 0.6 (the usual cut before SORT, which ByteTrack's second round is meant to undo), with
tracker="byte", with min_hits=1 (reporting a track as soon as it is matched again), with
appearance (max_cosine_distance=0.2, DeepSORT's), and Roboflow's
`trackers` (SORTTracker, ByteTrackTracker, with their defaults, and ByteTrackTracker matching
from an IoU of 0.3 as keras_zoo does) where it is installed. One more contender takes its
embeddings from a zoo backbone run on the rendered crops, as `keras-zoo track --embed` does
(`--backbone`, random weights unless `--backbone-weights`): the appearance path end to end.
"""

import argparse
import dataclasses
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_zoo.track import synthetic  # noqa: E402
from keras_zoo.track.mot import MotTable  # noqa: E402

TRACKERS = "trackers==2.6.1"
# the two kinds of scene: pairs walk through one another at constant velocity; pairs meet and
# turn back, the farther one hidden as they turn (the case appearance is for)
SCENES: dict[str, dict[str, Any]] = {
    "walking through": {},
    "meeting and turning back": {"turn_back": 1.0},
}


def trackers_contender(name: str, **kwargs: Any) -> synthetic.Contender:
    """Roboflow's `trackers.<name>(**kwargs)` (its defaults otherwise) over a scene, fed
    supervision's Detections (class 0); its reported rows are the detections with a confirmed
    id."""
    import supervision as sv
    import trackers

    def run(scene: synthetic.Scene) -> MotTable:
        tracker: Any = getattr(trackers, name)(**kwargs)

        def step(dets: np.ndarray, _: np.ndarray) -> np.ndarray:
            found = sv.Detections(
                xyxy=dets[:, :4].astype(np.float32),
                confidence=dets[:, 4].astype(np.float32),
                class_id=np.zeros(len(dets), dtype=int),
            )
            out = tracker.update(found)
            ids = np.asarray(out.tracker_id, dtype=np.int64).reshape(-1)
            keep = ids >= 0
            return np.column_stack([np.asarray(out.xyxy)[keep], ids[keep]])

        return synthetic.track(scene, step)

    return run


def backbone_contender(model_id: str, weights: str | None) -> synthetic.Contender:
    """Appearance as `keras-zoo track --embed` computes it: the scene's frames rendered and
    every detection's crop embedded by a zoo backbone (keras_zoo.track.embed), in place of the
    scene's own vectors; the embedding is part of the time."""
    from keras_zoo.track.embed import Embedder

    embedder = Embedder(model_id, weights)
    tracked = synthetic.sort_contender(max_age=30, max_cosine_distance=0.2)

    def run(scene: synthetic.Scene) -> MotTable:
        det = scene.detections
        corners = np.concatenate([det.boxes[:, :2], det.boxes[:, :2] + det.boxes[:, 2:]], axis=1)
        frames = ((scene.render(f), corners[det.frames == f]) for f in range(1, scene.frames + 1))
        embeddings = np.concatenate(list(embedder.sequence(frames)))
        return tracked(dataclasses.replace(scene, embeddings=embeddings))

    return run


def contenders(backbone: str | None, weights: str | None) -> dict[str, synthetic.Contender]:
    """The trackers compared, by the name printed; a line for each one left out."""
    high = synthetic.HIGH_SCORE
    out = {
        "sort": synthetic.sort_contender(),
        "sort max_age=30": synthetic.sort_contender(max_age=30),
        f"sort max_age=30 score>={high}": synthetic.sort_contender(max_age=30, min_score=high),
        "byte max_age=30": synthetic.sort_contender(max_age=30, tracker="byte"),
        # sort.py reports a track only on a run of min_hits matches; trackers once confirmed
        "sort max_age=30 min_hits=1": synthetic.sort_contender(max_age=30, min_hits=1),
        "byte max_age=30 min_hits=1": synthetic.sort_contender(
            max_age=30, min_hits=1, tracker="byte"
        ),
    }
    out["sort max_age=30 cos<=0.2"] = synthetic.sort_contender(max_age=30, max_cosine_distance=0.2)
    out["byte max_age=30 cos<=0.2"] = synthetic.sort_contender(
        max_age=30, tracker="byte", max_cosine_distance=0.2
    )
    if backbone:
        shown = "random weights" if weights is None else os.path.basename(weights)
        out[f"sort max_age=30 cos<=0.2 {backbone} ({shown})"] = backbone_contender(
            backbone, weights
        )
    try:
        import supervision  # noqa: F401
        import trackers  # noqa: F401
    except ImportError:
        print(f"Roboflow's trackers left out: pip install {TRACKERS}")
    else:
        out["trackers SORTTracker"] = trackers_contender("SORTTracker")
        out["trackers ByteTrackTracker"] = trackers_contender("ByteTrackTracker")
        # its default matches from an IoU of 0.1; keras_zoo's from 0.3
        out["trackers ByteTrack iou>=0.3"] = trackers_contender(
            "ByteTrackTracker", minimum_iou_threshold=0.3
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="scenes, seeds 0..N-1")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument(
        "--backbone",
        default="mobilenet_v3_small",
        help="the zoo id whose embeddings of the rendered crops are a contender ('' for none)",
    )
    parser.add_argument("--backbone-weights", help="its weights (default: random)")
    args = parser.parse_args(argv)
    for name in ("seeds", "frames", "objects"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    chosen = contenders(args.backbone or None, args.backbone_weights)
    for title, rates in SCENES.items():
        scenes = [
            synthetic.make_scene(s, args.frames, args.objects, **rates) for s in range(args.seeds)
        ]
        stats = [synthetic.scene_statistics(scene) for scene in scenes]
        print(f"\n{title}: {args.seeds} scenes of {args.frames} frames, {args.objects} objects")
        for key in stats[0]:
            values = np.array([s[key] for s in stats])
            print(f"  {key:<16} {np.mean(values):8.2f} ± {np.std(values):.2f}")
        for line in synthetic.report(synthetic.evaluate(scenes, chosen)):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
