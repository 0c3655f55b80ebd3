"""Port a PyTorch checkpoint into a Keras weights file: `keras-zoo port` as a script.

python scripts/port_weights.py resnet50 resnet50-0676ba61.pth resnet50.weights.h5 [--check]
"""

import sys

from keras_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["port", *sys.argv[1:]]))
