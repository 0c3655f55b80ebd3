"""SORT's speed beside sort.py (sort-track) and trackers' SORT and ByteTrack, alternating, one run:

    python scripts/bench_track.py [--frames 500] [--objects 8] [--rounds 5] [--seed 0]

prints each tracker's frames per second, median (min..max) over the rounds, and the ratios
keras_zoo / sort.py, keras_zoo / trackers SORT and keras_zoo byte / trackers ByteTrack
(`keras_zoo.track.speed`); docs/BENCHMARKS.md's tracking section is its output.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_zoo.track import speed  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--objects", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("frames", "objects", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    sequence = speed.synthetic_sequence(args.seed, args.frames, args.objects)
    detections = sum(len(d) for d in sequence) / len(sequence)
    for line in speed.report(speed.compare(sequence, args.rounds), detections):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
