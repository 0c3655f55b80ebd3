"""Images per second of exported models (keras_zoo.export's files), side by side in one process,
alternating round by round, with each one's ratio to the first:

    python scripts/time_exports.py logs/m.tflite logs/m_int8.tflite [--batch 1] [--rounds 5]

Each export runs in its runtime (keras_zoo.load_exported) on the same random batch of its input
size; every figure is the median (min..max) over the rounds.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_zoo.bench import alternate, fmt, summary  # noqa: E402
from keras_zoo.deploy import load_exported  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", help=".tflite, .onnx, .xml or SavedModel folders")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    models = {path: load_exported(path) for path in args.exports}
    shapes = {m.input_shape for m in models.values()}
    if len(shapes) != 1 or None in shapes:
        raise SystemExit(f"exports: expected one input size with export records, got {shapes}")
    x = np.random.default_rng(0).normal(0, 1, (args.batch, *shapes.pop())).astype("float32")
    ips = alternate(models, x, args.rounds, args.seconds)
    first = args.exports[0]
    print(
        f"batch {args.batch}, {args.rounds} rounds: images/s median (min..max); ratio to "
        f"{os.path.basename(first)} per round"
    )
    for path, model in models.items():
        ratio = summary([a / b for a, b in zip(ips[path], ips[first])])
        print(
            f"{path:<48} {model.format:<9} {model.precision:<8} "
            f"{fmt(summary(ips[path]), 1):>24} {fmt(ratio):>20}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
