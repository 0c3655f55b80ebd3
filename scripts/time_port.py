"""Time `keras_zoo.pretrained.port` (read, build, map, save) on a torchvision-layout checkpoint.

    python scripts/time_port.py [NAME ...] [--rounds N]

Makes a random checkpoint of each id with its torch reference (keras_zoo.torch_reference; needs
torch and torchvision), then ports it N times into a temporary folder and prints the seconds of
each port, after imports.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_zoo.bench import port_seconds  # noqa: E402
from keras_zoo.torch_reference import torch_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["resnet50"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for name in args.names:
        times, size = port_seconds(torch_model, name, args.rounds)
        print(
            f"{name}: {size:.0f} MiB checkpoint, port seconds "
            f"min {min(times):.2f} median {statistics.median(times):.2f} "
            f"max {max(times):.2f} over {args.rounds} rounds"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
