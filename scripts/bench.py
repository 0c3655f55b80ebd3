"""keras-zoo bench as a script, from a checkout (so that the torch references of the test suite
are importable for the torch column):

    python scripts/bench.py [--cases resnet50 ...] [--rounds 5] [--xla] ...
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_zoo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
