"""keras-zoo analyze-kernels as a script: python scripts/analyze_kernel_weight.py --help"""

import sys

from keras_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyze-kernels", *sys.argv[1:]]))
